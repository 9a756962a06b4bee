"""Exceptions in logs: frames and class names, never what a library's message quotes (payload data)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from gateway.errors import RetriableError
from gateway.monitoring.logs import SafeExceptions, install_log_filters

SECRET = "Dupont-Ndiaye 1234.56 AAH"  # noqa: S105 - what a database or codec error could quote
DETAIL = f"null value violates not-null constraint DETAIL: Failing row contains ({SECRET})"


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    logger = logging.getLogger("gp-test-safe-exceptions")
    logger.propagate = False
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    install_log_filters(logger)
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)


def _write_rows() -> None:
    raise ValueError(DETAIL)


def _sink_write() -> None:
    try:
        _write_rows()
    except ValueError as exc:
        raise RetriableError("PostgreSQL refused the batch") from exc


def test_a_logged_chain_keeps_frames_and_types_never_the_quoted_data(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = logged
    try:
        _sink_write()
    except RetriableError:
        logger.exception("sink stopped")
    text = out.getvalue()
    assert SECRET not in text
    assert "Failing row" not in text
    assert "ValueError (message withheld: it may quote data)" in text
    assert "gateway.errors.RetriableError: PostgreSQL refused the batch" in text
    assert "The above exception was the direct cause of the following exception:" in text
    assert "in _write_rows" in text
    assert text.index("ValueError (") < text.index("RetriableError:")  # causes first, as Python prints


def test_an_exception_given_as_an_argument_is_one_safe_line(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = logged
    logger.warning("delivery failed: %s", ValueError(SECRET))
    logger.warning("broker away: %s", ConnectionRefusedError(111, "Connection refused"))
    text = out.getvalue()
    assert SECRET not in text
    assert "delivery failed: ValueError (message withheld" in text
    assert "broker away: ConnectionRefusedError: [Errno 111] Connection refused" in text


def _lookup() -> None:
    raise KeyError(SECRET)


def _replaced() -> None:
    try:
        _lookup()
    except KeyError:
        raise RuntimeError(SECRET) from None


def test_a_context_is_written_and_a_suppressed_one_is_not() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
    try:
        _replaced()
    except RuntimeError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    assert SafeExceptions().filter(record)
    assert record.exc_info is None
    assert record.exc_text is not None
    assert SECRET not in record.exc_text
    assert "KeyError" not in record.exc_text  # `from None`: Python does not print it either
    assert record.exc_text.startswith("Traceback (most recent call last):")
    assert record.exc_text.endswith("RuntimeError (message withheld: it may quote data)")


def test_install_adds_each_filter_once(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, _ = logged
    install_log_filters(logger)
    (handler,) = [h for h in logger.handlers if type(h) is logging.StreamHandler]
    assert sum(isinstance(f, SafeExceptions) for f in handler.filters) == 1
