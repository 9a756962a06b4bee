"""Calm logs during outages, and exceptions logged without what their messages may carry.

`SafeExceptions`: a record's exception (``log.exception``, ``exc_info=True``) is written with its
frames and class names only; a message is kept for the gateway's own errors (which never hold a
value, by rule) and an OSError's errno and strerror, else withheld. A library's message may quote
the data it failed on: PostgreSQL's "Failing row contains (...)", pydantic's `input_value`, a codec's
bad value; a chained cause (`raise ... from exc`) would carry it into the logs. Exceptions passed as
a message's arguments (``log.warning("... %s", exc)``) get the same one line.

Calm logs during outages. The Kafka client libraries log every failed reconnect, metadata refresh
and fetch (aiokafka retries every 100 ms: a 30-second outage made ~2,700 lines). `RepeatFilter` lets
the first record of each message template through, then one per backoff window (1 s, 2 s, 4 s … 30 s)
carrying how many similar records it stands for; a template quiet for a minute starts over. So an
outage costs a few lines per kind of failure, and a new kind of failure is never hidden.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeGuard

from gateway.errors import GatewayError

__all__ = [
    "BENIGN",
    "CLIENT_LOGGERS",
    "BenignFilter",
    "RepeatFilter",
    "SafeExceptions",
    "install_log_filters",
    "safe_exception",
    "safe_traceback",
]

CLIENT_LOGGERS = ("kafka", "aiokafka", "faust", "mode")


@dataclass(slots=True)
class _Seen:
    next_at: float
    window: float
    suppressed: int
    last: float


class RepeatFilter(logging.Filter):
    def __init__(
        self,
        prefixes: tuple[str, ...] = CLIENT_LOGGERS,
        *,
        first_window_s: float = 1.0,
        max_window_s: float = 30.0,
        quiet_reset_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.first, self.max, self.reset = first_window_s, max_window_s, quiet_reset_s
        self.clock = clock
        self._seen: dict[tuple[str, str], _Seen] = {}

    def _ours(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in self.prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._ours(record.name):
            return True
        now = self.clock()
        key = (record.name, str(record.msg))  # the template, not its arguments
        seen = self._seen.get(key)
        if seen is None or now - seen.last > self.reset:
            if len(self._seen) > 2000:
                self._seen = {k: v for k, v in self._seen.items() if now - v.last <= self.reset}
            self._seen[key] = _Seen(now + self.first, self.first, 0, now)
            return True
        seen.last = now
        if now < seen.next_at:
            seen.suppressed += 1
            return False
        if seen.suppressed:
            note = f" [{seen.suppressed} similar in the last {seen.window:.0f} s]"
            record.msg = str(record.msg) + note.replace("%", "%%")
        seen.window = min(seen.window * 2, self.max)
        seen.next_at = now + seen.window
        seen.suppressed = 0
        return True


# (logger, text) of client records logged as errors for conditions that are expected and retried:
# on a fresh broker the group coordinator is not available for the first seconds (the offsets topic
# is being created), which aiokafka logs at ERROR at every normal start.
BENIGN: tuple[tuple[str, str], ...] = (
    ("aiokafka.consumer.group_coordinator", "GroupCoordinatorNotAvailableError"),
)


class BenignFilter(logging.Filter):
    """On a client logger: an expected, retried condition becomes INFO (dropped below INFO's level)."""

    def __init__(self, texts: tuple[str, ...]) -> None:
        super().__init__()
        self.texts = texts

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO and any(t in record.getMessage() for t in self.texts):
            record.levelno, record.levelname = logging.INFO, "INFO"
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


def safe_exception(exc: BaseException) -> str:
    """One exception's line without what its message may carry (see the module's docstring)."""
    name = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ("builtins", "__main__"):
        name = f"{module}.{name}"
    if isinstance(exc, GatewayError):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"[Errno {exc.errno}] {exc.strerror}"
    else:
        return f"{name} (message withheld: it may quote data)"
    return f"{name}: {text}" if text else name


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def safe_traceback(exc: BaseException) -> str:
    """A traceback as Python prints it (causes and contexts first), each exception's line written
    by `safe_exception`: the frames (file, line, function, source line), never a message's data."""
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
    parts: list[str] = []
    for error, linked in reversed(chain):
        frames = traceback.format_list(traceback.extract_tb(error.__traceback__))
        head = "Traceback (most recent call last):\n" if frames else ""
        parts.append(head + "".join(frames) + safe_exception(error) + "\n" + linked)
    return "".join(parts).rstrip("\n")


def _foreign(value: object) -> TypeGuard[BaseException]:
    """An exception whose text is not the gateway's own (which never holds a value)."""
    return isinstance(value, BaseException) and not isinstance(value, GatewayError)


class SafeExceptions(logging.Filter):
    """On a handler: every record's exception and exception arguments written safely (module docs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = safe_traceback(record.exc_info[1])
            record.exc_info = None  # formatters write exc_text as it is
        if isinstance(record.args, tuple) and any(_foreign(a) for a in record.args):
            record.args = tuple(safe_exception(a) if _foreign(a) else a for a in record.args)
        return True


def install_log_filters(logger: logging.Logger | None = None) -> None:
    """Add one SafeExceptions and one RepeatFilter to every handler of `logger` (the root logger by
    default), and the BenignFilter to the client loggers that need it; once."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, SafeExceptions) for f in handler.filters):
            handler.addFilter(SafeExceptions())
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter())
    for name in {n for n, _ in BENIGN}:
        client = logging.getLogger(name)
        if not any(isinstance(f, BenignFilter) for f in client.filters):
            client.addFilter(BenignFilter(tuple(t for n, t in BENIGN if n == name)))
