"""File sink without a broker: crash recovery (no duplicate line), rotation, CSV neutralisation,
permissions, disk full."""

from __future__ import annotations

import asyncio
import csv
import errno
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from connectors.file import FileSink, FileSinkConfig
from connectors.file.connector import neutralise
from gateway.connectors import SinkContext, SinkRecord
from gateway.errors import RetriableError
from gateway.testing.actor_stream import sink_records

CTX = SinkContext("file", "200000002", ("gp.actor.200000002",), "g", Path("/nonexistent"))


def _sink(tmp_path: Path, **extra: Any) -> FileSink:
    sink = FileSink(FileSinkConfig.model_validate({"dir": str(tmp_path), **extra}))
    asyncio.run(sink.open(CTX))
    return sink


def _ids(folder: Path) -> list[str]:
    out = []
    for path in sorted(folder.glob("*.jsonl*")):
        out += [json.loads(line)["id"] for line in path.read_text().splitlines()]
    return out


def test_lines_written_after_the_last_recorded_state_are_not_duplicated(tmp_path: Path) -> None:
    records = list(sink_records())
    sink = _sink(tmp_path)
    asyncio.run(sink.write(records[:5]))
    part = next((tmp_path / "200000002").glob("*.part"))
    with part.open("ab") as f:  # a crash after the lines were written, before the state was
        f.write(b'{"id": "half-written"')
    again = _sink(tmp_path)
    assert again.resume_offsets([("gp.actor.contract", 0)]) == {("gp.actor.contract", 0): 5}
    asyncio.run(again.write(records[3:]))  # re-delivered from before the recorded offset
    asyncio.run(again.flush())
    ids = _ids(tmp_path / "200000002")
    assert sorted(ids) == sorted(str(r.header("ce_id")) for r in records)
    assert not list((tmp_path / "200000002").glob("*.part"))


def test_a_part_the_state_does_not_know_is_removed(tmp_path: Path) -> None:
    sink = _sink(tmp_path)
    asyncio.run(sink.write(list(sink_records())[:2]))
    (tmp_path / "200000002" / "decision-x.jsonl.part").write_text('{"id": "orphan"}\n')
    _sink(tmp_path)
    assert not (tmp_path / "200000002" / "decision-x.jsonl.part").exists()


def test_rotation_by_size_completes_files_atomically(tmp_path: Path) -> None:
    sink = _sink(tmp_path, rotate_bytes=1024)
    for r in sink_records():
        asyncio.run(sink.write([r]))
    done = sorted((tmp_path / "200000002").glob("*.jsonl"))
    assert len(done) >= 2
    asyncio.run(sink.flush())
    assert len(_ids(tmp_path / "200000002")) == len(list(sink_records()))


def test_files_and_folder_are_private(tmp_path: Path) -> None:
    sink = _sink(tmp_path)
    asyncio.run(sink.write(list(sink_records())[:1]))
    folder = tmp_path / "200000002"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_csv_cells_never_start_a_formula(tmp_path: Path) -> None:
    assert neutralise("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert neutralise("+33") == "'+33"
    assert neutralise("-1") == "'-1"
    assert neutralise("@SUM") == "'@SUM"
    assert neutralise("Rennes") == "Rennes"
    base = next(r for r in sink_records() if "Demande" in r.schema)
    field = next(k for k, v in base.record.items() if isinstance(v, str))
    evil = SinkRecord(base.schema, base.key, {**base.record, field: "=cmd|' /C calc'!A0"}, base.headers)
    sink = _sink(tmp_path, format="csv")
    asyncio.run(sink.write([evil]))
    asyncio.run(sink.flush())
    path = next((tmp_path / "200000002").glob("demande-*.csv"))
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:2] == ["id", "key"]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert "'=cmd|' /C calc'!A0" in rows[1]


def test_disk_full_is_retriable_and_leaves_no_half_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = list(sink_records())
    sink = _sink(tmp_path)
    asyncio.run(sink.write(records[:2]))

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("connectors.file.connector.os.write", full)
    with pytest.raises(RetriableError, match="disk full"):
        asyncio.run(sink.write(records[2:4]))
    monkeypatch.undo()
    asyncio.run(sink.write(records[2:4]))
    asyncio.run(sink.flush())
    assert sorted(_ids(tmp_path / "200000002")) == sorted(str(r.header("ce_id")) for r in records[:4])


def _contents(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_records_rendered_ahead_make_the_same_files(tmp_path: Path, fmt: str) -> None:
    """The runtime's reading processes give `write` records with `rendered` set and `record` empty;
    mixed with records it did not render, the files are those written from the records."""
    from dataclasses import replace  # noqa: PLC0415

    records = list(sink_records())
    plain, ahead = _sink(tmp_path / "plain", format=fmt), _sink(tmp_path / "ahead", format=fmt)
    render = ahead.renderer()
    rendered = [replace(r, record={}, rendered=render(r)) if i % 4 else r for i, r in enumerate(records)]
    for sink, batch in ((plain, records), (ahead, rendered)):
        asyncio.run(sink.write(batch[:7]))
        asyncio.run(sink.write(batch[7:]))
        asyncio.run(sink.flush())
    files = _contents(tmp_path / "plain" / "200000002")
    assert files
    assert _contents(tmp_path / "ahead" / "200000002") == files


def test_csv_lines_are_what_csv_writer_writes_and_a_carriage_return_is_quoted() -> None:
    import io  # noqa: PLC0415

    from connectors.file.connector import csv_line  # noqa: PLC0415

    rows = [
        ["plain", "", "a,b", 'say "hi"', "line\nbreak", "tab\there", " lead", "é", '{"k":[1,2]}', '"'],
        ["", ""],
    ]
    for row in rows:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(row)
        assert csv_line(row) == out.getvalue()
    line = csv_line(["a\rb", "c"])  # csv.writer would leave the CR bare: readers end the row there
    assert line == '"a\rb",c\n'
    assert next(csv.reader(io.StringIO(line, newline=""))) == ["a\rb", "c"]
