"""The test kit's PostgreSQL (gateway.testing.postgres): `postgres_server_pid` names the server the
kit started (the sink bench measures the CPU of its process tree)."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from gateway.testing.postgres import postgres_server_pid


def test_the_server_pid_is_the_parent_of_a_connection_s_backend(postgres_dsn: str) -> None:
    if os.environ.get("GATEWAY_TEST_POSTGRES_DSN"):  # a server the kit did not start: not named
        assert postgres_server_pid() is None
        return
    pid = postgres_server_pid()
    assert pid is not None
    with psycopg.connect(postgres_dsn) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        stat = Path(f"/proc/{row[0]}/stat").read_text(encoding="ascii")
    assert int(stat.rsplit(")", 1)[1].split()[1]) == pid  # the backend's parent: the postmaster
