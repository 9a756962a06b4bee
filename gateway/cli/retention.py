"""`gateway retention plan | run`: what is due for erasure, and erase it (docs/retention.md).

- `plan [--now DATE]` reads the clock of the retention flow (its table's changelog topic,
  `<app id>-gp-retention-clock-changelog`, compacted) and prints one line per application due by
  DATE: `<numéro unique> <due date> <stores>` (an erasure under way: the stores still to answer),
  sorted by due date then numéro unique, then the radiated applications without a radiation date
  (`sans-date` and the reason). The default DATE is the retention clock (GATEWAY_RETENTION_CLOCK).
- `run [--now DATE] [--timeout S]` asks the running worker (flow `retention`) to erase what is due
  by DATE (default: the worker's clock; a DATE later than it is refused): one command per
  partition on `<prefix>.retention.control`, then it waits for every partition's status on
  `<prefix>.retention.status`. Exit 0 when every erasure is complete (every expected store has
  answered), idempotent (a second run erases nothing); exit 1 after `--timeout` naming the stores
  that did not answer and how many erasures wait for each, or when the worker refused the run.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import click

from gateway.errors import GatewayError
from gateway.kafka_read import read_to_end
from gateway.settings import GatewaySettings

__all__ = ["clock_records", "retention"]


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {len(value)} characters") from None


def clock_records(
    kwargs: dict[str, Any], topic: str, *, timeout_s: float = 30.0
) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(key, value) of every committed record of the clock's changelog, from its beginning to its end."""
    big = {"max_partition_fetch_bytes": 8 * 1024 * 1024, "fetch_max_bytes": 64 * 1024 * 1024}
    for r in read_to_end(kwargs, topic, timeout_s=timeout_s, what="clock changelog", consumer_options=big):
        yield r.key, r.value


@click.group("retention")
def retention() -> None:
    """Erasure of radiated applications one year after their radiation (access-rules §5)."""


@retention.command("plan")
@click.option(
    "--now", "now_text", default=None, help="Due by this day (YYYY-MM-DD); default: the retention clock."
)
def plan(now_text: str | None) -> None:
    """One line per application due by --now: `<numéro unique> <due date> <stores>`."""
    from gateway.flows.retention import TABLE, expected_stores  # noqa: PLC0415
    from gateway.flows.retention_edge import make_clock  # noqa: PLC0415
    from gateway.kafka_config import client_kwargs  # noqa: PLC0415
    from gateway.retention.clock import NO_DATE, entries_of  # noqa: PLC0415
    from gateway.retention.clock import plan as plan_lines  # noqa: PLC0415

    settings = GatewaySettings()
    now = _day(now_text) or make_clock(settings.retention_clock)().date()
    topic = f"{settings.app_id}-{TABLE}-changelog"
    lines = plan_lines(
        entries_of(clock_records(client_kwargs(settings), topic)), now, expected_stores(settings)
    )
    due = undated = 0
    out = sys.stdout
    for line in lines:
        out.write(line + "\n")
        if f" {NO_DATE} " in line:
            undated += 1
        else:
            due += 1
    click.echo(f"{due} application(s) due by {now.isoformat()}; {undated} radiated without a date", err=True)


@retention.command("run")
@click.option(
    "--now", "now_text", default=None, help="Erase what is due by this day (default: the worker's clock)."
)
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for every store's answer.")
def run(now_text: str | None, timeout: float) -> None:
    """Ask the worker to erase what is due, wait until every erasure is complete; exit 0 when done."""
    from gateway.kafka_config import client_kwargs, client_security  # noqa: PLC0415
    from gateway.topics import retention_topic  # noqa: PLC0415

    settings = GatewaySettings()
    now = _day(now_text)
    request = f"run-{uuid.uuid4().hex[:12]}"
    by = client_security(settings).principal
    waiter = _Waiter(
        client_kwargs(settings),
        retention_topic("control", settings.topic_prefix),
        retention_topic("status", settings.topic_prefix),
    )
    try:
        result = waiter.run(request, now, by, timeout)
    finally:
        waiter.close()
    click.echo(result.summary(request, now))
    if not result.complete:
        sys.exit(1)


class _Result:
    def __init__(self, partitions: list[int]) -> None:
        from gateway.retention.messages import Status  # noqa: PLC0415

        self.partitions = partitions
        self.latest: dict[int, Status] = {}
        self.due = 0
        self.erased = 0

    @property
    def refused(self) -> str | None:
        return next((s.refused for s in self.latest.values() if s.refused), None)

    @property
    def complete(self) -> bool:
        return self.refused is None and all(p in self.latest and self.latest[p].done for p in self.partitions)

    def summary(self, request: str, now: date | None) -> str:
        day = (
            now.isoformat()
            if now
            else next((s.now for s in self.latest.values() if s.now), "the worker's clock")
        )
        head = f"retention run {request} (due by {day}): "
        if self.refused:
            return head + f"refused: {self.refused}"
        counts = f"{self.due} erasure(s) started or re-driven, {self.erased} completed"
        if self.complete:
            return head + counts + f"; every erasure complete ({len(self.partitions)} partitions)"
        missing: dict[str, int] = {}
        for s in self.latest.values():
            for store, n in s.missing.items():
                missing[store] = missing.get(store, 0) + n
        silent = [str(p) for p in self.partitions if p not in self.latest]
        waiting = sum(s.erasing for s in self.latest.values())
        parts = [head + counts + f"; NOT complete: {waiting} erasure(s) still waiting"]
        if missing:
            parts.append(
                "stores that have not answered: "
                + ", ".join(f"{k} ({v})" for k, v in sorted(missing.items()))
            )
        if silent:
            parts.append(
                f"partitions without an answer: {','.join(silent)} (is a worker running the retention flow?)"
            )
        return "; ".join(parts)


class _Waiter:
    """Sends the commands and reads the statuses (kafka-python, blocking)."""

    def __init__(self, kwargs: dict[str, Any], control: str, status: str) -> None:
        from kafka import KafkaConsumer, KafkaProducer  # noqa: PLC0415

        self.control, self.status = control, status
        self.producer = KafkaProducer(**kwargs, acks="all")
        self.consumer = KafkaConsumer(
            **kwargs, group_id=None, enable_auto_commit=False, isolation_level="read_committed"
        )

    def close(self) -> None:
        self.producer.close()
        self.consumer.close()

    def _partitions(self, topic: str) -> list[int]:
        found = self.consumer.partitions_for_topic(topic)
        if not found:
            raise GatewayError(f"topic {topic} does not exist: start the worker with the retention flow once")
        return sorted(found)

    def _send(self, op: str, request: str, now: date | None, by: str | None, partitions: list[int]) -> None:
        from gateway.retention.messages import Command  # noqa: PLC0415

        value = Command(op, request, now, by).to_bytes()
        for p in partitions:
            self.producer.send(self.control, key=request.encode(), value=value, partition=p)
        self.producer.flush(timeout=30)

    def run(self, request: str, now: date | None, by: str | None, timeout: float) -> _Result:
        from kafka import TopicPartition  # noqa: PLC0415

        from gateway.retention.messages import Status  # noqa: PLC0415

        partitions = self._partitions(self.control)
        status_parts = [TopicPartition(self.status, p) for p in self._partitions(self.status)]
        self.consumer.assign(status_parts)
        self.consumer.seek_to_end(*status_parts)
        for tp in status_parts:
            self.consumer.position(tp)  # the end, fixed before the commands are sent
        result = _Result(partitions)
        self._send("run", request, now, by, partitions)
        deadline = time.monotonic() + timeout
        next_poll = time.monotonic() + 2.0
        key = request.encode()
        while not result.complete and result.refused is None and time.monotonic() < deadline:
            for records in self.consumer.poll(timeout_ms=500).values():
                for r in records:
                    if r.key != key:
                        continue
                    try:
                        status = Status.from_bytes(r.value)
                    except (ValueError, KeyError, TypeError):
                        continue
                    result.due += status.due
                    result.erased += status.erased
                    result.latest[status.partition] = status
            if time.monotonic() >= next_poll:
                waiting = [p for p, s in result.latest.items() if not s.done and s.refused is None]
                if waiting:
                    self._send("status", request, None, by, waiting)
                next_poll = time.monotonic() + 2.0
        return result
