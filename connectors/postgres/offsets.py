"""The PostgreSQL sink's stored offsets: `<prefix>offsets` holds the next offset to read per (topic,
partition). They are claimed, read and advanced in the transaction that writes the rows: what makes
the sink exactly-once (the runtime resumes from them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.connectors import Partition, SinkRecord
from psycopg import Cursor, sql

__all__ = ["advance", "claim", "create", "next_offsets", "stored"]


def create(cur: Cursor[Any], table: sql.Composable) -> None:
    cur.execute(
        sql.SQL(
            'CREATE TABLE IF NOT EXISTS {} (gp_topic text COLLATE "C" NOT NULL,'
            " gp_partition integer NOT NULL, next_offset bigint NOT NULL,"
            " PRIMARY KEY (gp_topic, gp_partition))"
        ).format(table)
    )


def stored(cur: Cursor[Any], table: sql.Composable) -> dict[Partition, int]:
    """Every partition's next offset (read as they are: nothing locked)."""
    cur.execute(sql.SQL("SELECT gp_topic, gp_partition, next_offset FROM {}").format(table))
    return {(str(t), int(p)): int(n) for t, p, n in cur.fetchall()}


def next_offsets(records: Sequence[SinkRecord]) -> dict[Partition, int]:
    """The next offset of each partition of `records` (those with coordinates): one pass over a
    batch, for `claim` (its partitions) and `advance` (what to store)."""
    nexts: dict[Partition, int] = {}
    for r in records:
        if r.offset >= 0:
            tp = (r.topic, r.partition)
            nexts[tp] = max(nexts.get(tp, 0), r.offset + 1)
    return nexts


def claim(cur: Cursor[Any], table: sql.Composable, nexts: Mapping[Partition, int]) -> dict[Partition, int]:
    """The next offsets stored for the partitions of `nexts` (`next_offsets` of a batch), their rows
    locked until the transaction ends (created at 0 when absent; `advance` sets them before the
    commit). A second writer of a partition, e.g. a sink that lost it in a rebalance and has not
    noticed yet, waits here, then reads what the first one stored and skips it. Without the lock both
    read the same offset, both write, and the later commit can put a key's older demand over its
    newer one. Locked in one order, by topic then partition: two writers of several partitions
    cannot deadlock."""
    parts = sorted(nexts)
    if not parts:
        return {}
    pair = ([t for t, _ in parts], [p for _, p in parts])
    cur.execute(
        sql.SQL(
            "INSERT INTO {} (gp_topic, gp_partition, next_offset)"
            " SELECT t, p, 0 FROM unnest(%s::text[], %s::integer[]) AS u(t, p)"
            " ORDER BY t, p ON CONFLICT (gp_topic, gp_partition) DO NOTHING"
        ).format(table),
        pair,
    )
    cur.execute(
        sql.SQL(
            "SELECT o.gp_topic, o.gp_partition, o.next_offset FROM {} AS o"
            " JOIN unnest(%s::text[], %s::integer[]) AS u(t, p) ON o.gp_topic = u.t AND o.gp_partition = u.p"
            " ORDER BY o.gp_topic, o.gp_partition FOR UPDATE OF o"
        ).format(table),
        pair,
    )
    return {(str(t), int(p)): int(n) for t, p, n in cur.fetchall()}


def advance(cur: Cursor[Any], table: sql.Composable, nexts: Mapping[Partition, int]) -> None:
    """Store `nexts` (`next_offsets` of a batch), never moving a partition's offset backwards."""
    if nexts:
        cur.executemany(
            sql.SQL(
                "INSERT INTO {0} (gp_topic, gp_partition, next_offset) VALUES (%s, %s, %s)"
                " ON CONFLICT (gp_topic, gp_partition)"
                " DO UPDATE SET next_offset = GREATEST({0}.next_offset, EXCLUDED.next_offset)"
            ).format(table),
            [(t, p, n) for (t, p), n in nexts.items()],
        )
