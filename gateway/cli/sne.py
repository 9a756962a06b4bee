"""`gateway sne` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command("sne")
def sne() -> None:
    """Not implemented yet."""
    raise click.ClickException("gateway sne is not implemented yet")
