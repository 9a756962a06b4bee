"""`gateway run` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command("run")
def run() -> None:
    """Not implemented yet."""
    raise click.ClickException("gateway run is not implemented yet")
