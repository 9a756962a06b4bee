"""`gateway demo` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command("demo")
def demo() -> None:
    """Not implemented yet."""
    raise click.ClickException("gateway demo is not implemented yet")
