"""The sources part of `gateway demo`: each sample is dropped by the demo source that speaks for the
organisation that entered it, one file-drop connector per source (the demo plays every source).

A sample goes to the source of the actors file that declares its format and may enter its first
record's `provenance.saisie`; a sample with no readable record (the bad ones) goes to the first
source declaring its format. One more file shows provenance bound to the source: a Rennes Habitat
application dropped by Nantes Logement's ERP (`SPOOF`), dead-lettered by the ingest.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gateway.formats import FORMATS, by_short_name
from gateway.policy.model import Policy, load_policy
from gateway.settings import GatewaySettings
from gateway.topics import canonical_topic, dlq_topic, source_raw_topic

__all__ = ["SPOOF", "assign_samples", "ingest_report_topics", "step_sources"]

# (sample, the source that drops it although it does not speak for the organisation that entered it)
SPOOF = ("cdc-json/erp-rennes-demande-creation.json", "nantes-logement-erp")


def _saisie(fmt: str, path: Path) -> str | None:
    from gateway.normalise import CanonicalRecord, normalise  # noqa: PLC0415 - heavy

    for outcome in normalise(fmt, path.read_bytes()):
        if isinstance(outcome, CanonicalRecord):
            saisie = (outcome.record.get("provenance") or {}).get("saisie")
            return str(saisie) if saisie else None
    return None


def assign_samples(policy: Policy, samples: Path) -> list[tuple[str, str, Path, str]]:
    """(source id, format, sample path, name in the drop folder) for every sample, bad ones included."""
    files: list[tuple[str, Path, str]] = []
    for fmt in FORMATS:
        files += [(fmt, p, p.name) for p in sorted((samples / fmt).glob("*")) if p.is_file()]
    for p in sorted((samples / "bad").glob("*")):
        bad_fmt = by_short_name(p.name)
        if bad_fmt is not None and p.is_file():
            files.append((bad_fmt, p, f"bad-{p.name}"))
    out = []
    for fmt, path, name in files:
        candidates = [s for s in policy.sources.values() if fmt in s.formats]
        if not candidates:
            continue
        saisie = _saisie(fmt, path)
        source = next((s for s in candidates if saisie in policy.may_enter(s.id)), candidates[0])
        out.append((source.id, fmt, path, name))
    spoofed = samples / SPOOF[0]
    if spoofed.is_file() and SPOOF[1] in policy.sources:
        out.append((SPOOF[1], spoofed.parent.name, spoofed, f"spoof-{spoofed.name}"))
    return out


def step_sources(ctx: Any) -> None:
    """Drop the samples into one folder per source and run a file-drop connector for each."""
    from gateway.broker.emit import run_source  # noqa: PLC0415

    from connectors.file_drop import FileDropConfig, FileDropSource  # noqa: PLC0415

    policy = load_policy(ctx.settings.policy_file)
    folders: dict[str, Path] = {}
    for source, fmt, path, name in assign_samples(policy, ctx.samples):
        drop = folders.setdefault(source, ctx.workdir / "drop" / source)
        (drop / "incoming" / fmt).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, drop / "incoming" / fmt / name)
    emitted = rejected = 0
    for source, drop in sorted(folders.items()):
        connector = FileDropSource(FileDropConfig(source=source, folder=drop, settle_seconds=0, once=True))
        asyncio.run(run_source(connector, ctx.settings))
        emitted, rejected = emitted + connector.emitted, rejected + connector.rejected
    ctx.files_emitted, ctx.files_rejected = emitted, rejected
    if SPOOF[1] in folders:
        ctx.notes.append(
            f"provenance: {SPOOF[0]} dropped by source {SPOOF[1]}, which does not speak for the"
            f" organisation that entered it: dead-lettered to <prefix>.raw.cdc-json.{SPOOF[1]}.dlq"
        )
    ctx.say(
        f"file-drop: {emitted} files published, {rejected} rejected, by {len(folders)} sources"
        f" (folders {ctx.workdir / 'drop'}/<source>)"
    )


def _raw(policy: Policy, prefix: str) -> Iterable[str]:
    for src in policy.sources.values():
        for fmt in src.formats:
            yield source_raw_topic(fmt, src.id, prefix)


def ingest_report_topics(settings: GatewaySettings) -> list[str]:
    """The raw and dead-letter topics of every declared source, then the canonical topics."""
    p = settings.topic_prefix
    out = []
    for raw in sorted(_raw(load_policy(settings.policy_file), p)):
        out += [raw, dlq_topic(raw)]
    return [*out, canonical_topic("demande", p), canonical_topic("decision", p)]
