"""`gateway connectors` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command("connectors")
def connectors() -> None:
    """Not implemented yet."""
    raise click.ClickException("gateway connectors is not implemented yet")
