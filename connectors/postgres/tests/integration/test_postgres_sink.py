"""PostgreSQL sink on a real PostgreSQL: upsert of the latest demand, decisions appended, offsets in the
rows' transaction, a view change adds columns, a type that cannot evolve is refused by name."""

from __future__ import annotations

import asyncio
import copy
import threading
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest
from connectors.postgres import PostgresSink, PostgresSinkConfig
from connectors.postgres.columns import columns_of
from connectors.postgres.rows import SYSTEM, Shape, described
from gateway.connectors import Erasure, SinkRecord, to_json
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


def test_a_second_writer_of_a_partition_waits_then_skips_what_the_first_stored(postgres_dsn: str) -> None:
    """A sink that lost its partition in a rebalance may still be writing it when the new owner
    starts from the same stored offset: the new owner waits for the partition's offset row, then
    reads what the other one stored and writes none of it again (not a decision twice, not an
    older demand over a newer one)."""
    records = list(sink_records())
    half = len(records) // 2
    write_and_flush(_sink(postgres_dsn), records[:half])
    with psycopg.connect(postgres_dsn) as other:  # the other writer has claimed the partition
        other.execute("SELECT next_offset FROM gp_offsets FOR UPDATE")
        errors: list[BaseException] = []

        def second() -> None:
            try:
                write_and_flush(_sink(postgres_dsn), records[half:])
            except BaseException as exc:  # noqa: BLE001 - told to the test below
                errors.append(exc)

        writer = threading.Thread(target=second)
        writer.start()
        writer.join(1.0)
        assert writer.is_alive(), "the second writer did not wait for the partition's offset row"
        other.execute("UPDATE gp_offsets SET next_offset = %s", (len(records),))
        other.commit()  # as if it had written the rest of the partition
        writer.join(30)
    assert not writer.is_alive()
    assert errors == []
    decisions = [r for r in records[:half] if ".Decision" in r.schema]
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM gp_decision").fetchone() == (len(decisions),)
        assert conn.execute("SELECT max(gp_offset) FROM gp_demande").fetchone()[0] < half  # type: ignore[index]
        assert conn.execute("SELECT next_offset FROM gp_offsets").fetchall() == [(len(records),)]


def test_key_columns_compare_byte_by_byte(postgres_dsn: str) -> None:
    """gp_key and gp_topic (the primary keys' text) are in the "C" collation in every table: their
    comparisons do not go through the locale (docs/sinks.md)."""
    records = list(sink_records())
    erasure = Erasure(
        key=records[0].key,
        num_unique=records[0].key,
        date_radiation=date(2026, 1, 1),
        date_effacement=date(2027, 1, 1),
        time=datetime.now(UTC),
        par="horloge",
        record=replace(records[0], offset=len(records)),
    )
    sink = _sink(postgres_dsn)
    write_and_flush(sink, records)
    asyncio.run(sink.erase([erasure]))
    asyncio.run(sink.flush())
    with psycopg.connect(postgres_dsn) as conn:
        found = conn.execute(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND column_name IN ('gp_key', 'gp_topic')"
        ).fetchall()
    tables = {t for t, _, _ in found}
    assert tables == {"gp_demande", "gp_decision", "gp_offsets", "gp_erasures"}
    assert {c for _, _, c in found} == {"C"}


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
    """One statement a batch (jsonb_array_elements) and one row a record (executemany) give the same
    tables, a key seen twice in a batch included (its last record wins, as with one upsert each)."""
    from gateway.testing.postgres import fresh_database  # noqa: PLC0415

    records = list(sink_records())
    twice = [r for r in records if ".Demande" in r.schema][:2]
    records.append(replace(twice[0], record=twice[1].record, offset=len(records)))  # key again, other values
    by_rows = fresh_database(postgres_dsn)

    class RowByRow(PostgresSink):
        def _insert(self, cur: psycopg.Cursor[Any], kind: str, shape: Shape, recs: list[SinkRecord]) -> None:
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
    """A table's rows (gp_received_at aside), in `order`, each with its count of SQL NULLs."""
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
    # num_nulls: SQL NULLs, told apart from a JSON null (jsonb 'null'), which psycopg also gives as None
    return conn.execute(
        f"SELECT {listed}, num_nulls({listed}) FROM {prefix}{kind} ORDER BY {order}"  # noqa: S608
    ).fetchall()


def _assert_same_tables(dsn: str, expected: str, got: str) -> None:
    """The demande and decision tables of prefix `got` hold the rows of prefix `expected`'s."""
    with psycopg.connect(dsn) as conn:
        for kind, order in (("demande", "gp_key"), ("decision", "gp_offset")):
            rows = _table(conn, expected, kind, order)
            assert rows
            assert _table(conn, got, kind, order) == rows


def test_a_row_is_its_values_in_the_order_of_its_columns_and_nulls_are_null_columns(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row rendered ahead is a JSON array: the gp_ columns, then the writer schema's fields in its
    order, a null field null (a record whose fields are in another order, or missing, too); the
    tables hold what rows written one by one, every value given as a parameter, hold."""
    import json  # noqa: PLC0415

    from connectors.postgres.connector import render_row  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    records = list(sink_records())
    assert any(v is None for r in records for v in r.record.values()), "no null field: nothing tested"
    for r in records:
        row = json.loads(render_row(r) or b"null")
        names = described(r.writer_schema).names
        assert len(row) == len(SYSTEM) + len(names)
        assert row[: len(SYSTEM)] == [r.key, r.event_id(), r.schema, r.topic, r.partition, r.offset]
        assert row[len(SYSTEM) :] == [json.loads(to_json(r.record[c])) for c in names]
        shuffled = replace(r, record=dict(list(r.record.items())[1:][::-1]))  # first field missing
        assert json.loads(render_row(shuffled) or b"null") == [
            *row[: len(SYSTEM)],
            None,
            *row[len(SYSTEM) + 1 :],
        ]
    bulk = PostgresSink(PostgresSinkConfig.model_validate({"dsn": postgres_dsn, "table_prefix": "bulk_"}))
    one_by_one = PostgresSink(
        PostgresSinkConfig.model_validate({"dsn": postgres_dsn, "table_prefix": "rows_"})
    )
    # the one-statement insert refused: the sink writes the rows one by one, with parameters
    monkeypatch.setattr(one_by_one, "_bulk", lambda kind, shape: sql.SQL("SELECT no_such_function(%s)"))
    write_and_flush(bulk, [replace(r, rendered=render_row(r)) for r in records])
    write_and_flush(one_by_one, records)
    _assert_same_tables(postgres_dsn, "rows_", "bulk_")


def _renamed(rec: SinkRecord, suffix: str, offset: int, **extra: object) -> SinkRecord:
    """`rec` of another view version: another schema name, its fields reversed, maybe one more."""
    schema = copy.deepcopy(rec.writer_schema)
    schema["name"] += suffix
    schema["fields"] = list(reversed(schema["fields"]))
    record = dict(reversed(list(rec.record.items())))
    for name, value in extra.items():
        schema["fields"].append({"name": name, "type": ["null", "string"]})
        record[name] = value
    return replace(rec, schema=rec.schema + suffix, record=record, writer_schema=schema, offset=offset)


def test_a_batch_with_two_versions_of_a_view_writes_each_by_its_own_columns(postgres_dsn: str) -> None:
    """A view's new version (another name, its fields in another order, a field more) in the batch
    of the old one: each record's values go to their own columns, and a demand's last record wins
    whichever version it is of (one key: 0 old, 1 new, 2 old, 3 new)."""
    from connectors.postgres.connector import render_row  # noqa: PLC0415

    records = list(sink_records())
    demand = next(r for r in records if ".Demande" in r.schema)
    other = next(r for r in records if ".Demande" in r.schema and r.key != demand.key)
    decision = next(r for r in records if ".Decision" in r.schema)
    batch = [
        replace(demand, offset=0),
        _renamed(other, "_v2", 1, nouveauChamp="a"),
        replace(other, offset=2),
        _renamed(demand, "_v2", 3, nouveauChamp="b"),
        replace(decision, offset=4),
        _renamed(decision, "_v2", 5, nouveauChamp="c"),
    ]
    for prefix, rows in (("plain_", batch), ("ahead_", [replace(r, rendered=render_row(r)) for r in batch])):
        write_and_flush(
            PostgresSink(PostgresSinkConfig.model_validate({"dsn": postgres_dsn, "table_prefix": prefix})),
            rows,
        )
        with psycopg.connect(postgres_dsn) as conn:
            got = conn.execute(
                f'SELECT gp_key, gp_offset, "nouveauChamp", "numUnique" FROM {prefix}demande'  # noqa: S608
                " ORDER BY gp_offset"
            ).fetchall()
            assert got == [
                (other.key, 2, None, other.record["numUnique"]),
                (demand.key, 3, "b", demand.record["numUnique"]),
            ]
            got = conn.execute(
                f'SELECT gp_offset, "nouveauChamp", "eventId" FROM {prefix}decision ORDER BY gp_offset'  # noqa: S608
            ).fetchall()
            assert got == [(4, None, decision.record["eventId"]), (5, "c", decision.record["eventId"])]
    _assert_same_tables(postgres_dsn, "plain_", "ahead_")


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


def _compressions(dsn: str) -> set[str | None]:
    """How the demand rows' longest jsonb values were stored (pg_column_compression: NULL when not
    compressed)."""
    with psycopg.connect(dsn) as conn:
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'gp_demande' AND data_type = 'jsonb'"
            )
        ]
        found: set[str | None] = set()
        for col in cols:
            found |= {
                r[0]
                for r in conn.execute(
                    psycopg.sql.SQL("SELECT pg_column_compression({}) FROM gp_demande").format(
                        psycopg.sql.Identifier(col)
                    )
                )
            }
    return found


def test_long_values_are_compressed_with_lz4_unless_told_to_leave_the_servers_default(
    postgres_dsn: str,
) -> None:
    """The sample demands' rows are over TOAST's ~2 kB: some of their values are compressed, with
    lz4 by default (the server here has it), with the server's default (pglz) under `server`."""
    records = list(sink_records())
    write_and_flush(_sink(postgres_dsn), records)
    assert "lz4" in _compressions(postgres_dsn)
    assert "pglz" not in _compressions(postgres_dsn)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE gp_demande, gp_decision, gp_offsets")
    config = {"dsn": postgres_dsn, "toast_compression": "server"}
    server = PostgresSink(PostgresSinkConfig.model_validate(config))
    write_and_flush(server, records)
    assert "pglz" in _compressions(postgres_dsn)
    assert "lz4" not in _compressions(postgres_dsn)
