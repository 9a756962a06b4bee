"""`gateway normalise --format FORMAT [FILE|-]`: source bytes -> canonical records as JSON lines.

stdout: one `{"schema", "key", "record"}` object per canonical record. stderr: one JSON object per
problem of each rejected part (`{"locator", "path", "reason", "value"}`); exit 2 if anything was
rejected. Problems never carry personal data, so stderr is safe to log.
"""

from __future__ import annotations

import json
import sys
from typing import BinaryIO

import click

from gateway.codec.avro import to_jsonable
from gateway.normalise import FORMATS, MAX_INPUT_BYTES, Rejection
from gateway.normalise import normalise as run_normaliser

__all__ = ["normalise"]


@click.command("normalise")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="Input format.")
@click.argument("source", type=click.File("rb"), default="-")
def normalise(fmt: str, source: BinaryIO) -> None:
    """Normalise FILE (or stdin, `-`) of the given format into canonical records."""
    try:
        data = source.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise click.ClickException(f"cannot read the input: {exc.strerror}") from exc
    rejected = 0
    records = 0
    for outcome in run_normaliser(fmt, data):
        if isinstance(outcome, Rejection):
            rejected += 1
            for p in outcome.problems:
                line = {"locator": outcome.locator, **p.as_dict()}
                click.echo(json.dumps(line, ensure_ascii=False), err=True)
        else:
            records += 1
            line = {"schema": outcome.schema, "key": outcome.key, "record": to_jsonable(outcome.record)}
            click.echo(json.dumps(line, ensure_ascii=False))
    if rejected:
        click.echo(json.dumps({"summary": {"records": records, "rejected": rejected}}), err=True)
        sys.exit(2)
