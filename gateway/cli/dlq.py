"""`gateway dlq` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command("dlq")
def dlq() -> None:
    """Not implemented yet."""
    raise click.ClickException("gateway dlq is not implemented yet")
