"""The retention flow's edges: its clock setting, the partition of a key, the raw purge.

The raw topics (`<prefix>.raw.<format>.<source>`) are keyed by the source's own key, not by numéro
unique, so an application's raw inputs cannot be tombstoned: they are purged with the admin API's
DeleteRecords, on every partition of every raw topic, up to the offset the ingest group
(`gateway.topics.ingest_group(app_id)`) has committed, never beyond (what the ingest has not read
yet is still to be normalised). Their 7-day time retention drops them anyway; the purge removes
at once the inputs of the last days. A partition the ingest has never committed is left as it is.
The principal running the flow needs DELETE on the raw topics (`gateway acl apply` grants it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from kafka.partitioner.default import murmur2

from gateway.errors import ConfigError, RetriableError
from gateway.topics import DLQ_SUFFIX, ingest_group, raw_prefix

__all__ = ["PurgeResult", "RawPurge", "make_clock", "partition_of"]

_log = logging.getLogger(__name__)


def make_clock(setting: str | None) -> Callable[[], datetime]:
    """The retention clock: the system's, a fixed day, or the day written in a file (read each call)."""
    if not setting:
        return lambda: datetime.now(UTC)
    if setting.startswith("file:"):
        path = Path(setting[5:])

        def from_file() -> datetime:
            try:
                day = date.fromisoformat(path.read_text(encoding="utf-8").strip())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"retention clock file {path}: no YYYY-MM-DD date in it ({exc})") from None
            return datetime.combine(day, datetime.now(UTC).time(), UTC)

        return from_file
    day = date.fromisoformat(setting)
    return lambda: datetime.combine(day, datetime.now(UTC).time(), UTC)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition the producers' default partitioner (murmur2, as the Java client) gives `key`."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class PurgeResult:
    partitions: int  # raw partitions whose start moved up to the ingest's committed offset
    topics: int


class RawPurge:
    """DeleteRecords on the raw topics up to the ingest's committed offsets (blocking: run it in a
    thread). One admin client, kept between purges."""

    def __init__(self, kwargs: Mapping[str, Any], prefix: str, app_id: str) -> None:
        self.kwargs = dict(kwargs)
        self.prefix = prefix
        self.group = ingest_group(app_id)
        self._admin: Any = None

    def _client(self) -> Any:
        from kafka import KafkaAdminClient  # noqa: PLC0415 - heavy import, only at the edge

        if self._admin is None:
            self._admin = KafkaAdminClient(**self.kwargs, client_id="gp-gateway-retention")
        return self._admin

    def targets(self, admin: Any) -> dict[Any, int]:
        """(raw topic partition -> the ingest's committed offset), for every raw partition it read."""
        start = raw_prefix(self.prefix)
        raw = {t for t in admin.list_topics() if t.startswith(start) and not t.endswith(DLQ_SUFFIX)}
        committed = admin.list_group_offsets({self.group: None}).get(self.group, {})
        return {
            tp: int(meta.offset) for tp, meta in committed.items() if tp.topic in raw and meta.offset >= 0
        }

    def __call__(self) -> PurgeResult:
        """Purge; RetriableError (naming what failed, never a record) when the broker refuses or
        does not answer: the erasures wait for their `raw` receipt and are re-driven."""
        from kafka.errors import KafkaError  # noqa: PLC0415

        try:
            admin = self._client()
            targets = self.targets(admin)
            if targets:
                admin.delete_records(targets, timeout_ms=30_000)
        except KafkaError as exc:
            self.close()
            raise RetriableError(
                f"raw purge failed ({type(exc).__name__}): the worker's principal needs DELETE on the"
                f" topics {raw_prefix(self.prefix)}* and DESCRIBE on the group {self.group}"
            ) from exc
        return PurgeResult(len(targets), len({tp.topic for tp in targets}))

    def close(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:  # noqa: BLE001 - closing a broken client: nothing more to do
                _log.debug("retention: admin client close failed")
            self._admin = None
