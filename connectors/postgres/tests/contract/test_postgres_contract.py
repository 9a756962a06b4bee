"""The connector contract suite, applied to the PostgreSQL sink, on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from connectors.postgres import PostgresSink
from gateway.connectors import SinkRecord
from gateway.registry import load
from gateway.testing.contract import sink_contract
from gateway.testing.postgres import fresh_database, postgres_server


def _delivery_config(tmp_path: Path) -> dict[str, Any]:
    return {"dsn": fresh_database(postgres_server())}


def _delivered(config: Any) -> list[str]:
    with psycopg.connect(config.dsn.get_secret_value()) as conn:
        demandes = conn.execute("SELECT gp_event_id FROM gp_demande").fetchall()
        decisions = conn.execute("SELECT gp_event_id FROM gp_decision").fetchall()
    return [str(r[0]) for r in [*demandes, *decisions]]


def _expected(records: Sequence[SinkRecord]) -> list[str]:
    """The latest demand per key (upsert) and every decision (appended)."""
    latest: dict[str, str] = {}
    appended: list[str] = []
    for r in records:
        if ".Demande" in r.schema:
            latest[r.key] = str(r.header("ce_id"))
        else:
            appended.append(str(r.header("ce_id")))
    return [*latest.values(), *appended]


TestPostgresContract = sink_contract(
    PostgresSink,
    valid_config={"dsn": "postgresql://gp@127.0.0.1:1/gp"},
    invalid_config={"table_prefix": "Robert'); DROP TABLE", "connect_timeout_s": 0},  # dsn missing too
    delivery_config=_delivery_config,
    delivered=_delivered,
    expected=_expected,
)


def test_registered_under_its_entry_point() -> None:
    assert load("postgres") is PostgresSink
