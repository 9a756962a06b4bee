"""The one retry module of the gateway: backoff policy and what counts as a broker that is away.

Every loop that retries (sink runtime, ingest loop, SNE connector, `gateway run` waiting for the
broker) takes its delays from a `RetryPolicy` and asks `broker_lost` whether an error is worth
retrying, so that backoff and its bounds are the same everywhere.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from gateway.errors import RetriableError

__all__ = ["BROKER_BACKOFF", "RetryPolicy", "broker_lost", "with_retry"]

T = TypeVar("T")
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: base * 2^(n-1) bounded by max_delay (or the error's retry_after).

    `attempts` is the number of tries before giving up (0: never give up)."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        return float(min(self.max_delay, self.base_delay * (2 ** max(0, attempt - 1))))

    def exhausted(self, attempt: int) -> bool:
        """True once `attempt` tries were made and the policy allows no more."""
        return self.attempts > 0 and attempt >= self.attempts


BROKER_BACKOFF = RetryPolicy(attempts=0, base_delay=1.0, max_delay=30.0)  # 1 s, 2 s ... 30 s, no limit


def broker_lost(exc: BaseException) -> bool:
    """True for the errors of a broker that is away (worth retrying), not of a record or a bug."""
    from kafka.errors import BrokerNotAvailableError, CommitFailedError, KafkaError  # noqa: PLC0415

    if isinstance(exc, (RetriableError, BrokerNotAvailableError, CommitFailedError)):
        return True
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


def with_retry(
    fn: Callable[[], T], what: str, stop: threading.Event | None = None, max_delay: float = 30.0
) -> T:
    """`fn()`, retried with exponential backoff (0.5 s up to `max_delay`) while it raises
    RetriableError, one log line per retry; gives up (re-raises) only when `stop` is set."""
    policy = RetryPolicy(attempts=0, base_delay=0.5, max_delay=max_delay)
    attempt = 0
    while True:
        try:
            return fn()
        except RetriableError as exc:
            attempt += 1
            if stop is not None and stop.is_set():
                raise
            delay = policy.delay(attempt, exc.retry_after)
            _log.warning("%s: %s; retry %d in %.1f s", what, exc, attempt, delay)
            if stop is not None:
                if stop.wait(delay):
                    raise
            else:
                threading.Event().wait(delay)
