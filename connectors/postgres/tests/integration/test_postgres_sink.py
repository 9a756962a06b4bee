"""PostgreSQL sink on a real PostgreSQL: upsert of the latest demand, decisions appended, offsets in the
rows' transaction, a view change adds columns, a type that cannot evolve is refused by name."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import replace

import psycopg
import pytest
from connectors.postgres import PostgresSink, PostgresSinkConfig
from gateway.connectors import SinkRecord
from gateway.errors import RejectedMessage, RetriableError
from gateway.testing.actor_stream import sink_records


def _sink(dsn: str) -> PostgresSink:
    return PostgresSink(PostgresSinkConfig.model_validate({"dsn": dsn}))


def _write(sink: PostgresSink, records: list[SinkRecord]) -> None:
    async def go() -> None:
        try:
            await sink.write(records)
        finally:
            await sink.flush()

    asyncio.run(go())


def test_latest_demand_per_key_decisions_appended_offsets_stored(postgres_dsn: str) -> None:
    records = list(sink_records())
    _write(_sink(postgres_dsn), records)
    _write(_sink(postgres_dsn), records)  # delivered again: nothing changes
    demandes = {r.key for r in records if ".Demande" in r.schema}
    decisions = [r for r in records if ".Decision" in r.schema]
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM gp_demande").fetchone() == (len(demandes),)
        assert conn.execute("SELECT count(*) FROM gp_decision").fetchone() == (len(decisions),)
        assert conn.execute("SELECT next_offset FROM gp_offsets").fetchall() == [(len(records),)]
        cols = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'gp_demande'"
            )
        }
    assert "numUnique" in cols
    assert "dateCreationDemande" in cols
    sink = _sink(postgres_dsn)
    assert sink.resume_offsets([("gp.actor.contract", 0)]) == {("gp.actor.contract", 0): len(records)}
    asyncio.run(sink.flush())


def _with_extra_field(rec: SinkRecord, name: str, avro_type: object, value: object) -> SinkRecord:
    schema = copy.deepcopy(rec.writer_schema)
    schema["fields"].append({"name": name, "type": avro_type})
    return replace(rec, record={**rec.record, name: value}, writer_schema=schema, offset=rec.offset + 1000)


def test_a_compatible_view_change_adds_a_column(postgres_dsn: str) -> None:
    first = next(r for r in sink_records() if ".Demande" in r.schema)
    _write(_sink(postgres_dsn), [first])
    _write(_sink(postgres_dsn), [_with_extra_field(first, "nouveauChamp", ["null", "string"], "x")])
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute('SELECT "nouveauChamp" FROM gp_demande').fetchall() == [("x",)]


def test_a_type_that_cannot_evolve_is_rejected_naming_the_column(postgres_dsn: str) -> None:
    first = next(r for r in sink_records() if ".Demande" in r.schema)
    _write(_sink(postgres_dsn), [first])
    changed = _with_extra_field(first, "numGuichet", "long", 5)
    changed.writer_schema["fields"] = [
        f for f in changed.writer_schema["fields"] if f["name"] != "numGuichet"
    ]
    changed.writer_schema["fields"].append({"name": "numGuichet", "type": "long"})
    with pytest.raises(RejectedMessage) as info:
        _write(_sink(postgres_dsn), [changed])
    assert info.value.problems[0].path == "numGuichet"
    assert "cannot" in str(info.value)


def test_postgres_away_is_retriable() -> None:
    sink = _sink("postgresql://gp@127.0.0.1:1/gp")
    with pytest.raises(RetriableError, match="PostgreSQL unreachable"):
        _write(sink, list(sink_records())[:1])
    assert not sink.check().ok
