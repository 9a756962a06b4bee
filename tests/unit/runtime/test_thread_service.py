"""`thread_service`: the loop of a flow (ingest, cotation) run in a thread of the worker."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import faust
import pytest
from gateway.errors import RetriableError
from gateway.flows.app import thread_service


def _app(tmp_path: Any) -> faust.App:
    return faust.App("t-thread-service", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))


def test_the_loop_runs_in_its_thread_until_the_service_stops(tmp_path: Any) -> None:
    seen: list[str] = []

    def run(stop: threading.Event) -> None:
        seen.append(threading.current_thread().name)
        stop.wait(5)
        seen.append("stopped" if stop.is_set() else "timed out")

    cls = thread_service(_app(tmp_path), "demo", run)
    assert cls.__name__ == "DemoService"

    async def main() -> None:
        service = cls()  # started and stopped by mode, as the worker does
        await service.start()
        await asyncio.sleep(0.05)
        await service.stop()

    asyncio.run(main())
    assert seen == ["gp-demo", "stopped"]
    other = thread_service(_app(tmp_path), "other", run)
    assert other.__qualname__ == "OtherService" and other.__module__ == "gateway.flows.app"


@pytest.mark.parametrize(
    ("error", "logged"),
    [
        (RetriableError("broker unreachable"), "broker unreachable"),
        (ValueError("a value 0612345678"), "ValueError"),
    ],
)
def test_a_failing_loop_crashes_the_service_and_logs_no_foreign_message(
    tmp_path: Any, caplog: pytest.LogCaptureFixture, error: Exception, logged: str
) -> None:
    def run(stop: threading.Event) -> None:
        raise error

    cls = thread_service(_app(tmp_path), "demo", run)
    crashed: list[BaseException] = []

    async def main() -> None:
        service = cls()

        async def crash(exc: BaseException) -> None:
            crashed.append(exc)

        service.crash = crash  # type: ignore[method-assign]
        with caplog.at_level(logging.ERROR, logger="gateway.flows.app"):
            await service.start()
            for _ in range(100):
                if crashed:
                    break
                await asyncio.sleep(0.01)
            await service.stop()

    asyncio.run(main())
    assert crashed == [error]
    assert f"demo loop stopped: {logged}" in caplog.text
    assert "0612345678" not in caplog.text


def test_a_loop_that_does_not_stop_in_time_is_reported(
    tmp_path: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.flows.app.STOP_WAIT_S", 0.05)
    release = threading.Event()
    cls = thread_service(_app(tmp_path), "demo", lambda stop: release.wait(5), late="demo: still busy")

    async def main() -> None:
        service = cls()
        await service.start()
        with caplog.at_level(logging.WARNING, logger="gateway.flows.app"):
            await service.stop()

    try:
        asyncio.run(main())
    finally:
        release.set()
    assert "demo: still busy" in caplog.text
