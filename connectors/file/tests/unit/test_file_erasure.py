"""File sink erasure without a broker: every file of the folder (completed ones and the open part)
rewritten without the application's lines, an erasure line written, the erasure recorded with the
offsets; no byte of the application's values left in the folder."""

from __future__ import annotations

import asyncio
import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from connectors.file import FileSink, FileSinkConfig
from gateway.connectors import Erasure, SinkContext, SinkRecord, to_json
from gateway.testing.actor_stream import sink_records
from gateway.testing.effacement import erasure_sink_record

CTX = SinkContext("file", "200000002", ("gp.actor.contract",), "g", Path("/nonexistent"))
TP = ("gp.actor.contract", 0)


def _sink(tmp_path: Path, **extra: Any) -> FileSink:
    sink = FileSink(FileSinkConfig.model_validate({"dir": str(tmp_path), **extra}))
    asyncio.run(sink.open(CTX))
    return sink


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return set()


def _setup() -> tuple[list[SinkRecord], str, list[bytes]]:
    """The stream, its busiest application, and values only that application's records hold."""
    records = list(sink_records("200000002", topic=TP[0]))
    key = Counter(r.key for r in records).most_common(1)[0][0]
    others = "".join(to_json(r.record) for r in records if r.key != key)
    mine = set().union(*(_strings(r.record) for r in records if r.key == key))
    markers = sorted(m for m in mine if len(m) >= 6 and m not in others and m != key)
    assert markers, "the sample application has values of its own"
    return records, key, [m.encode() for m in markers]


def _folder_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_no_byte_of_the_application_is_left_in_the_folder(tmp_path: Path, fmt: str) -> None:
    records, key, markers = _setup()
    sink = _sink(tmp_path, format=fmt, rotate_bytes=2048)  # several completed files and an open one
    for r in records:
        asyncio.run(sink.write([r]))
    folder = tmp_path / "200000002"
    assert len(list(folder.glob(f"*.{fmt}"))) >= 2
    assert list(folder.glob("*.part"))
    assert all(m in _folder_bytes(folder) for m in markers)
    erasure = erasure_sink_record(key, topic=TP[0], offset=len(records))
    asyncio.run(sink.erase([Erasure.of(erasure)]))
    data = _folder_bytes(folder)
    assert not [m for m in markers if m in data], "a value of the erased application is left"
    assert sink.resume_offsets([TP]) == {TP: len(records) + 1}
    asyncio.run(sink.flush())
    kept, erasures = _read(folder, fmt)
    assert sorted(kept) == sorted(str(r.header("ce_id")) for r in records if r.key != key)
    assert erasures == [(str(erasure.header("ce_id")), key)]
    assert not list(folder.glob(".*.erasing"))


def _read(folder: Path, fmt: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(ids of the data lines, (id, key) of the erasure lines) of the completed files."""
    ids: list[str] = []
    erasures: list[tuple[str, str]] = []
    for path in sorted(folder.glob(f"*.{fmt}")):
        if fmt == "jsonl":
            rows = [json.loads(line) for line in path.read_text().splitlines()]
        else:
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
        for row in rows:
            if path.name.startswith("effacement-"):
                erasures.append((row["id"], row["key"]))
                assert fmt == "csv" or row["type"] == "fr.gp.Effacement"
            else:
                ids.append(row["id"])
    return ids, erasures


def test_a_record_after_the_erasure_is_new_data(tmp_path: Path) -> None:
    records, key, _ = _setup()
    sink = _sink(tmp_path)
    asyncio.run(sink.write(records))
    asyncio.run(sink.erase([Erasure.of(erasure_sink_record(key, topic=TP[0], offset=len(records)))]))
    again = next(r for r in records if r.key == key)
    heads = tuple((k, v + b"#new" if k == "ce_id" else v) for k, v in again.headers)
    new = SinkRecord(again.schema, key, again.record, heads, TP[0], 0, len(records) + 1)
    asyncio.run(sink.write([new]))
    asyncio.run(sink.flush())
    ids, _ = _read(tmp_path / "200000002", "jsonl")
    assert f"{again.header('ce_id')}#new" in ids
    assert str(again.header("ce_id")) not in ids


def test_a_replayed_erasure_is_not_written_twice_and_a_cut_short_one_is_cleaned(tmp_path: Path) -> None:
    records, key, _ = _setup()
    sink = _sink(tmp_path)
    asyncio.run(sink.write(records))
    erasure = Erasure.of(erasure_sink_record(key, topic=TP[0], offset=len(records)))
    asyncio.run(sink.erase([erasure]))
    folder = tmp_path / "200000002"
    (folder / ".demande-x.jsonl.erasing").write_bytes(b"a rewrite a crash cut short\n")
    again = _sink(tmp_path)  # a restart: the runtime resumes after the erasure ...
    assert again.resume_offsets([TP]) == {TP: len(records) + 1}
    assert not (folder / ".demande-x.jsonl.erasing").exists()
    asyncio.run(again.erase([erasure]))  # ... and a replay of it changes nothing
    asyncio.run(again.flush())
    _, erasures = _read(folder, "jsonl")
    assert len(erasures) == 1


def test_an_erasure_of_an_application_never_delivered_writes_only_the_erasure_line(tmp_path: Path) -> None:
    records, _, _ = _setup()
    sink = _sink(tmp_path)
    asyncio.run(sink.write(records))
    before = {p.name: p.read_bytes() for p in (tmp_path / "200000002").glob("*.part")}
    asyncio.run(sink.erase([Erasure.of(erasure_sink_record("999999999999999999", topic=TP[0], offset=99))]))
    asyncio.run(sink.flush())
    ids, erasures = _read(tmp_path / "200000002", "jsonl")
    assert sorted(ids) == sorted(str(r.header("ce_id")) for r in records)
    assert [k for _, k in erasures] == ["999999999999999999"]
    assert before  # the open parts were completed, unchanged
