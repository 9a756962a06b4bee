"""PostgreSQL sink on a real PostgreSQL: upsert of the latest demand, decisions appended, offsets in the
rows' transaction, a view change adds columns, a type that cannot evolve is refused by name."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from connectors.postgres import PostgresSink, PostgresSinkConfig
from connectors.postgres.columns import columns_of
from gateway.connectors import SinkRecord
from gateway.errors import RejectedMessage, RetriableError
from gateway.testing.actor_stream import sink_records
from gateway.testing.sink_run import write_and_flush


def _sink(dsn: str) -> PostgresSink:
    return PostgresSink(PostgresSinkConfig.model_validate({"dsn": dsn}))


def test_latest_demand_per_key_decisions_appended_offsets_stored(postgres_dsn: str) -> None:
    records = list(sink_records())
    write_and_flush(_sink(postgres_dsn), records)
    write_and_flush(_sink(postgres_dsn), records)  # delivered again: nothing changes
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
    write_and_flush(_sink(postgres_dsn), [first])
    write_and_flush(_sink(postgres_dsn), [_with_extra_field(first, "nouveauChamp", ["null", "string"], "x")])
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute('SELECT "nouveauChamp" FROM gp_demande').fetchall() == [("x",)]


def test_a_type_that_cannot_evolve_is_rejected_naming_the_column(postgres_dsn: str) -> None:
    first = next(r for r in sink_records() if ".Demande" in r.schema)
    write_and_flush(_sink(postgres_dsn), [first])
    changed = _with_extra_field(first, "numGuichet", "long", 5)
    changed.writer_schema["fields"] = [
        f for f in changed.writer_schema["fields"] if f["name"] != "numGuichet"
    ]
    changed.writer_schema["fields"].append({"name": "numGuichet", "type": "long"})
    with pytest.raises(RejectedMessage) as info:
        write_and_flush(_sink(postgres_dsn), [changed])
    assert info.value.problems[0].path == "numGuichet"
    assert "cannot" in str(info.value)


def test_postgres_away_is_retriable() -> None:
    sink = _sink("postgresql://gp@127.0.0.1:1/gp")
    with pytest.raises(RetriableError, match="PostgreSQL unreachable"):
        write_and_flush(sink, list(sink_records())[:1])
    assert not sink.check().ok


def _rows(dsn: str, table: str, order: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                " AND column_name <> 'gp_received_at' ORDER BY column_name",
                (table,),
            )
        ]
        listed = ", ".join(f'"{c}"' for c in cols)
        return conn.execute(f"SELECT {listed} FROM {table} ORDER BY {order}").fetchall()  # noqa: S608


def test_the_batch_statement_writes_the_rows_row_by_row_inserts_write(postgres_dsn: str) -> None:
    """One statement a batch (jsonb_to_recordset) and one row a record (executemany) give the same
    tables, a key seen twice in a batch included (its last record wins, as with one upsert each)."""
    from gateway.testing.postgres import fresh_database  # noqa: PLC0415

    records = list(sink_records())
    twice = [r for r in records if ".Demande" in r.schema][:2]
    records.append(replace(twice[0], record=twice[1].record, offset=len(records)))  # key again, other values
    by_rows = fresh_database(postgres_dsn)

    class RowByRow(PostgresSink):
        def _insert(self, cur: psycopg.Cursor[Any], kind: str, recs: list[SinkRecord]) -> None:
            wanted = columns_of(recs[0].writer_schema)
            self._ensure(cur, kind, wanted)
            self._insert_rows(cur, kind, recs, wanted)

    sink = RowByRow(PostgresSinkConfig.model_validate({"dsn": by_rows}))
    write_and_flush(sink, records)
    write_and_flush(_sink(postgres_dsn), records)
    tables = (("gp_demande", "gp_key"), ("gp_decision", "gp_offset"), ("gp_offsets", "gp_partition"))
    for table, order in tables:
        assert _rows(postgres_dsn, table, order) == _rows(by_rows, table, order)


def test_values_json_cannot_carry_go_row_by_row(postgres_dsn: str) -> None:
    decision = next(r for r in sink_records() if ".Decision" in r.schema)
    nan = _with_extra_field(decision, "score", "double", float("nan"))
    write_and_flush(_sink(postgres_dsn), [nan])
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT score::text FROM gp_decision").fetchall() == [("NaN",)]


def _table(conn: psycopg.Connection[Any], prefix: str, kind: str, order: str) -> list[Any]:
    """A table's rows (gp_received_at aside), in `order`."""
    columns = [
        c
        for (c,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " ORDER BY ordinal_position",
            (f"{prefix}{kind}",),
        )
        if c != "gp_received_at"
    ]
    listed = ", ".join(f'"{c}"' for c in columns)
    return conn.execute(f"SELECT {listed} FROM {prefix}{kind} ORDER BY {order}").fetchall()  # noqa: S608


def _assert_same_tables(dsn: str, expected: str, got: str) -> None:
    """The demande and decision tables of prefix `got` hold the rows of prefix `expected`'s."""
    with psycopg.connect(dsn) as conn:
        for kind, order in (("demande", "gp_key"), ("decision", "gp_offset")):
            rows = _table(conn, expected, kind, order)
            assert rows
            assert _table(conn, got, kind, order) == rows


def test_null_fields_left_out_of_the_json_rows_are_null_columns(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row's JSON leaves its null fields out (less for the server to parse): the tables hold what
    rows written one by one, every null given as a parameter, hold."""
    from connectors.postgres.connector import render_row  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    records = list(sink_records())
    nulls = [k for r in records for k, v in r.record.items() if v is None]
    assert nulls, "no record with a null field: nothing tested"
    assert all(
        f'"{k}":'.encode() not in (render_row(r) or b"")
        for r in records
        for k in r.record
        if r.record[k] is None
    )
    bulk = PostgresSink(PostgresSinkConfig.model_validate({"dsn": postgres_dsn, "table_prefix": "bulk_"}))
    one_by_one = PostgresSink(
        PostgresSinkConfig.model_validate({"dsn": postgres_dsn, "table_prefix": "rows_"})
    )
    # the one-statement insert refused: the sink writes the rows one by one, with parameters
    monkeypatch.setattr(one_by_one, "_bulk", lambda kind, wanted: sql.SQL("SELECT no_such_function(%s)"))
    write_and_flush(bulk, records)
    write_and_flush(one_by_one, records)
    _assert_same_tables(postgres_dsn, "rows_", "bulk_")


def test_rows_rendered_ahead_are_the_rows_written_from_records(postgres_dsn: str) -> None:
    """The runtime's reading processes give `write` rows rendered as JSON (`record` empty), mixed
    with records they did not render: the tables hold what the records alone give."""
    from connectors.postgres.connector import render_row  # noqa: PLC0415

    records = list(sink_records())
    ahead = [replace(r, record={}, rendered=render_row(r)) if i % 3 else r for i, r in enumerate(records)]
    assert all(r.rendered for r in ahead[1::3])
    for prefix, batch in (("plain_", records), ("ahead_", ahead)):
        sink = PostgresSink(PostgresSinkConfig.model_validate({"dsn": postgres_dsn, "table_prefix": prefix}))
        write_and_flush(sink, batch)
    _assert_same_tables(postgres_dsn, "plain_", "ahead_")
