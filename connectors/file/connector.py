"""File sink: appends an actor's records to JSON Lines or CSV files. Delivery: exactly-once (a line
per record, none twice after a crash: the offsets consumed are recorded with the files).

Layout: `<dir>/<actor>/<kind>-<UTC time>-<n>.<jsonl|csv>`, kind = demande / decision. A file is
written under a temporary name (`.part`) and renamed atomically when it is rotated (by size or age,
and when the sink stops): readers only ever see complete files. `.state.json` (written atomically
after the lines were fsynced) records, per partition, the next offset to read and, per open part,
its size; on start, a part is cut back to its recorded size (lines written after the last record are
written again), parts the state does not know are removed, and the runtime resumes from the recorded
offsets. CSV: one column per top-level field of the view (nested values as JSON), preceded by `id`
(the record's ce_id) and `key`; a cell starting with `=`, `+`, `-`, `@`, tab or CR is prefixed with
`'` so that a spreadsheet never runs it as a formula. A view change (other columns) starts a new file.

Erasure (an `fr.gp.Effacement` record of the stream, docs/retention.md): the open parts are completed
first, then every file of the actor's folder that holds a line (CSV: a row) under the application's
key is rewritten without it, under a hidden temporary name (`.<name>.erasing`, 0600, fsynced) renamed
over it; a file left empty is removed. The erasure itself is written as a line of its own kind
(`effacement-*.jsonl`: type fr.gp.Effacement; `effacement-*.csv`: id, key and its fields), so that
downstream readers learn it, and the stream's offsets move past it in the same state write: after a
crash before that write, the erasure is done again (it is idempotent), never half-recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import errno
import io
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal

from gateway.connectors import (
    ERASURE_SCHEMA,
    CheckResult,
    ConnectorConfig,
    Erasure,
    Guarantee,
    Partition,
    Sink,
    SinkContext,
    SinkOutput,
    SinkRecord,
    json_default,
    to_json,
    to_json_bytes,
)
from gateway.errors import RetriableError

from connectors.file.config import FileSinkConfig

__all__ = ["FileSink", "csv_line", "neutralise", "render_csv", "render_jsonl"]

STATE = ".state.json"
ERASING = ".erasing"  # suffix of a file being rewritten without an erased application's lines
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_FIRST = frozenset(_FORMULA)  # a cell's first character that makes it a formula


def neutralise(cell: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    return "'" + cell if cell.startswith(_FORMULA) else cell


def _kind(schema: str) -> str:
    return schema.rsplit(".", 1)[-1].split("_", 1)[0].lower() or "record"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return to_json(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(json_default(value)) if isinstance(value, date | Decimal | bytes) else str(value)


_CE = frozenset({"ce_id", "ce_type", "ce_subject", "ce_time", "ce_dataschema"})


def _safe_cell(value: Any) -> str:
    """neutralise(_cell(value)), text (most cells) taken the short way."""
    if value.__class__ is str:
        return "'" + value if value.startswith(_FORMULA) else value
    return neutralise(_cell(value))


def _event(rec: SinkRecord) -> bytes:
    heads = {k: v.decode("utf-8", "replace") for k, v in rec.headers if k in _CE}
    return to_json_bytes(
        {
            "id": rec.event_id(),
            "type": heads.get("ce_type") or rec.schema,
            "subject": heads.get("ce_subject"),
            "time": heads.get("ce_time"),
            "dataschema": heads.get("ce_dataschema") or rec.schema,
            "key": rec.key,
            "data": rec.record,
        }
    )


def render_jsonl(rec: SinkRecord) -> bytes:
    """The record's JSON Lines line (its CloudEvent-like envelope and data)."""
    return _event(rec) + b"\n"


def render_csv(rec: SinkRecord) -> tuple[tuple[str, ...], bytes]:
    """The record's fields (its CSV columns after id and key) and its CSV row, cells neutralised."""
    fields = tuple(rec.record)
    return fields, csv_line(_row(rec, fields)).encode("utf-8")


def csv_line(cells: Sequence[str]) -> str:
    """One CSV line as csv.writer writes it (comma, minimal quoting, quotes doubled, "\n"), except a
    cell holding a carriage return, quoted too (csv.writer leaves a lone CR bare with this line
    terminator, which readers take for the end of the line). Str.replace and `in` run in C over each
    cell, where csv.writer looks at every character: JSON cells (nested values) make most of a row."""
    out = []
    for c in cells:
        if '"' in c:
            out.append('"' + c.replace('"', '""') + '"')
        elif "," in c or "\n" in c or "\r" in c:
            out.append('"' + c + '"')
        else:
            out.append(c)
    return ",".join(out) + "\n"


def _row(r: SinkRecord, fields: tuple[str, ...]) -> list[str]:
    """A record's CSV cells: id, key, then `fields` (text and nulls, most cells, inline)."""
    first, other = _FIRST, _safe_cell
    row = [neutralise(r.event_id()), neutralise(r.key)]
    record = r.record
    values = record.values() if tuple(record) == fields else map(record.get, fields)
    row += [
        ("'" + v if v[:1] in first else v) if v.__class__ is str else "" if v is None else other(v)
        for v in values
    ]
    return row


def _fields(r: SinkRecord) -> tuple[str, ...]:
    """A CSV record's fields: as rendered, else its record's."""
    return r.rendered[0] if r.rendered is not None else tuple(r.record)


class FileSink(Sink):
    """Writes JSON Lines or CSV files, one folder per actor. Delivery: exactly-once (offsets recorded
    with the files, parts cut back to the recorded size after a crash)."""

    name: ClassVar[str] = "file"
    Config: ClassVar[type[ConnectorConfig]] = FileSinkConfig
    guarantee: ClassVar[Guarantee] = "exactly-once"
    reads: ClassVar[Literal["actor", "canonical"]] = "actor"
    erases: ClassVar[bool] = True  # every file of the folder rewritten without the application's lines
    headers_in_write: ClassVar[bool] = False  # a rendered record's line is all `write` reads of it

    def __init__(self, config: FileSinkConfig) -> None:
        self.config = config
        self.folder = config.dir / "stream"
        self.offsets: dict[str, int] = {}  # "topic:partition" -> next offset
        self.parts: dict[str, dict[str, Any]] = {}  # kind -> {name, size, opened, columns}
        self._seq = 0
        self._loaded = False

    # ---- state ------------------------------------------------------------------------------
    def _sync_dir(self) -> None:
        if self.config.fsync:
            fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _save(self) -> None:
        tmp = self.folder / (STATE + ".tmp")
        data = json.dumps({"offsets": self.offsets, "parts": self.parts}).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            if self.config.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(self.folder / STATE)
        # no fsync of the folder here: a lost rename leaves the previous state, whose smaller part
        # sizes and offsets make the lines come again, cut back first (a rotation syncs its rename)

    def _load(self) -> None:
        """Read the state and make the folder agree with it (cut parts back, drop unknown ones)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.folder / STATE
        if path.exists():
            state = json.loads(path.read_text(encoding="utf-8"))
            self.offsets = {str(k): int(v) for k, v in state.get("offsets", {}).items()}
            self.parts = dict(state.get("parts", {}))
        for kind, part in list(self.parts.items()):
            p = self.folder / part["name"]
            if p.exists():
                with p.open("r+b") as f:
                    f.truncate(int(part["size"]))
            else:  # renamed by a rotation the state did not record yet
                del self.parts[kind]
        known = {part["name"] for part in self.parts.values()}
        for stray in self.folder.glob("*.part"):
            if stray.name not in known:  # created after the last state: its lines come again
                stray.unlink()
        for stray in self.folder.glob("*" + ERASING):  # an erasure cut short: it is done again
            stray.unlink()
        self._loaded = True

    async def open(self, context: SinkContext) -> None:
        self.folder = self.config.dir / (context.actor or context.connector)
        await asyncio.to_thread(self._load)

    def resume_offsets(self, partitions: Sequence[Partition]) -> Mapping[Partition, int]:
        if not self._loaded:
            self._load()
        out = {}
        for topic, partition in partitions:
            done = self.offsets.get(f"{topic}:{partition}")
            if done is not None:
                out[(topic, partition)] = done
        return out

    def check(self) -> CheckResult:
        base = self.config.dir
        probe = base if base.exists() else base.parent
        if not probe.exists():
            return CheckResult(ok=False, detail=f"{probe} does not exist")
        if not os.access(probe, os.W_OK | os.X_OK):
            return CheckResult(ok=False, detail=f"{probe} is not writable")
        return CheckResult(ok=True, detail=f"{base} writable")

    # ---- files ------------------------------------------------------------------------------
    def _finish(self, kind: str) -> None:
        part = self.parts.pop(kind)
        src = self.folder / part["name"]
        if part["size"]:
            src.replace(self.folder / part["name"].removesuffix(".part"))
        else:
            src.unlink(missing_ok=True)
        self._sync_dir()

    def _rotate_due(self, force: bool = False) -> bool:
        now = time.time()
        due = [
            k
            for k, p in self.parts.items()
            if force
            or p["size"] >= self.config.rotate_bytes
            or now - p["opened"] >= self.config.rotate_seconds
        ]
        for kind in due:
            self._finish(kind)
        return bool(due)

    def _part(self, kind: str, columns: list[str] | None) -> dict[str, Any]:
        part = self.parts.get(kind)
        if part is not None and columns is not None and part.get("columns") != columns:
            self._finish(kind)  # the view changed: a new file with the new header
            part = None
        if part is None:
            self._seq += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            ext = self.config.format
            name = f"{kind}-{stamp}-{os.getpid()}-{self._seq}.{ext}.part"
            fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            part = self.parts[kind] = {"name": name, "size": 0, "opened": time.time(), "columns": columns}
        return part

    def _lines(self, kind: str, records: list[SinkRecord]) -> tuple[dict[str, Any], bytes]:
        """The part file and the bytes of `records` (one kind and field set; CSV columns: their
        fields), as rendered (`renderer`) or rendered here."""
        if self.config.format == "jsonl":
            part = self._part(kind, None)
            return part, b"".join([r.rendered or render_jsonl(r) for r in records])
        fields = _fields(records[0])
        columns = ["id", "key", *fields]
        part = self._part(kind, columns)
        head = csv_line(columns).encode("utf-8") if part["size"] == 0 else b""
        rows = [
            r.rendered[1] if r.rendered is not None else csv_line(_row(r, fields)).encode() for r in records
        ]
        return part, head + b"".join(rows)

    def renderer(self) -> Callable[[SinkRecord], Any]:
        """JSON Lines: the line; CSV: (fields, row). Pure, run in the runtime's reading processes."""
        return render_jsonl if self.config.format == "jsonl" else render_csv

    def _append(self, part: dict[str, Any], data: bytes) -> None:
        path = self.folder / part["name"]
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, data)
            if self.config.fsync:
                os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, int(part["size"]))  # no half line left behind
            raise
        finally:
            os.close(fd)
        part["size"] += len(data)

    def _write(self, batch: Sequence[SinkRecord]) -> None:
        if not self._loaded:
            self._load()
        fresh = [
            r for r in batch if r.offset < 0 or r.offset >= self.offsets.get(f"{r.topic}:{r.partition}", 0)
        ]
        self._rotate_due()
        groups: dict[tuple[str, tuple[str, ...]], list[SinkRecord]] = {}
        csv_files = self.config.format == "csv"
        for r in fresh:  # one group per kind (CSV: and field set), in order
            groups.setdefault((_kind(r.schema), _fields(r) if csv_files else ()), []).append(r)
        try:
            for (kind, _), records in groups.items():
                part, data = self._lines(kind, records)
                self._append(part, data)
            for r in batch:
                if r.offset < 0:
                    continue  # not from Kafka: nothing to resume from
                tp = f"{r.topic}:{r.partition}"
                self.offsets[tp] = max(self.offsets.get(tp, 0), r.offset + 1)
            self._save()
        except OSError as exc:
            self._loaded = False  # next write re-reads the state and cuts the parts back
            why = "disk full" if exc.errno == errno.ENOSPC else type(exc).__name__
            raise RetriableError(f"file sink cannot write in {self.config.dir}: {why}") from exc

    async def write(self, batch: Sequence[SinkRecord]) -> Sequence[SinkOutput]:
        if batch:
            await asyncio.to_thread(self._write, batch)
        return []

    # ---- erasure ----------------------------------------------------------------------------
    def _without(self, data: bytes, keys: set[str]) -> bytes:
        """The bytes of a completed file without the lines (CSV: rows after the header) of `keys`."""
        if self.config.format == "jsonl":
            kept = []
            for line in data.splitlines(keepends=True):
                try:
                    key = json.loads(line).get("key")
                except ValueError:  # never written so: erased if it names a key, to be safe
                    key = next((k for k in keys if k.encode() in line), None)
                if key not in keys:
                    kept.append(line)
            return b"".join(kept)
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        cells = {neutralise(k) for k in keys}
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        body = [row for row in rows[1:] if len(row) < 2 or row[1] not in cells]
        if body:
            writer.writerows([rows[0], *body])
        return out.getvalue().encode("utf-8")

    def _rewrite(self, path: Path, keys: set[str]) -> None:
        data = path.read_bytes()
        if not any(k.encode() in data for k in keys):
            return  # nothing of theirs here
        kept = self._without(data, keys)
        if kept == data:
            return
        if not kept:
            path.unlink()
            return
        tmp = path.with_name("." + path.name + ERASING)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, kept)
            if self.config.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)

    def _erase(self, erasures: Sequence[Erasure]) -> None:
        if not self._loaded:
            self._load()
        fresh = [
            e
            for e in erasures
            if e.record.offset < 0
            or e.record.offset >= self.offsets.get(f"{e.record.topic}:{e.record.partition}", 0)
        ]
        try:
            if fresh:
                self._rotate_and_save(force=True)  # the open parts completed: every file is closed
                keys = {e.key for e in fresh}
                done = _kind(ERASURE_SCHEMA) + "-"
                for path in sorted(self.folder.iterdir()):
                    name = path.name
                    if name.endswith((".jsonl", ".csv")) and not name.startswith((".", done)):
                        self._rewrite(path, keys)
                self._sync_dir()
                part, data = self._lines(_kind(ERASURE_SCHEMA), [e.record for e in fresh])
                self._append(part, data)
            for e in erasures:
                if e.record.offset >= 0:
                    tp = f"{e.record.topic}:{e.record.partition}"
                    self.offsets[tp] = max(self.offsets.get(tp, 0), e.record.offset + 1)
            self._save()
        except OSError as exc:
            self._loaded = False  # next try re-reads the state and cuts the parts back
            why = "disk full" if exc.errno == errno.ENOSPC else type(exc).__name__
            raise RetriableError(f"file sink cannot erase in {self.config.dir}: {why}") from exc

    async def erase(self, erasures: Sequence[Erasure]) -> Sequence[SinkOutput]:
        """Every file of the folder rewritten without the applications' lines; an erasure line."""
        if erasures:
            await asyncio.to_thread(self._erase, erasures)
        return []

    async def tick(self) -> Sequence[SinkOutput]:
        if self._loaded and self.parts:
            await asyncio.to_thread(self._rotate_and_save)
        return []

    def _rotate_and_save(self, force: bool = False) -> None:
        if self._rotate_due(force):
            self._save()

    async def flush(self) -> None:
        """Stopping (or drained with --until-idle): the open files are completed (renamed)."""
        if self._loaded and self.parts:
            await asyncio.to_thread(self._rotate_and_save, True)
