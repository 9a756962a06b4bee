"""`gateway broker` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command("broker")
def broker() -> None:
    """Not implemented yet."""
    raise click.ClickException("gateway broker is not implemented yet")
