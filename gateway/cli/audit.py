"""`gateway audit` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command("audit")
def audit() -> None:
    """Not implemented yet."""
    raise click.ClickException("gateway audit is not implemented yet")
