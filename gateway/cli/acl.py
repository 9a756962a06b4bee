"""`gateway acl plan|apply|check`: the broker's ACLs derived from the policy's principals.

plan   prints the ACL set for this topic prefix and app id, and the difference with the broker
apply  makes the broker hold exactly that set for our resources (idempotent), and creates the raw
       topics of the declared (source, format) pairs
check  exits 1 when the broker differs (an ACL added or removed by hand), 0 when it matches
Only resources of this prefix and app id are compared or changed (gateway/security/acl.py).
"""

from __future__ import annotations

import click

from gateway.kafka_config import client_kwargs
from gateway.security.acl import AclDiff, diff, plan, source_raw_topics
from gateway.settings import GatewaySettings

__all__ = ["acl", "apply_acls", "broker_diff"]


def _planned(settings: GatewaySettings) -> tuple[list, dict]:  # type: ignore[type-arg]
    from gateway.policy.model import load_policy  # noqa: PLC0415

    pol = load_policy(settings.policy_file, secret=settings.pseudonymisation_secret)
    return plan(pol.actors, pol.sources, settings.topic_prefix, settings.app_id), dict(pol.sources)


def broker_diff(settings: GatewaySettings) -> tuple[list, AclDiff]:  # type: ignore[type-arg]
    """(planned ACLs, difference with the broker)."""
    from gateway.security.admin import AdminSession  # noqa: PLC0415

    planned, _ = _planned(settings)
    with AdminSession(client_kwargs(settings)) as session:
        actual = session.acls()
    return planned, diff(planned, actual, settings.topic_prefix, settings.app_id)


def apply_acls(settings: GatewaySettings) -> AclDiff:
    """Apply the plan (and create the sources' raw topics); return what was changed."""
    from gateway.flows.admin import DAY_MS, TopicSpec, ensure_topics  # noqa: PLC0415
    from gateway.security.admin import AdminSession  # noqa: PLC0415

    planned, sources = _planned(settings)
    specs = [
        TopicSpec(
            t, settings.partitions, settings.replication_factor, "delete", {"retention.ms": str(7 * DAY_MS)}
        )
        for t in source_raw_topics(sources, settings.topic_prefix)
    ]
    ensure_topics(client_kwargs(settings), specs)
    with AdminSession(client_kwargs(settings)) as session:
        change = diff(planned, session.acls(), settings.topic_prefix, settings.app_id)
        session.apply(change)
    return change


def _show(change: AclDiff) -> None:
    for a in change.missing:
        click.echo(f"+ {a.line()}")
    for a in change.extra:
        click.echo(f"- {a.line()}")


@click.group("acl")
def acl() -> None:
    """Broker ACLs derived from the actors file (actors, sources, gateway workers)."""


@acl.command("plan")
@click.option("--offline", is_flag=True, help="Print the plan only, without asking the broker.")
def plan_cmd(offline: bool) -> None:
    """Print the ACL set for this prefix and app id, then the difference with the broker."""
    settings = GatewaySettings()
    planned, _ = _planned(settings)
    click.echo(f"# ACLs for prefix {settings.topic_prefix!r}, app id {settings.app_id!r}: {len(planned)}")
    for a in planned:
        click.echo(f"  {a.line()}")
    if offline:
        return
    _, change = broker_diff(settings)
    if change.clean:
        click.echo("# the broker holds exactly this set")
        return
    click.echo(f"# difference with the broker: {len(change.missing)} to add, {len(change.extra)} to remove")
    _show(change)


@acl.command("apply")
def apply_cmd() -> None:
    """Make the broker hold exactly the planned ACLs for our resources (idempotent)."""
    change = apply_acls(GatewaySettings())
    _show(change)
    click.echo(f"applied: {len(change.missing)} added, {len(change.extra)} removed")


@acl.command("check")
def check_cmd() -> None:
    """Exit 1 when the broker's ACLs differ from the plan (drift), 0 when they match."""
    _, change = broker_diff(GatewaySettings())
    if change.clean:
        click.echo("ACLs match the plan")
        return
    click.echo(f"ACL drift: {len(change.missing)} missing, {len(change.extra)} not planned", err=True)
    _show(change)
    raise SystemExit(1)
