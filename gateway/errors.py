"""The one error hierarchy of the gateway, branched by what the caller must do.

- ConfigError: fail fast at start (bad settings, policy, schema).
- RetriableError: back off and retry (broker or registry unreachable, timeouts).
- RejectedMessage: dead-letter the input and continue with the next one.
- FatalError: stop the flow.

Control-flow signals (SkipMessage) are not failures and are never logged as errors.
Messages never hold payload values: they name fields and reasons only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "ConfigError",
    "FatalError",
    "GatewayError",
    "InvalidConfig",
    "Problem",
    "RejectedMessage",
    "RetriableError",
    "SkipMessage",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in an input: where (a field path), what was there, and why it is wrong.

    `value` is a short, redacted description of the offending value, never a personal datum: its
    type, its length, the expected pattern, or a code only when it belongs to the code list checked
    (an unknown code is described by its length: a shifted column puts names or amounts there).
    """

    path: str
    reason: str
    value: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"path": self.path, "reason": self.reason, "value": self.value}


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """Invalid configuration: the gateway refuses to start (or to swap in the new config)."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[Problem, ...] = tuple(problems)

    def __str__(self) -> str:
        base = super().__str__()
        if not self.problems:
            return base
        lines = [base] + [f"  - {p.path}: {p.reason}" for p in self.problems]
        return "\n".join(lines)


class InvalidConfig(ConfigError, ValueError):
    """A configuration value is wrong (also a ValueError for callers that expect one)."""


class RetriableError(GatewayError):
    """A transient failure: retry with backoff, then dead-letter or stop per policy."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class _Evidence:
    original: bytes | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


class RejectedMessage(GatewayError):
    """The input cannot be processed: send it to the dead-letter topic and go on.

    Carries every problem found (not just the first) and, when known, the original bytes and
    their Kafka coordinates so the dead letter can be replayed.
    """

    def __init__(
        self,
        message: str,
        problems: Iterable[Problem] = (),
        *,
        original: bytes | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message)
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.evidence = _Evidence(original, topic, partition, offset)

    def __str__(self) -> str:
        base = super().__str__()
        if not self.problems:
            return base
        return base + ": " + "; ".join(f"{p.path}: {p.reason}" for p in self.problems)


class FatalError(GatewayError):
    """The flow cannot go on safely (e.g. the audit log cannot be written): stop it."""


class SkipMessage(Exception):
    """Control flow: the message is deliberately not processed (not an error, not logged as one)."""
