"""What the offline commands (cotation, report, signals, policy, schemas) take alike: file options,
and `FORMAT:FILE` input arguments read with the normalisers."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.errors import ConfigError, Problem
from gateway.formats import FORMATS

__all__ = ["parse_input", "path_option", "read_inputs"]

F = TypeVar("F", bound=Callable[..., Any])


def path_option(
    flag: str,
    dest: str,
    help_: str,
    *,
    folder: bool = False,
    default: Path | None = None,
    required: bool = False,
) -> Callable[[F], F]:
    """A `--flag FILE` option (`folder`: `--flag DIRECTORY`), a Path; a default is shown in --help."""
    return click.option(
        flag,
        dest,
        type=click.Path(path_type=Path, dir_okay=folder, file_okay=not folder),
        default=default,
        required=required,
        show_default=default is not None,
        help=help_,
    )


def parse_input(spec: str) -> tuple[str, Path]:
    """A `FORMAT:FILE` argument -> (input format, path); ValueError saying what is expected."""
    fmt, sep, name = spec.partition(":")
    if not sep or fmt not in FORMATS:
        raise ValueError(f"expected FORMAT:FILE with FORMAT one of {', '.join(FORMATS)}")
    return fmt, Path(name)


def read_inputs(specs: Sequence[str]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], int]:
    """FORMAT:FILE arguments normalised in the order given: (numéro unique -> latest Demande,
    decisions in order, rejected inputs). Rejection problems go to stderr (never personal data)."""
    from gateway.normalise import MAX_INPUT_BYTES, Rejection, normalise  # noqa: PLC0415 - heavy

    problems = []
    parsed = []
    for spec in specs:
        try:
            fmt, path = parse_input(spec)
        except ValueError as exc:
            problems.append(Problem(spec, str(exc)))
            continue
        if not path.is_file():
            problems.append(Problem(spec, "no such file"))
        else:
            parsed.append((fmt, path))
    if problems:
        raise ConfigError("bad input arguments", problems)
    demandes: dict[str, dict[str, Any]] = {}
    decisions: list[dict[str, Any]] = []
    rejected = 0
    for fmt, path in parsed:
        for outcome in normalise(fmt, path.read_bytes()[: MAX_INPUT_BYTES + 1]):
            if isinstance(outcome, Rejection):
                rejected += 1
                for p in outcome.problems:
                    line = {"file": path.name, "locator": outcome.locator, **p.as_dict()}
                    click.echo(json.dumps(line, ensure_ascii=False), err=True)
            elif outcome.schema == "fr.gp.Demande":
                key = outcome.record.get("numUnique")
                if key:
                    demandes.pop(key, None)
                    demandes[key] = outcome.record
            elif outcome.schema == "fr.gp.Decision":
                decisions.append(outcome.record)
    return demandes, decisions, rejected
