"""`gateway policy` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command("policy")
def policy() -> None:
    """Not implemented yet."""
    raise click.ClickException("gateway policy is not implemented yet")
