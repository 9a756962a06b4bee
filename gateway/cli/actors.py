"""`gateway actors client-config ID` and `gateway actors credentials ID`: connection kits.

client-config  prints what actor or source ID needs to connect with a standard client, creating
               its credential if it has none (stored 0600 in <state_dir>/credentials/)
credentials    rotates ID's credential (the old one stops working at once) and prints the new kit;
               --revoke deletes it (the principal can no longer connect)
"""

from __future__ import annotations

import click

from gateway.security.kits import credential_file, ensure_credential, kit, render, revoke
from gateway.settings import GatewaySettings

__all__ = ["actors"]

_FORMATS = click.Choice(["librdkafka", "properties", "json"])


@click.group("actors")
def actors() -> None:
    """Connection kits of actors and sources (their Kafka principals)."""


@actors.command("client-config")
@click.argument("principal_id")
@click.option("--format", "fmt", type=_FORMATS, default="librdkafka", show_default=True)
@click.option("--group-name", default="main", show_default=True, help="Appended to the actor's group prefix.")
def client_config(principal_id: str, fmt: str, group_name: str) -> None:
    """Print ID's connection kit (its secret included: redirect it to a 0600 file)."""
    settings = GatewaySettings()
    click.echo(render(kit(settings, principal_id, group_name=group_name), fmt), nl=False)  # type: ignore[arg-type]


@actors.command("credentials")
@click.argument("principal_id")
@click.option("--revoke", "revoke_only", is_flag=True, help="Delete the credential instead of rotating it.")
@click.option("--format", "fmt", type=_FORMATS, default="librdkafka", show_default=True)
def credentials(principal_id: str, revoke_only: bool, fmt: str) -> None:
    """Rotate ID's credential (the old one is revoked at once) and print the new kit."""
    settings = GatewaySettings()
    if revoke_only:
        revoke(settings, principal_id)
        click.echo(f"credential of {principal_id} revoked", err=True)
        return
    ensure_credential(settings, principal_id, rotate=True)
    click.echo(f"credential of {principal_id} rotated ({credential_file(settings, principal_id)})", err=True)
    click.echo(render(kit(settings, principal_id), fmt), nl=False)  # type: ignore[arg-type]
