"""Log records and crash reports: frames and class names, never what a library's message quotes
(payload data), whatever handler writes them (gateway.monitoring.redact)."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import threading
import warnings
from collections.abc import Iterator

import pytest
from gateway.errors import RetriableError
from gateway.monitoring import redact

SECRET = "Dupont-Ndiaye 1234.56 AAH"  # noqa: S105 - what a database or codec error could quote
DETAIL = f"null value violates not-null constraint DETAIL: Failing row contains ({SECRET})"


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    """A handler added after the install (as faust's or a library's would be), on a child logger."""
    saved = (logging.getLogRecordFactory(), threading.excepthook, sys.unraisablehook)
    redact.install()
    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(n) for n in ("gp-test-redact", "gateway", "asyncio", "py.warnings")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield text
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        logging.setLogRecordFactory(saved[0])
        threading.excepthook, sys.unraisablehook = saved[1], saved[2]
        logging.captureWarnings(False)


def _write_rows() -> None:
    raise ValueError(DETAIL)


def _sink_write() -> None:
    try:
        _write_rows()
    except ValueError as exc:
        raise RetriableError("PostgreSQL refused the batch") from exc


def test_a_logged_chain_keeps_frames_and_types_never_the_quoted_data(out: io.StringIO) -> None:
    try:
        _sink_write()
    except RetriableError:
        logging.getLogger("gp-test-redact").exception("sink stopped")
    text = out.getvalue()
    assert SECRET not in text
    assert "Failing row" not in text
    assert "ValueError (message withheld: it may quote data)" in text
    assert "gateway.errors.RetriableError: PostgreSQL refused the batch" in text
    assert "The above exception was the direct cause of the following exception:" in text
    assert "in _write_rows" in text
    assert text.index("ValueError (") < text.index("RetriableError:")  # causes first, as Python prints


def test_exceptions_given_as_message_or_arguments_are_one_safe_line(out: io.StringIO) -> None:
    log = logging.getLogger("gp-test-redact")
    log.warning("delivery failed: %s", ValueError(SECRET))
    log.warning("delivery failed: %(e)s", {"e": KeyError(SECRET)})
    log.error(TypeError(SECRET))
    log.warning("broker away: %s", ConnectionRefusedError(111, f"refused {SECRET}"))
    log.warning("stopped: %s", RetriableError("broker unreachable"))  # the gateway's own: as it is
    text = out.getvalue()
    assert SECRET not in text
    assert "delivery failed: ValueError (message withheld" in text
    assert "delivery failed: KeyError (message withheld" in text
    assert "TypeError (message withheld" in text
    assert "broker away: ConnectionRefusedError: [Errno 111] Connection refused" in text
    assert "stopped: broker unreachable" in text


def _lookup() -> None:
    raise KeyError(SECRET)


def _replaced() -> None:
    try:
        _lookup()
    except KeyError:
        raise RuntimeError(SECRET) from None


def test_a_suppressed_context_is_not_written_and_a_group_shows_its_members() -> None:
    try:
        _replaced()
    except RuntimeError as exc:
        text = redact.safe_traceback(exc)
    assert SECRET not in text
    assert "KeyError" not in text  # `from None`: Python does not print it either
    assert text.startswith("Traceback (most recent call last):")
    assert text.endswith("RuntimeError (message withheld: it may quote data)")
    group = ExceptionGroup("two failed", [ValueError(SECRET), RetriableError("PostgreSQL away")])
    text = redact.safe_traceback(group)
    assert SECRET not in text
    assert "+---- 1 ----" in text
    assert "ValueError (message withheld" in text
    assert "RetriableError: PostgreSQL away" in text


def test_asyncio_reports_keep_their_first_words_not_the_reprs(out: io.StringIO) -> None:
    def callback(record: dict[str, str]) -> None:
        raise ValueError(record["nom"])

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(callback, {"nom": SECRET})
        await asyncio.sleep(0.01)

    asyncio.run(main())
    text = out.getvalue()
    assert SECRET not in text
    assert "asyncio ERROR Exception in callback" in text
    assert "details withheld" in text
    assert "in callback" in text and "ValueError (message withheld" in text


class _Unprintable(RetriableError):
    def __str__(self) -> str:
        raise ValueError(SECRET)


def test_uncaught_thread_errors_unraisable_ones_warnings_and_broken_records_are_safe(
    out: io.StringIO,
) -> None:
    thread = threading.Thread(target=_sink_write, name="gp-test-thread")
    thread.start()
    thread.join()

    class Broken:
        def __del__(self) -> None:
            raise ValueError(SECRET)

    Broken()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.captureWarnings(True)  # catch_warnings restored what captureWarnings had replaced
        warnings.warn(f"odd value {SECRET}", UserWarning, stacklevel=1)
    logging.getLogger("gp-test-redact").warning("failed: %s", _Unprintable("x"))
    text = out.getvalue()
    assert SECRET not in text
    assert "uncaught exception in gp-test-thread" in text
    assert "<locals>.Broken.__del__" in text
    assert "exception ignored in test_uncaught_thread_errors" in text
    assert "UserWarning (message withheld" in text
    assert "a log record was withheld" in text


def test_install_twice_cleans_once(out: io.StringIO) -> None:
    factory = logging.getLogRecordFactory()  # the fixture installed it once
    redact.install()
    assert logging.getLogRecordFactory() is factory
    logging.getLogger("gp-test-redact").warning("once: %s", ValueError(SECRET))
    assert out.getvalue().count("once: ValueError (message withheld") == 1
