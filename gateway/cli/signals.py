"""`gateway signals check | replay`: the follow-up signals' rules file and an offline replay.

`replay [--now DATE] [--rules FILE] FORMAT:FILE ...` runs the normalisers and the signal processors
over the files in the order given, the clock at `--now` (default: the latest event date of the
inputs), and prints one `{"schema", "key", "record"}` JSON line per signal on stdout and nothing
else; rejections, dead letters and pending events go to stderr (they never carry personal data).
It runs the code the worker runs (gateway.signals).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from gateway.cli.inputs import parse_input
from gateway.codec.avro import load_schemas, to_jsonable
from gateway.normalise import MAX_INPUT_BYTES
from gateway.policy.model import load_policy
from gateway.settings import GatewaySettings
from gateway.signals.core import SIGNAL, Context
from gateway.signals.replay import replay as run_replay
from gateway.signals.rules import SIGNAL_TYPES, load_rules
from gateway.topics import canonical_topic

__all__ = ["demo_report_topics", "demo_step", "signals"]


def actor_roles(policy_file: Path | None) -> dict[str, str]:
    """actor id -> role, from the running policy's actors file (who may submit to a commission)."""
    policy = load_policy(policy_file)
    return {a.id: a.role for a in policy.actors.values()}


@click.group("signals")
def signals() -> None:
    """Follow-up signals: check a rules file, replay files through the processors."""


@signals.command("check")
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Rules file (default: the shipped one).",
)
def check(rules_file: Path | None) -> None:
    """Check a rules file: every problem listed, exit 2 when refused; warnings on stderr."""
    rules = load_rules(rules_file)
    for w in rules.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(
        f"signals rules {rules.version} ({rules.source}): OK, signals {', '.join(sorted(rules.enabled))}"
    )


def _input(spec: str) -> tuple[str, str, bytes]:
    try:
        fmt, path = parse_input(spec)
    except ValueError as exc:
        raise click.BadParameter(f"{spec!r}: {exc}") from None
    name = str(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {name}: {exc.strerror}") from None
    return fmt, name, data


@signals.command("replay")
@click.option(
    "--now",
    "now_",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="Clock (default: the last event's date).",
)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Rules file (default: the shipped one).",
)
@click.argument("inputs", nargs=-1, required=True)
def replay(now_: datetime | None, rules_file: Path | None, inputs: tuple[str, ...]) -> None:
    """Replay FORMAT:FILE inputs through the normalisers and the signal processors."""
    rules = load_rules(rules_file)
    for w in rules.warnings:
        click.echo(f"warning: {w}", err=True)
    parsed = [_input(spec) for spec in inputs]
    ctx = Context(rules, actor_roles(GatewaySettings().policy_file))
    now = now_.replace(tzinfo=UTC) if now_ is not None else None
    result = run_replay(parsed, ctx, now)
    for note in result.notes:
        click.echo(note, err=True)
    for key, record in result.signals:
        click.echo(
            json.dumps({"schema": SIGNAL, "key": key, "record": to_jsonable(record)}, ensure_ascii=False)
        )
    when = result.now.date() if result.now else date.today()
    click.echo(f"{len(result.signals)} signal(s) at {when.isoformat()}", err=True)


def demo_report_topics(settings: GatewaySettings) -> list[str]:
    """The signal topic, in `gateway demo`'s table."""
    return [canonical_topic("signal", settings.topic_prefix)]


def demo_step(ctx: Any, max_wait_s: float = 120.0) -> None:
    """`gateway demo`: wait for a signal of every type from the bundled samples, note one line per type."""
    from gateway.codec.framing import decoder_for  # noqa: PLC0415
    from gateway.errors import RejectedMessage  # noqa: PLC0415
    from gateway.testing.kafka import consume_all  # noqa: PLC0415 - only for the demo

    codec = load_schemas().codec(SIGNAL)
    decode = decoder_for(
        ctx.settings.schema_registry_url, {codec.fingerprint: codec}
    ).decode  # either framing
    topic = canonical_topic("signal", ctx.settings.topic_prefix)
    deadline = time.monotonic() + max_wait_s
    counts: Counter[str] = Counter()
    while True:
        counts.clear()
        for m in consume_all(ctx.bootstrap, topic, quiet_ms=1500, max_wait_s=10):
            if m.value:
                try:
                    counts[str(decode(m.value)[1]["typeSignal"])] += 1
                except RejectedMessage:
                    continue
        if set(counts) >= set(SIGNAL_TYPES) or time.monotonic() > deadline:
            break
        time.sleep(2)
    ctx.say(f"signals: {sum(counts.values())} on {topic}")
    for kind in SIGNAL_TYPES:
        ctx.notes.append(f"signal {kind:<22} {counts.get(kind, 0):4d}  ({_DEMO_NOTES[kind]})")


_DEMO_NOTES = {
    "DELAI_ANORMAL_DEPASSE": "Vendée coast, filed 2023, never proposed: 24 months passed",
    "ATTRIBUE_NON_LOGE": "ranked 2nd by a Nantes CAL, the 1st signed the lease",
    "REFUS_OFFRE": "two refusals, the second with the local consequence",
    "SAISINE_COMMISSION": "the DDETS 35 submits an application to the CIA of Rennes Métropole",
    "LABEL_PRIORITAIRE": "a label given, then expired",
    "A_RADIER": "not renewed; declared irrecevable by a CAL (a signal, not a radiation)",
}
