"""PostgreSQL sink: an actor's stream as tables that follow its view schema. Delivery: exactly-once
(the consumed offsets are stored in the same transaction as the rows, as the JDBC sinks of Kafka
Connect and Debezium do; the runtime resumes from them).

Tables (in `db_schema`, names prefixed by `table_prefix`, default `gp_`):
- `gp_demande`: the latest demand per key (numéro unique; the pseudonym for a statistique actor),
  upserted: `gp_key` primary key;
- `gp_decision` (and any other kind of record): appended, one row per record, primary key
  (gp_topic, gp_partition, gp_offset);
- one column per top-level field of the view (nested records and arrays as jsonb), plus gp_key,
  gp_event_id (SinkRecord.event_id), gp_view (the view schema's name), gp_topic, gp_partition,
  gp_offset, gp_received_at; a field a new view version adds becomes a new column
  (`ALTER TABLE ... ADD COLUMN`), a widening (integer -> bigint, real -> double) is applied; a type
  change that cannot be made without losing values dead-letters the record, naming the column;
- `gp_offsets`: the next offset to read per (topic, partition); a batch's transaction locks its
  partitions' rows first (connectors.postgres.offsets.claim): a second writer of a partition waits,
  then skips what the first one stored.
Erasure (an `fr.gp.Effacement` record of the stream, docs/retention.md): every row under the
application's key is deleted from every table of the sink that has a `gp_key` column (gp_demande,
gp_decision, any other kind), in the transaction that stores the erasure's offset; with
`record_erasures` (default), `gp_erasures` keeps one row per erasure: key, numéro unique, dates,
time, `par`, the record's id and coordinates (no nominative value), so the recipient can show it.
PostgreSQL away: RetriableError (the runtime backs off; nothing is committed). Errors never hold values.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal, NoReturn

from gateway.connectors import (
    CheckResult,
    ConnectorConfig,
    Erasure,
    Guarantee,
    Partition,
    Sink,
    SinkOutput,
    SinkRecord,
    to_json,
)
from gateway.errors import Problem, RejectedMessage, RetriableError

from connectors.postgres.columns import COMPATIBLE
from connectors.postgres.config import PostgresSinkConfig
from connectors.postgres.rows import (
    C_COLLATED,
    SYSTEM,
    Shape,
    base_type,
    described,
    not_finite,
    render_row,
    row_values,
)

try:
    import psycopg
    from psycopg import sql
    from psycopg.adapt import Dumper
    from psycopg.pq import Format
    from psycopg.types.json import Jsonb
except ImportError as exc:  # the optional extra
    raise ImportError("the postgres sink needs psycopg: pip install 'gp-gateway[postgres]'") from exc

from connectors.postgres import offsets

__all__ = ["PostgresSink", "render_row"]


class _JsonbRows(bytes):
    """The rows rendered ahead as one jsonb parameter in binary form: a version byte (1), then the
    JSON text. Sent as it is: no decoding to str, no escaping (~1.5 µs a row less client CPU)."""


class _JsonbRowsDumper(Dumper):
    """No oid of its own: the statement's `::jsonb` cast types the parameter, and no other value of
    the connection is ever dumped by this dumper (a dumper with an oid also serves that oid)."""

    format = Format.BINARY

    def dump(self, obj: Any) -> Any:
        return obj


def _use_lz4(conn: psycopg.Connection[Any]) -> None:
    """This session compresses the values it stores out of line with lz4, where the server can (14
    and later, built with lz4; else its default stays). A session setting: a column's values
    compressed with pglz before stay so, and read back the same; no table is altered."""
    found = conn.execute(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    ).fetchone()
    if found and found[0]:
        conn.execute("SET default_toast_compression = lz4")
    conn.commit()  # not left in a transaction: each batch's is its own


@functools.lru_cache(maxsize=256)
def _kind(schema: str) -> str:
    return schema.rsplit(".", 1)[-1].split("_", 1)[0].lower() or "record"


def _tp(record: SinkRecord) -> Partition:
    return (record.topic, record.partition)


def _grouped(records: Sequence[SinkRecord]) -> dict[tuple[str, Shape], list[SinkRecord]]:
    """The records by kind and writer schema (a statement's rows follow one schema's columns); of
    the demands, only each key's last (one statement may not upsert a key twice, and a key's
    records of two schemas, a view's versions, would otherwise go in by schema, not in order)."""
    groups: dict[tuple[str, Shape], list[SinkRecord]] = {}
    latest: dict[str, SinkRecord] = {}
    for r in records:
        kind = _kind(r.schema)
        if kind == "demande":
            latest[r.key] = r  # a key's records are in one partition: in order in the batch
        else:
            groups.setdefault((kind, described(r.writer_schema)), []).append(r)
    for r in latest.values():
        groups.setdefault(("demande", described(r.writer_schema)), []).append(r)
    return groups


class PostgresSink(Sink):
    """Writes an actor's stream into PostgreSQL tables. Delivery: exactly-once (offsets stored in the
    rows' transaction)."""

    # a transaction, its statements and its commit per batch: 2000 rows a batch (Kafka Connect's JDBC
    # sink takes 3000) made the whole sink 1.3-1.6 times as fast as 500 (docs/sinks.md, Measured)
    batch_size: ClassVar[int] = 2000

    name: ClassVar[str] = "postgres"
    Config: ClassVar[type[ConnectorConfig]] = PostgresSinkConfig
    guarantee: ClassVar[Guarantee] = "exactly-once"
    reads: ClassVar[Literal["actor", "canonical"]] = "actor"
    erases: ClassVar[bool] = True  # rows under the key deleted, in the offsets' transaction
    # a rendered record's row is all `write` reads of it (with its key, schema and coordinates)
    headers_in_write: ClassVar[bool] = False

    def __init__(self, config: PostgresSinkConfig) -> None:
        self.config = config
        self._conn: psycopg.Connection[Any] | None = None
        self._columns: dict[str, dict[str, str]] = {}  # table -> column -> type, as in the database
        self._bulks: dict[tuple[str, int], tuple[Shape, sql.Composed]] = {}

    # ---- connection -------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = None
            try:
                conn = psycopg.connect(
                    self.config.dsn.get_secret_value(), connect_timeout=self.config.connect_timeout_s
                )
            except psycopg.Error as exc:
                raise RetriableError(f"PostgreSQL unreachable ({type(exc).__name__})") from exc
            try:
                conn.adapters.register_dumper(_JsonbRows, _JsonbRowsDumper)
                if self.config.toast_compression == "lz4":
                    _use_lz4(conn)
            except psycopg.Error as exc:  # not kept: it may be left in a failed transaction
                conn.close()
                raise RetriableError(f"PostgreSQL session not set up ({type(exc).__name__})") from exc
            self._conn = conn
            self._columns.clear()
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def check(self) -> CheckResult:
        try:
            conn = self._connect()
            conn.execute("SELECT 1")
            conn.rollback()
        except (RetriableError, psycopg.Error) as exc:
            why = str(exc) if isinstance(exc, RetriableError) else type(exc).__name__
            return CheckResult(ok=False, detail=f"PostgreSQL: {why}")
        finally:
            self._drop()
        return CheckResult(ok=True, detail="PostgreSQL reachable")

    def _table(self, kind: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(
            sql.Identifier(self.config.db_schema), sql.Identifier(self.config.table_prefix + kind)
        )

    # ---- tables -----------------------------------------------------------------------------
    def _known(self, cur: psycopg.Cursor[Any], table: str) -> dict[str, str]:
        if table not in self._columns:
            cur.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s",
                (self.config.db_schema, table),
            )
            self._columns[table] = {str(n): str(t) for n, t in cur.fetchall()}
        return self._columns[table]

    def _ensure(self, cur: psycopg.Cursor[Any], kind: str, wanted: Mapping[str, str]) -> None:
        table = self.config.table_prefix + kind
        have = self._known(cur, table)
        ident = self._table(kind)
        if not have:
            key = (
                "PRIMARY KEY (gp_key)"
                if kind == "demande"
                else "PRIMARY KEY (gp_topic, gp_partition, gp_offset)"
            )
            cols: list[sql.Composable] = [
                sql.SQL("{} {}{}").format(
                    sql.Identifier(c), sql.SQL(t), sql.SQL(' COLLATE "C"' if c in C_COLLATED else "")
                )
                for c, t in SYSTEM.items()
            ]
            cols.append(sql.SQL("gp_received_at timestamp with time zone NOT NULL DEFAULT now()"))
            cur.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, {})").format(
                    ident, sql.SQL(", ").join(cols), sql.SQL(key)
                )
            )
            have.update({**SYSTEM, "gp_received_at": "timestamp with time zone"})
        for column, pg_type in wanted.items():
            current = have.get(column)
            if current is None:
                cur.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        ident, sql.Identifier(column), sql.SQL(pg_type)
                    )
                )
                have[column] = base_type(pg_type)
            elif base_type(current) != base_type(pg_type):
                if (base_type(current), base_type(pg_type)) not in COMPATIBLE:
                    raise RejectedMessage(
                        f"column {column} of table {table} is {current}; the view now sends"
                        f" {base_type(pg_type)}: this change cannot be made without losing values",
                        [Problem(column, "column type cannot evolve", f"{current} -> {base_type(pg_type)}")],
                    )
                cur.execute(
                    sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {}").format(
                        ident, sql.Identifier(column), sql.SQL(pg_type)
                    )
                )
                have[column] = base_type(pg_type)

    def _ensure_offsets(self, cur: psycopg.Cursor[Any]) -> None:
        if self._known(cur, self.config.table_prefix + "offsets"):
            return
        offsets.create(cur, self._table("offsets"))
        self._columns[self.config.table_prefix + "offsets"] = {"gp_topic": "text"}

    # ---- writing ----------------------------------------------------------------------------
    def _insert(self, cur: psycopg.Cursor[Any], kind: str, shape: Shape, records: list[SinkRecord]) -> None:
        """Records of one kind and one writer schema (their rows' values follow its columns)."""
        self._ensure(cur, kind, shape.columns)
        rendered = [r.rendered for r in records if r.rendered is not None]
        if rendered:  # rows rendered ahead (the runtime's reading processes): one statement
            rest = [r for r in records if r.rendered is None]
            rendered[0] = b"\x01[" + rendered[0]  # one copy of the batch's rows, not three
            rendered[-1] += b"]"
            payload = _JsonbRows(b",".join(rendered))
            try:  # no savepoint: a refusal ends the batch's transaction (rolled back) all the same
                cur.execute(self._bulk(kind, shape), (payload,))
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:  # a value the column refuses: record by record, by the runtime
                self._failed(exc, "the rows", "row")
            if rest:
                self._insert_records(cur, kind, rest, shape)
            return
        self._insert_records(cur, kind, records, shape)

    def _insert_records(
        self, cur: psycopg.Cursor[Any], kind: str, records: list[SinkRecord], shape: Shape
    ) -> None:
        """Records not rendered ahead: as one JSON statement, or row by row when JSON cannot carry them."""
        if shape.unsafe or any(not_finite(r.record.get(c)) for r in records for c in shape.floats):
            self._insert_rows(cur, kind, records, shape.columns)  # bytea; NaN, infinities: JSON has none
            return
        try:
            payload = to_json([row_values(r, shape.names) for r in records])
        except (TypeError, ValueError):  # a value JSON does not take (e.g. a uuid): row by row
            self._insert_rows(cur, kind, records, shape.columns)
            return
        try:
            with cur.connection.transaction():  # a savepoint: a refusal falls back to row by row
                cur.execute(self._bulk(kind, shape), (payload,))
        except psycopg.OperationalError:
            raise
        except psycopg.Error:  # e.g. a float NaN (not JSON): the rows one by one decide
            self._insert_rows(cur, kind, records, shape.columns)

    def _bulk(self, kind: str, shape: Shape) -> sql.Composed:
        """The one-statement insert of `kind` rows of this shape (built once per shape)."""
        key = (kind, id(shape))
        known = self._bulks.get(key)
        if known is None or known[0] is not shape:
            if len(self._bulks) >= 256:  # bounded as rows._SHAPES is
                self._bulks.clear()
            elements = self._elements(shape.columns)
            known = self._bulks[key] = (shape, self._statement(kind, shape.columns, elements))
        return known[1]

    @staticmethod
    def _elements(columns: Mapping[str, str]) -> sql.Composed:
        """Each row's values out of the batch's JSON array of rows (render_row: an array a row, the
        gp_ columns then `columns`, in order): text as it is, jsonb as the element (a JSON null is
        NULL), any other type cast from the element's text, as jsonb_to_recordset would."""
        values: list[sql.Composable] = []
        for i, pg_type in enumerate([*SYSTEM.values(), *columns.values()]):
            at = sql.SQL(str(i))
            if pg_type == "jsonb":
                values.append(sql.SQL("NULLIF(j -> {}, 'null'::jsonb)").format(at))
            elif pg_type == "text":
                values.append(sql.SQL("j ->> {}").format(at))
            else:
                values.append(sql.SQL("(j ->> {})::{}").format(at, sql.SQL(pg_type)))
        return sql.SQL("SELECT {} FROM jsonb_array_elements(%s::jsonb) AS j").format(
            sql.SQL(", ").join(values)
        )

    def renderer(self) -> Callable[[SinkRecord], Any]:
        """Each row as JSON, rendered in the runtime's reading processes (render_row)."""
        return render_row

    def _statement(self, kind: str, wanted: Mapping[str, str], source: sql.Composable) -> sql.Composed:
        """INSERT ... `source` ON CONFLICT ...: upsert of the latest demand per key, else append."""
        names = [*SYSTEM, *wanted]
        statement = sql.SQL("INSERT INTO {} ({}) {}").format(
            self._table(kind), sql.SQL(", ").join(map(sql.Identifier, names)), source
        )
        if kind == "demande":  # the latest state per key
            updates: list[sql.Composable] = [
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in names if c != "gp_key"
            ]
            updates.append(sql.SQL("gp_received_at = now()"))
            return statement + sql.SQL(" ON CONFLICT (gp_key) DO UPDATE SET {}").format(
                sql.SQL(", ").join(updates)
            )
        return statement + sql.SQL(" ON CONFLICT DO NOTHING")

    def _insert_rows(
        self,
        cur: psycopg.Cursor[Any],
        kind: str,
        records: list[SinkRecord],
        wanted: Mapping[str, str],
    ) -> None:
        """One row per record (executemany): columns JSON cannot carry (bytea), or values it cannot."""
        names = tuple(wanted)
        # the positions of the jsonb columns in a row (row_values: the gp_ columns first)
        jsonb = [len(SYSTEM) + i for i, t in enumerate(wanted.values()) if t == "jsonb"]
        rows = []
        for r in records:
            row = row_values(r, names)
            for i in jsonb:
                if row[i] is not None:
                    row[i] = Jsonb(row[i], dumps=to_json)
            rows.append(row)
        names = (*SYSTEM, *names)
        values = sql.SQL("VALUES ({})").format(sql.SQL(", ").join(sql.Placeholder() * len(names)))
        cur.executemany(self._statement(kind, wanted, values), rows)

    def _write(self, batch: Sequence[SinkRecord]) -> None:
        conn = self._connect()
        try:
            with conn.transaction(), conn.cursor() as cur:
                self._ensure_offsets(cur)
                stored_in, nexts = self._table("offsets"), offsets.next_offsets(batch)
                stored = offsets.claim(cur, stored_in, nexts)
                fresh = [r for r in batch if r.offset < 0 or r.offset >= stored.get(_tp(r), 0)]
                for (kind, shape), records in _grouped(fresh).items():
                    self._insert(cur, kind, shape, records)
                offsets.advance(cur, stored_in, nexts)
        except RejectedMessage:
            self._columns.clear()  # the transaction's DDL was rolled back
            raise
        except psycopg.Error as exc:
            self._failed(exc, "the rows", "row")

    def _failed(self, exc: psycopg.Error, what: str, item: str) -> NoReturn:
        """Raise for a failed transaction: Retriable when the connection is lost (dropped, to
        reconnect), else Rejected (`what` refused, one Problem on `item`) with the cached columns
        forgotten, since the transaction's DDL was rolled back."""
        if isinstance(exc, psycopg.OperationalError):
            self._drop()
            raise RetriableError(f"PostgreSQL unreachable or connection lost ({type(exc).__name__})") from exc
        self._columns.clear()
        state = getattr(exc, "sqlstate", None) or "?"
        raise RejectedMessage(
            f"PostgreSQL refused {what} ({type(exc).__name__}, SQLSTATE {state})",
            [Problem(item, "refused by PostgreSQL", state)],
        ) from exc

    async def write(self, batch: Sequence[SinkRecord]) -> Sequence[SinkOutput]:
        if batch:
            await asyncio.to_thread(self._write, batch)
        return []

    # ---- erasure ----------------------------------------------------------------------------
    def _keyed_tables(self, cur: psycopg.Cursor[Any]) -> list[str]:
        """Every table of the sink (its prefix, its schema) with a gp_key column, but gp_erasures."""
        prefix = self.config.table_prefix
        cur.execute(
            "SELECT DISTINCT table_name FROM information_schema.columns WHERE table_schema = %s"
            " AND column_name = 'gp_key' AND left(table_name, %s) = %s ORDER BY table_name",
            (self.config.db_schema, len(prefix), prefix),
        )
        return [str(t) for (t,) in cur.fetchall() if str(t) != prefix + "erasures"]

    def _ensure_erasures(self, cur: psycopg.Cursor[Any]) -> None:
        if self._known(cur, self.config.table_prefix + "erasures"):
            return
        cur.execute(
            sql.SQL(
                'CREATE TABLE IF NOT EXISTS {} (gp_key text COLLATE "C" NOT NULL, num_unique text NOT NULL,'
                " date_radiation date NOT NULL, date_effacement date NOT NULL,"
                " erased_at timestamp with time zone NOT NULL, par text NOT NULL, gp_event_id text,"
                ' gp_topic text COLLATE "C" NOT NULL, gp_partition integer NOT NULL,'
                " gp_offset bigint NOT NULL,"
                " gp_received_at timestamp with time zone NOT NULL DEFAULT now(),"
                " PRIMARY KEY (gp_topic, gp_partition, gp_offset))"
            ).format(self._table("erasures"))
        )
        self._columns.pop(self.config.table_prefix + "erasures", None)

    def _erase(self, erasures: Sequence[Erasure]) -> None:
        conn = self._connect()
        try:
            with conn.transaction(), conn.cursor() as cur:
                self._ensure_offsets(cur)
                stored_in, nexts = self._table("offsets"), offsets.next_offsets([e.record for e in erasures])
                stored = offsets.claim(cur, stored_in, nexts)
                fresh = [
                    e
                    for e in erasures
                    if e.record.offset < 0 or e.record.offset >= stored.get(_tp(e.record), 0)
                ]
                keys = sorted({e.key for e in fresh})
                if keys:
                    for table in self._keyed_tables(cur):
                        cur.execute(
                            sql.SQL("DELETE FROM {}.{} WHERE gp_key = ANY(%s)").format(
                                sql.Identifier(self.config.db_schema), sql.Identifier(table)
                            ),
                            (keys,),
                        )
                if fresh and self.config.record_erasures:
                    self._ensure_erasures(cur)
                    cur.executemany(
                        sql.SQL(
                            "INSERT INTO {} (gp_key, num_unique, date_radiation, date_effacement, erased_at,"
                            " par, gp_event_id, gp_topic, gp_partition, gp_offset)"
                            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                        ).format(self._table("erasures")),
                        [
                            (
                                e.key,
                                e.num_unique,
                                e.date_radiation,
                                e.date_effacement,
                                e.time,
                                e.par,
                                e.record.event_id(),
                                e.record.topic,
                                e.record.partition,
                                e.record.offset,
                            )
                            for e in fresh
                        ],
                    )
                offsets.advance(cur, stored_in, nexts)
        except psycopg.Error as exc:
            self._failed(exc, "the erasure", "erasure")

    async def erase(self, erasures: Sequence[Erasure]) -> Sequence[SinkOutput]:
        """Delete every row under each key, in the transaction that stores the erasures' offsets."""
        if erasures:
            await asyncio.to_thread(self._erase, erasures)
        return []

    def resume_offsets(self, partitions: Sequence[Partition]) -> Mapping[Partition, int]:
        conn = self._connect()
        try:
            with conn.transaction(), conn.cursor() as cur:
                self._ensure_offsets(cur)
                stored = offsets.stored(cur, self._table("offsets"))
        except psycopg.OperationalError as exc:
            self._drop()
            raise RetriableError(f"PostgreSQL unreachable ({type(exc).__name__})") from exc
        return {tp: stored[tp] for tp in partitions if tp in stored}

    async def flush(self) -> None:
        self._drop()
