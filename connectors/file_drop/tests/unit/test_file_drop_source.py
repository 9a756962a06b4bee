"""File-drop source without a broker: format inference, done/ and rejected/ moves, retry on failure."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from connectors.file_drop import FileDropConfig, FileDropSource
from gateway.connectors import RawEvent
from gateway.errors import Problem, RejectedMessage, RetriableError


def _source(tmp_path: Path, **kw: object) -> FileDropSource:
    return FileDropSource(
        FileDropConfig.model_validate(
            {"folder": tmp_path, "source": "src-a", "settle_seconds": 0, "once": True, **kw}
        )
    )


def _drop(root: Path, rel: str, data: bytes) -> Path:
    path = root / "incoming" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_format_inference_order(tmp_path: Path) -> None:
    src = _source(tmp_path, folders={"rennes": "cdc-json"})
    inc = tmp_path / "incoming"
    assert src.format_of(inc / "rennes" / "a.json") == "cdc-json"
    assert src.format_of(inc / "siao-json" / "b.json") == "siao-json"
    assert src.format_of(inc / "c.xml") == "sne-xml"
    assert src.format_of(inc / "d.csv") == "cal-csv"
    assert src.format_of(inc / "e.json") is None
    forced = _source(tmp_path, format="comed-json")
    assert forced.format_of(inc / "c.xml") == "comed-json"


def test_emitted_files_go_to_done_bad_ones_to_rejected_with_a_reason(tmp_path: Path) -> None:
    _drop(tmp_path, "sne-xml/a.xml", b"<a/>")
    _drop(tmp_path, "cdc-json/b.json", b'{"op": "c"}')
    _drop(tmp_path, "mystery.json", b"{}")
    _drop(tmp_path, "big.xml", b"x" * 100)
    _drop(tmp_path, "empty.xml", b"")
    events: list[RawEvent] = []

    async def emit(event: RawEvent) -> None:
        events.append(event)

    src = _source(tmp_path, max_bytes=50)
    asyncio.run(src.run(emit))
    assert sorted((e.format, e.payload, e.key) for e in events) == [
        ("cdc-json", b'{"op": "c"}', b"cdc-json/b.json"),
        ("sne-xml", b"<a/>", b"sne-xml/a.xml"),
    ]
    assert (tmp_path / "done" / "sne-xml" / "a.xml").read_bytes() == b"<a/>"
    assert (tmp_path / "done" / "cdc-json" / "b.json").exists()
    rejected = tmp_path / "rejected"
    assert "unknown format" in (rejected / "mystery.json.reason.txt").read_text()
    assert "too large" in (rejected / "big.xml.reason.txt").read_text()
    assert "empty" in (rejected / "empty.xml.reason.txt").read_text()
    assert (rejected / "big.xml").read_bytes() == b"x" * 100
    assert not [p for p in (tmp_path / "incoming").rglob("*") if p.is_file()]
    assert (src.emitted, src.rejected) == (2, 3)


def test_a_failed_emit_leaves_the_file_for_the_next_scan(tmp_path: Path) -> None:
    path = _drop(tmp_path, "sne-xml/a.xml", b"<a/>")

    async def failing(event: RawEvent) -> None:
        raise RetriableError("broker down")

    asyncio.run(_source(tmp_path).run(failing))
    assert path.exists()
    assert not (tmp_path / "done" / "sne-xml" / "a.xml").exists()
    seen: list[RawEvent] = []

    async def ok(event: RawEvent) -> None:
        seen.append(event)

    asyncio.run(_source(tmp_path).run(ok))
    assert len(seen) == 1
    assert not path.exists()


def test_files_still_being_written_wait(tmp_path: Path) -> None:
    _drop(tmp_path, "sne-xml/a.xml", b"<a/>")
    src = FileDropSource(FileDropConfig(folder=tmp_path, source="src-a", settle_seconds=3600, once=True))
    assert src.pending() == []


def test_stop_ends_a_watching_run(tmp_path: Path) -> None:
    src = FileDropSource(
        FileDropConfig(folder=tmp_path, source="src-a", poll_interval=0.05, settle_seconds=0)
    )

    async def main() -> None:
        async def emit(event: RawEvent) -> None: ...

        task = asyncio.create_task(src.run(emit))
        await asyncio.sleep(0.1)
        await src.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())


def test_config_rejects_unknown_formats_all_at_once() -> None:
    with pytest.raises(ValueError, match="unknown format") as info:
        FileDropConfig.model_validate(
            {"folder": "/x", "source": "src-a", "format": "pdf", "folders": {"a": "doc"}}
        )
    assert len(info.value.errors()) == 2  # type: ignore[attr-defined]


def test_a_file_the_broker_refuses_goes_to_rejected_instead_of_being_retried_forever(tmp_path: Path) -> None:
    path = _drop(tmp_path, "sne-xml/big.xml", b"<a/>")

    async def refusing(event: RawEvent) -> None:
        raise RejectedMessage("too large", [Problem("$", "too large for the broker", "4 bytes")])

    src = _source(tmp_path)
    asyncio.run(src.run(refusing))
    assert not path.exists()
    assert (tmp_path / "rejected" / "sne-xml" / "big.xml").read_bytes() == b"<a/>"
    reason = (tmp_path / "rejected" / "sne-xml" / "big.xml.reason.txt").read_text()
    assert "too large for the broker" in reason
    assert (src.emitted, src.rejected) == (0, 1)
