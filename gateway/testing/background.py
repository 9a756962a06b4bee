"""A coroutine run on its own event loop in a thread, stopped on demand (tests of runners that
take a stop event: the egress runner, `gateway sne run`'s code path)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

__all__ = ["Background"]


class Background:
    """`with Background(run):` runs `run(stop)` in a thread; leaving sets `stop`, joins the thread
    and raises AssertionError if `run` failed."""

    def __init__(self, run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        self.run = run
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.error: BaseException | None = None

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.run(self.stop))
        except BaseException as exc:  # noqa: BLE001 - reported on leaving
            self.error = exc

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=60)
        self.loop.close()
        assert self.error is None, repr(self.error)  # noqa: S101 - a test kit
