"""Dead-letter headers in Kafka Connect's style, plus the gateway's structured problem list.

Headers never hold payload values: the exception message of a GatewayError names fields and reasons
only, and `gp.errors.problems` holds paths, reasons and redacted value descriptions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from gateway.errors import Problem, RejectedMessage

__all__ = ["ERR", "dead_letter_headers", "problems_from_headers"]

ERR = "__connect.errors."


def dead_letter_headers(
    error: BaseException,
    *,
    topic: str | None,
    partition: int | None,
    offset: int | None,
    stage: str,
    attempts: int = 1,
    connector: str = "gp-gateway",
) -> list[tuple[str, bytes]]:
    """Headers for a dead letter of `error` raised while processing the record at topic/partition/offset."""
    problems: tuple[Problem, ...] = error.problems if isinstance(error, RejectedMessage) else ()
    message = str(error) if isinstance(error, RejectedMessage) else type(error).__name__
    cls = type(error)
    headers = [
        (ERR + "topic", (topic or "").encode()),
        (ERR + "partition", str(-1 if partition is None else partition).encode()),
        (ERR + "offset", str(-1 if offset is None else offset).encode()),
        (ERR + "stage", stage.encode()),
        (ERR + "connector.name", connector.encode()),
        (ERR + "exception.class.name", f"{cls.__module__}.{cls.__qualname__}".encode()),
        (ERR + "exception.message", message[:4000].encode()),
        ("gp.errors.problems", json.dumps([p.as_dict() for p in problems], ensure_ascii=False).encode()),
        ("gp.errors.attempts", str(attempts).encode()),
        ("gp.errors.time", datetime.now(UTC).isoformat().encode()),
    ]
    return headers


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def problems_from_headers(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> list[Problem]:
    """The problem list of a dead letter; [] when the header is absent or not the gateway's shape
    (dead-letter topics are writable by others: a foreign or damaged header never raises)."""
    for k, v in headers:
        if k == "gp.errors.problems":
            try:
                items = json.loads(v)
            except (ValueError, TypeError, RecursionError):
                return []
            if not isinstance(items, list):
                return []
            return [
                Problem(_text(i.get("path")) or "", _text(i.get("reason")) or "", _text(i.get("value")))
                for i in items
                if isinstance(i, dict)
            ]
    return []
