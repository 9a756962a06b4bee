"""What `gateway retention run` and the retention flow say to each other, and the audit record of
an erasure. Pure (JSON and dicts), shared by the flow and the command.

- A **command** (`<prefix>.retention.control`, one record per partition, sent to that partition):
  `{"op": "run" | "status", "request": id, "now": "YYYY-MM-DD" | null, "by": principal | null}`.
  `run` erases what is due by `now` in that partition (null: the worker's clock) and re-drives the
  erasures whose stores have not all answered; `status` only asks where the partition stands.
- A **status** (`<prefix>.retention.status`, key: the request id): what the partition did and what
  it still waits for: `{"request", "partition", "now", "due", "erased", "erasing", "missing":
  {store: count}, "refused"}`. `done` when nothing is being erased any more in the partition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from gateway.retention.clock import Entry

__all__ = ["OPS", "Command", "Status", "effacement"]

OPS = ("run", "status")


@dataclass(frozen=True, slots=True)
class Command:
    op: str
    request: str
    now: date | None = None
    by: str | None = None

    def to_bytes(self) -> bytes:
        now = self.now.isoformat() if self.now is not None else None
        body = {"op": self.op, "request": self.request, "now": now, "by": self.by}
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes | None) -> Command:
        """ValueError naming the field when `data` is not a command."""
        try:
            body = json.loads(data or b"")
        except ValueError:
            raise ValueError("$: not JSON") from None
        if not isinstance(body, dict):
            raise ValueError("$: not a JSON object")  # noqa: TRY004 - one error type for a bad command
        op, request, now, by = body.get("op"), body.get("request"), body.get("now"), body.get("by")
        if op not in OPS:
            raise ValueError(f"op: expected one of {', '.join(OPS)}")
        if not isinstance(request, str) or not 0 < len(request) <= 100:
            raise ValueError("request: expected a text of 1 to 100 characters")
        if by is not None and (not isinstance(by, str) or len(by) > 200):
            raise ValueError("by: expected a principal name or null")
        day = None
        if now is not None:
            try:
                day = date.fromisoformat(now) if isinstance(now, str) else None
            except ValueError:
                day = None
            if day is None:
                raise ValueError("now: expected YYYY-MM-DD or null")
        return cls(op, request, day, by)


@dataclass(frozen=True, slots=True)
class Status:
    request: str
    partition: int
    now: str | None = None
    due: int = 0  # erasures started (or re-driven) by this command
    erased: int = 0  # erasures completed by this step
    erasing: int = 0  # erasures of the partition still waiting for a store
    missing: dict[str, int] = field(default_factory=dict)  # store -> erasures waiting for it
    refused: str | None = None

    @property
    def done(self) -> bool:
        return self.refused is None and self.erasing == 0

    def to_bytes(self) -> bytes:
        body = {
            "request": self.request,
            "partition": self.partition,
            "now": self.now,
            "due": self.due,
            "erased": self.erased,
            "erasing": self.erasing,
            "missing": self.missing,
            "refused": self.refused,
        }
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes | None) -> Status:
        body = json.loads(data or b"")
        if not isinstance(body, dict):
            raise ValueError("$: not a JSON object")  # noqa: TRY004 - one error type for a bad command
        missing = body.get("missing") or {}
        return cls(
            request=str(body["request"]),
            partition=int(body["partition"]),
            now=body.get("now"),
            due=int(body.get("due", 0)),
            erased=int(body.get("erased", 0)),
            erasing=int(body.get("erasing", 0)),
            missing={str(k): int(v) for k, v in missing.items()} if isinstance(missing, Mapping) else {},
            refused=body.get("refused"),
        )


def effacement(num: str, entry: Entry, when: datetime, par: str, stores: list[str]) -> dict[str, Any]:
    """The fr.gp.Effacement record of a completed erasure (the audit entry: every store)."""
    if entry.radiation is None or entry.due is None:
        raise ValueError("an erasure needs the radiation and due dates")
    return {
        "numUnique": num,
        "dateRadiation": entry.radiation,
        "dateEffacement": entry.due,
        "time": when.astimezone(UTC),
        "par": par,
        "stores": sorted(stores),
    }
