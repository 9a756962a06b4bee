"""PostgreSQL sink erasure on a real PostgreSQL: every row under the key deleted from every table of
the sink, in the transaction of the offsets; the erasures table keeps the proof without a nominative
value; a refused deletion leaves everything as it was."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import psycopg
from connectors.postgres import PostgresSink, PostgresSinkConfig
from gateway.connectors import Erasure, SinkRecord
from gateway.testing.actor_stream import sink_records
from gateway.testing.effacement import erasure_sink_record

TOPIC = "gp.actor.contract"


def _sink(dsn: str, **extra: object) -> PostgresSink:
    return PostgresSink(PostgresSinkConfig.model_validate({"dsn": dsn, **extra}))


def _run(sink: PostgresSink, records: Sequence[SinkRecord], erasures: Sequence[Erasure] = ()) -> None:
    async def go() -> None:
        try:
            if records:
                await sink.write(records)
            if erasures:
                await sink.erase(erasures)
        finally:
            await sink.flush()

    asyncio.run(go())


def _count(dsn: str, query: str, *args: object) -> int:
    with psycopg.connect(dsn) as conn:
        found = conn.execute(query, args).fetchone()
    return int(found[0]) if found else 0


def test_every_row_of_the_application_is_deleted_and_the_erasure_recorded(postgres_dsn: str) -> None:
    records = list(sink_records(topic=TOPIC))
    with_demand = {r.key for r in records if ".Demande" in r.schema}
    key = Counter(r.key for r in records if r.key in with_demand).most_common(1)[0][0]  # and decisions
    _run(_sink(postgres_dsn), records)
    with psycopg.connect(postgres_dsn) as conn:  # a table of the recipient's own, keyed like the sink's
        conn.execute("CREATE TABLE gp_notes (gp_key text, note text)")
        conn.execute("INSERT INTO gp_notes VALUES (%s, 'rdv'), ('other', 'kept')", (key,))
    before = {t: _count(postgres_dsn, f"SELECT count(*) FROM {t}") for t in ("gp_demande", "gp_decision")}  # noqa: S608
    assert _count(postgres_dsn, "SELECT count(*) FROM gp_decision WHERE gp_key = %s", key) > 0
    erasure = erasure_sink_record(key, topic=TOPIC, offset=len(records))
    _run(_sink(postgres_dsn), [], [Erasure.of(erasure)])
    for table in ("gp_demande", "gp_decision", "gp_notes"):
        assert _count(postgres_dsn, f"SELECT count(*) FROM {table} WHERE gp_key = %s", key) == 0, table  # noqa: S608
    assert _count(postgres_dsn, "SELECT count(*) FROM gp_notes") == 1  # the other key kept
    mine = sum(1 for r in records if r.key == key and ".Decision" in r.schema)
    assert _count(postgres_dsn, "SELECT count(*) FROM gp_decision") == before["gp_decision"] - mine
    assert _count(postgres_dsn, "SELECT count(*) FROM gp_demande") == before["gp_demande"] - 1
    assert _count(postgres_dsn, "SELECT next_offset FROM gp_offsets") == len(records) + 1
    with psycopg.connect(postgres_dsn) as conn:
        row = conn.execute(
            "SELECT gp_key, num_unique, date_radiation::text, date_effacement::text, par, gp_offset"
            " FROM gp_erasures"
        ).fetchall()
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'gp_erasures'"
            )
        ]
    assert row == [(key, key, "2025-03-14", "2026-03-14", "gp-gateway.retention/horloge", len(records))]
    assert not {"nom", "prenom", "demandeur", "adresse"} & set(columns)


def test_a_replayed_erasure_deletes_nothing_new(postgres_dsn: str) -> None:
    records = list(sink_records(topic=TOPIC))
    key = next(r.key for r in records if ".Demande" in r.schema)
    erasure = Erasure.of(erasure_sink_record(key, topic=TOPIC, offset=len(records)))
    _run(_sink(postgres_dsn), records, [erasure])
    again = next(r for r in records if r.key == key and ".Demande" in r.schema)
    new = SinkRecord(
        again.schema,
        key,
        again.record,
        again.headers,
        TOPIC,
        0,
        len(records) + 1,
        writer_schema=again.writer_schema,
    )
    _run(_sink(postgres_dsn), [new])  # re-created after the erasure: new data
    _run(_sink(postgres_dsn), [], [erasure])  # the erasure delivered again (below the stored offset)
    assert _count(postgres_dsn, "SELECT count(*) FROM gp_demande WHERE gp_key = %s", key) == 1
    assert _count(postgres_dsn, "SELECT count(*) FROM gp_erasures") == 1


def test_without_the_erasures_table_nothing_is_kept(postgres_dsn: str) -> None:
    records = list(sink_records(topic=TOPIC))
    key = next(r.key for r in records if ".Demande" in r.schema)
    _run(
        _sink(postgres_dsn, record_erasures=False),
        records,
        [Erasure.of(erasure_sink_record(key, topic=TOPIC, offset=len(records)))],
    )
    assert _count(postgres_dsn, "SELECT count(*) FROM gp_demande WHERE gp_key = %s", key) == 0
    assert (
        _count(
            postgres_dsn, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'gp_erasures'"
        )
        == 0
    )
