"""FileDropSource: each file dropped in <folder>/incoming is emitted as one RawEvent, then moved.

- emitted and acknowledged (the broker has it): moved to <folder>/done/<same relative path>;
- unreadable, empty, oversized or of unknown format: moved to <folder>/rejected/ with a
  `<name>.reason.txt` next to it (reason only, never the content);
- emit failed (broker down): left in incoming/ and retried at the next scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from pathlib import Path
from typing import ClassVar

from gateway.connectors import CheckResult, ConnectorConfig, Emit, Guarantee, RawEvent
from gateway.errors import GatewayError, RejectedMessage
from gateway.formats import FORMATS

from connectors.file_drop.config import FileDropConfig

__all__ = ["FileDropSource"]

_log = logging.getLogger(__name__)


class FileDropSource:
    """Publishes the files of a drop folder. Delivery: at-least-once (a file is moved to done/ only
    after its emit is acknowledged; a crash in between re-emits it at the next start)."""

    name: ClassVar[str] = "file-drop"
    Config: ClassVar[type[ConnectorConfig]] = FileDropConfig
    guarantee: ClassVar[Guarantee] = "at-least-once"

    def __init__(self, config: FileDropConfig) -> None:
        self.config = config
        self._stopping = asyncio.Event()
        self.emitted = 0
        self.rejected = 0

    def check(self) -> CheckResult:
        root = self.config.folder
        if not root.is_dir():
            return CheckResult(False, f"{root} is not a directory")
        for sub in (self.config.incoming, self.config.done, self.config.rejected):
            if sub.exists() and not sub.is_dir():
                return CheckResult(False, f"{sub} exists and is not a directory")
        return CheckResult(True, f"watching {self.config.incoming}")

    def format_of(self, path: Path) -> str | None:
        """The format of a file under incoming/ (None when it cannot be told)."""
        cfg = self.config
        if cfg.format:
            return cfg.format
        rel = path.relative_to(cfg.incoming)
        if len(rel.parts) > 1:
            top = rel.parts[0]
            if top in cfg.folders:
                return cfg.folders[top]
            if top in FORMATS:
                return top
        return cfg.extensions.get(path.suffix.lower())

    def pending(self) -> list[Path]:
        """Files ready to take, oldest name first (dot files and partial uploads skipped)."""
        incoming = self.config.incoming
        if not incoming.is_dir():
            return []
        now = time.time()
        out = []
        for path in sorted(incoming.rglob("*")):
            if not path.is_file() or any(p.startswith(".") for p in path.relative_to(incoming).parts):
                continue
            try:
                if now - path.stat().st_mtime < self.config.settle_seconds:
                    continue
            except OSError:
                continue
            out.append(path)
        return out

    async def run(self, emit: Emit) -> None:
        for sub in (self.config.incoming, self.config.done, self.config.rejected):
            sub.mkdir(parents=True, exist_ok=True)
        while not self._stopping.is_set():
            for path in self.pending():
                if self._stopping.is_set():
                    break
                await self._take(path, emit)
            if self.config.once:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.config.poll_interval)

    async def stop(self) -> None:
        self._stopping.set()

    async def _take(self, path: Path, emit: Emit) -> None:
        rel = path.relative_to(self.config.incoming)
        fmt = self.format_of(path)
        if fmt is None:
            self._reject(path, rel, "unknown format: name a sub-folder after the format or set `format`")
            return
        try:
            size = path.stat().st_size
            if size > self.config.max_bytes:
                self._reject(path, rel, f"too large: {size} bytes > max_bytes {self.config.max_bytes}")
                return
            if size == 0:
                self._reject(path, rel, "empty file")
                return
            payload = path.read_bytes()
        except OSError as exc:
            self._reject(path, rel, f"unreadable: {type(exc).__name__}")
            return
        event = RawEvent(
            format=fmt,
            payload=payload,
            key=str(rel).encode(),
            origin=str(rel),
            headers=(("gp.source.file", str(rel).encode()), ("gp.source.connector", self.name.encode())),
        )
        try:
            await emit(event)
        except RejectedMessage as exc:  # e.g. too large for the broker: retrying would never succeed
            reasons = "; ".join(f"{p.path}: {p.reason}" for p in exc.problems) or "refused"
            self._reject(path, rel, f"refused when published: {reasons}")
            return
        except (GatewayError, OSError, TimeoutError) as exc:
            _log.warning("file-drop: emit of %s failed (%s); will retry", rel, type(exc).__name__)
            return
        self._move(path, self.config.done / rel)
        self.emitted += 1

    def _reject(self, path: Path, rel: Path, reason: str) -> None:
        target = self._move(path, self.config.rejected / rel)
        if target is not None:
            target.with_name(target.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
        self.rejected += 1
        _log.info("file-drop: rejected %s: %s", rel, reason)

    @staticmethod
    def _move(path: Path, target: Path) -> Path | None:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target = target.with_name(f"{target.stem}.{time.time_ns()}{target.suffix}")
        try:
            shutil.move(str(path), str(target))
        except OSError as exc:
            _log.warning("file-drop: cannot move %s (%s)", path.name, type(exc).__name__)
            return None
        return target
