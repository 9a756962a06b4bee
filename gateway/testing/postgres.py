"""pytest plugin and helpers: a real PostgreSQL for the tests (the `postgres_dsn` fixture).

GATEWAY_TEST_POSTGRES_DSN when set; otherwise a PostgreSQL server of this machine (binaries in
`pg_config --bindir`, else /usr/lib/postgresql/<version>/bin) started once per test session in a
temporary data directory, listening on a free loopback port, trust authentication (test only), and
stopped at the end. initdb refuses to run as root: as root, the server runs as the unprivileged user
`nobody` (runuser), its directory chowned to it. `fresh_database(dsn)` gives each test its own database.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["fresh_database", "postgres_dsn", "postgres_server", "postgres_server_pid"]

_lock = threading.Lock()
_server: dict[str, str] = {}


def _bindir() -> Path:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)  # noqa: S607
        path = Path(out.stdout.strip())
        if (path / "initdb").exists():
            return path
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.skip("no PostgreSQL server binaries (pg_config --bindir, /usr/lib/postgresql/*/bin)")
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "nobody", "--", *cmd]


def postgres_server() -> str:
    """DSN of the session's PostgreSQL (started on first use, stopped at exit)."""
    external = os.environ.get("GATEWAY_TEST_POSTGRES_DSN")
    if external:
        return external
    with _lock:
        if "dsn" in _server:
            return _server["dsn"]
        bindir = _bindir()
        base = Path(tempfile.mkdtemp(prefix="gp-test-pg-"))
        data = base / "data"
        data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(base, "nobody")
            shutil.chown(data, "nobody")
        port = _free_port()
        run = {"check": True, "capture_output": True, "cwd": "/"}
        subprocess.run(  # noqa: S603, PLW1510
            _as_user(
                [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            **run,  # type: ignore[call-overload]
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
        subprocess.run(  # noqa: S603, PLW1510
            _as_user(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(base / "log"),
                    "-w",
                    "start",
                ]
            ),
            **run,  # type: ignore[call-overload]
        )

        def stop() -> None:
            subprocess.run(  # noqa: S603
                _as_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                capture_output=True,
                check=False,
                cwd="/",
            )
            shutil.rmtree(base, ignore_errors=True)

        atexit.register(stop)
        _server["dsn"] = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _server["stop"] = ""
        _server["data"] = str(data)
        return _server["dsn"]


def postgres_server_pid() -> int | None:
    """The process id of the server `postgres_server` started (its postmaster: the benches measure
    the CPU of its process tree); None when it started none (GATEWAY_TEST_POSTGRES_DSN, or not yet)."""
    data = _server.get("data")
    if not data:
        return None
    try:
        return int((Path(data) / "postmaster.pid").read_text(encoding="ascii").split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def fresh_database(dsn: str) -> str:
    """A new, empty database on the server of `dsn`; its DSN."""
    import psycopg  # noqa: PLC0415 - the postgres extra

    name = "gp_test_" + uuid.uuid4().hex[:12]
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    head, _, _ = dsn.rpartition("/")
    return f"{head}/{name}"


@pytest.fixture(scope="session")
def postgres_server_dsn() -> str:
    return postgres_server()


@pytest.fixture
def postgres_dsn(postgres_server_dsn: str) -> Iterator[str]:
    """DSN of a fresh database on a real PostgreSQL (one per test)."""
    yield fresh_database(postgres_server_dsn)
