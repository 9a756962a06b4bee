"""Calm logs during outages. The Kafka client libraries log every failed reconnect, metadata refresh
and fetch (aiokafka retries every 100 ms: a 30-second outage made ~2,700 lines). `RepeatFilter` lets
the first record of each message template through, then one per backoff window (1 s, 2 s, 4 s … 30 s)
carrying how many similar records it stands for; a template quiet for a minute starts over. So an
outage costs a few lines per kind of failure, and a new kind of failure is never hidden.
`install_log_filters` also makes every record safe to write (gateway.monitoring.redact).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.monitoring import redact

__all__ = ["BENIGN", "CLIENT_LOGGERS", "BenignFilter", "RepeatFilter", "install_log_filters"]

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


def install_log_filters(logger: logging.Logger | None = None) -> None:
    """Records made safe to write (gateway.monitoring.redact.install: every record, every handler);
    one RepeatFilter on every handler of `logger` (the root logger by default), and the BenignFilter
    on the client loggers that need it; once."""
    redact.install()
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter())
    for name in {n for n, _ in BENIGN}:
        client = logging.getLogger(name)
        if not any(isinstance(f, BenignFilter) for f in client.filters):
            client.addFilter(BenignFilter(tuple(t for n, t in BENIGN if n == name)))
