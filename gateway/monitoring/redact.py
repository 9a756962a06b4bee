"""Log records and crash reports written without what library messages may quote.

A library's exception message may quote the data it failed on (PostgreSQL's "Failing row contains
(...)", pydantic's `input_value`, a codec's bad value), and a chained cause (`raise ... from exc`)
carries it along; asyncio's reports quote the reprs of tasks and callbacks, with their arguments.
Payloads hold health, violence and income data, so every record is cleaned when it is created
(`logging.setLogRecordFactory`: whatever handler, logger or library writes it, added before or after):
- its exception (``log.exception``, ``exc_info=True``) becomes `safe_traceback`: the frames (file,
  line, function, source line) and each exception's class; a message is kept only for the
  gateway's own errors (which never hold a value, by rule) and an OSError's errno (its standard
  text from the errno, never the text the raiser wrote);
- an exception given as the message or among its arguments (tuple or mapping) becomes text at once:
  a gateway error's own message, any other's `safe_exception` line;
- asyncio's reports keep their first words (up to the first repr), warnings their place and category;
- a record that cannot be cleaned (an exception's __str__ that raises...) is replaced by a fixed line.
Uncaught exceptions in threads and "exception ignored" reports go through logging too (`install`).
Out of reach: text formatted before logging (``f"... {exc}"``, ``str(exc)``): the gateway's code does
not do that with a foreign exception (tests/unit/normalise/test_leak.py and the sinks' tests).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from gateway.errors import GatewayError

__all__ = ["clean", "install", "safe_exception", "safe_traceback"]

WITHHELD = "(message withheld: it may quote data)"
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"
_REPR_STARTS = re.compile(r"[(<{\[]")
_WARNING = re.compile(r"^(.*?:\d+: \w+): ")  # warnings.formatwarning: "file:line: Category: text"
_log = logging.getLogger("gateway")


def safe_exception(exc: BaseException) -> str:
    """One exception's line without what its message may carry (see the module's docstring)."""
    name = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ("builtins", "__main__"):
        name = f"{module}.{name}"
    if isinstance(exc, GatewayError):
        text = str(exc)
    elif isinstance(exc, OSError) and isinstance(exc.errno, int):
        text = f"[Errno {exc.errno}] {os.strerror(exc.errno)}"
    else:
        return f"{name} {WITHHELD}"
    return f"{name}: {text}" if text else name


def _chain(exc: BaseException) -> list[tuple[BaseException, str]]:
    """The exception, its cause or context, theirs...: (exception, the link to the next one)."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    link = ""
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    return chain


def safe_traceback(exc: BaseException) -> str:
    """A traceback as Python prints it (causes and contexts first), each exception's line written
    by `safe_exception`, an exception group's members after it, indented."""
    parts: list[str] = []
    for error, linked in reversed(_chain(exc)):
        frames = traceback.format_list(traceback.extract_tb(error.__traceback__))
        head = "Traceback (most recent call last):\n" if frames else ""
        part = head + "".join(frames) + safe_exception(error) + "\n"
        if isinstance(error, BaseExceptionGroup):
            for i, member in enumerate(error.exceptions, 1):
                inner = safe_traceback(member).replace("\n", "\n  | ")
                part += f"  +---- {i} ----\n  | {inner}\n"
        parts.append(part + linked)
    return "".join(parts).rstrip("\n")


def _line(exc: BaseException) -> str:
    """An exception given as a message or an argument, as text now (a gateway error's own text: it
    never holds a value; any other's class): a __str__ that raises does so here, not in a handler."""
    return str(exc) if isinstance(exc, GatewayError) else safe_exception(exc)


def _first_words(message: str) -> str:
    return _REPR_STARTS.split(message.split("\n", 1)[0], maxsplit=1)[0].rstrip()


def clean(record: logging.LogRecord) -> None:
    """Make one record safe to write (see the module's docstring), in place."""
    try:
        if record.exc_info:
            exc = record.exc_info[1]
            record.exc_text = safe_traceback(exc) if isinstance(exc, BaseException) else None
            record.exc_info = None  # formatters write exc_text as it is
        if record.name == "asyncio" and isinstance(record.msg, str):
            record.msg = f"{_first_words(record.getMessage())} (details withheld: they may quote data)"
            record.args = ()
        elif record.name == "py.warnings":  # the formatted warning, as msg (3.11.7+) or argument
            match = _WARNING.match(record.getMessage())
            record.msg, record.args = (match.group(1) if match else "a warning") + f" {WITHHELD}", ()
        if isinstance(record.msg, BaseException):
            record.msg = _line(record.msg)
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, BaseException) for a in args):
            record.args = tuple(_line(a) if isinstance(a, BaseException) else a for a in args)
        elif isinstance(args, Mapping) and any(isinstance(a, BaseException) for a in args.values()):
            record.args = {k: _line(v) if isinstance(v, BaseException) else v for k, v in args.items()}
    except Exception:  # noqa: BLE001 - a record that cannot be made safe is not written as it is
        record.msg, record.args = "a log record was withheld: it could not be made safe", ()
        record.exc_info = record.exc_text = None


def _safe_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        clean(record)
        return record

    make.gp_safe = True  # type: ignore[attr-defined]
    return make


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    where = args.thread.name if args.thread is not None else "a thread"
    exc = args.exc_value if args.exc_value is not None else args.exc_type()
    _log.error("uncaught exception in %s", where, exc_info=(args.exc_type, exc, args.exc_traceback))


def _unraisable_hook(unraisable: Any) -> None:
    obj = unraisable.object  # a function or a type is named by its qualified name, not its repr
    what = getattr(obj, "__qualname__", None) or (type(obj).__name__ if obj is not None else "an object")
    exc = unraisable.exc_value
    info = (unraisable.exc_type, exc, unraisable.exc_traceback) if exc is not None else None
    _log.error("exception ignored in %s", what, exc_info=info)


def install() -> None:
    """Clean every log record from now on, and send uncaught thread exceptions, "exception ignored"
    reports and warnings through logging; once (a second call changes nothing)."""
    if not getattr(logging.getLogRecordFactory(), "gp_safe", False):
        logging.setLogRecordFactory(_safe_factory(logging.getLogRecordFactory()))
    threading.excepthook = _thread_hook
    sys.unraisablehook = _unraisable_hook
    logging.captureWarnings(True)
