"""Helpers for integration tests and tools that talk to a real broker with kafka-python.

admin client, topic creation (idempotent), produce, and "consume everything until the topic is quiet".
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from gateway.security.client import read_client_file

__all__ = [
    "Message",
    "admin",
    "apply_acls",
    "cli_env",
    "client_kwargs",
    "consume_all",
    "consume_topics",
    "count_records",
    "create_topics",
    "end_offsets",
    "produce",
    "register_broker",
    "start_worker",
    "stop_worker",
    "wait_for_count",
    "wait_for_group",
    "worker_env",
]

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


_CLIENT_FILES: dict[str, Path] = {}  # bootstrap -> admin client file of a broker the test kit started


def register_broker(bootstrap: str, client_file: Path | None) -> None:
    """Record the admin client file of a broker started by the test kit (fixtures do it), so that
    every helper here reaches `bootstrap` as its admin principal. None: forget it."""
    if client_file is None:
        _CLIENT_FILES.pop(bootstrap, None)
    else:
        _CLIENT_FILES[bootstrap] = Path(client_file)


def client_file(bootstrap: str) -> Path | None:
    """The admin client file registered for `bootstrap` (None: security comes from GATEWAY_KAFKA_*)."""
    return _CLIENT_FILES.get(bootstrap)


def client_kwargs(bootstrap: str) -> dict[str, Any]:
    """kafka-python keyword arguments to reach the test broker `bootstrap` (the `kafka_bootstrap`
    fixture's value) as its admin principal, security included: tests build any client of their own
    with these. A broker the test kit started: its admin client file; an external cluster
    (KAFKA_BOOTSTRAP_SERVERS): the GATEWAY_KAFKA_* environment, as for any gateway process."""
    registered = _CLIENT_FILES.get(bootstrap)
    if registered is not None:
        return {"bootstrap_servers": bootstrap, **read_client_file(registered, "test broker").kafka_python()}
    from gateway.kafka_config import client_kwargs as settings_kwargs  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415

    return settings_kwargs(GatewaySettings(bootstrap_servers=bootstrap))


def admin(bootstrap: str) -> Any:
    return KafkaAdminClient(**client_kwargs(bootstrap), client_id=f"gp-test-{uuid.uuid4().hex[:6]}")


def create_topics(
    bootstrap: str,
    topics: Iterable[str],
    *,
    partitions: int = 1,
    replication: int = 1,
    configs: dict[str, str] | None = None,
) -> None:
    """Create each topic unless it exists, and wait until its metadata is visible."""
    names = list(topics)
    client = admin(bootstrap)
    try:
        for name in names:
            with contextlib.suppress(TopicAlreadyExistsError):
                client.create_topics(
                    [NewTopic(name, partitions, replication, topic_configs=dict(configs or {}))]
                )
    finally:
        client.close()
    consumer = KafkaConsumer(**client_kwargs(bootstrap), enable_auto_commit=False)
    try:
        for _ in range(100):
            if all(consumer.partitions_for_topic(n) for n in names):
                return
            time.sleep(0.1)
    finally:
        consumer.close()


def produce(
    bootstrap: str,
    topic: str,
    items: Iterable[tuple[bytes | None, bytes | None] | tuple[bytes | None, bytes | None, Headers]],
) -> int:
    """Produce (key, value[, headers]) items, flush, return how many were acknowledged."""
    producer = KafkaProducer(**client_kwargs(bootstrap), acks="all", linger_ms=5)
    futures = []
    try:
        for item in items:
            key, value = item[0], item[1]
            headers = list(item[2]) if len(item) > 2 else []  # 2- or 3-tuples
            futures.append(producer.send(topic, key=key, value=value, headers=headers))
        producer.flush()
        for f in futures:
            f.get(timeout=30)
    finally:
        producer.close()
    return len(futures)


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(**client_kwargs(bootstrap), enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: off for tp, off in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def consume_all(
    bootstrap: str,
    topic: str,
    *,
    quiet_ms: int = 1500,
    max_wait_s: float = 60.0,
    read_committed: bool = True,
    expect: int | None = None,
) -> list[Message]:
    """Every record of `topic` from the beginning, read until nothing new arrives for `quiet_ms`
    (or until `expect` records were read, then one more quiet period to catch duplicates)."""
    return consume_topics(
        bootstrap,
        [topic],
        quiet_ms=quiet_ms,
        max_wait_s=max_wait_s,
        read_committed=read_committed,
        expect={topic: expect},
    )[topic]


def consume_topics(
    bootstrap: str,
    topics: Sequence[str],
    *,
    quiet_ms: int = 1500,
    max_wait_s: float = 60.0,
    read_committed: bool = True,
    expect: Mapping[str, int | None] | None = None,
) -> dict[str, list[Message]]:
    """consume_all of several topics at once, with one consumer: every record of each topic from the
    beginning, read until nothing new arrives on any of them for `quiet_ms` (and, for each topic with
    an `expect`ed count, not before that many were read). Each topic is thus read at least as long as
    consume_all would; a topic that does not exist within `max_wait_s` gives []."""
    consumer = KafkaConsumer(
        **client_kwargs(bootstrap),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed" if read_committed else "read_uncommitted",
    )
    out: dict[str, list[Message]] = {t: [] for t in topics}
    wanted = {t: n for t, n in (expect or {}).items() if n is not None}
    try:
        parts: dict[str, list[TopicPartition]] = {}
        deadline = time.monotonic() + max_wait_s
        while len(parts) < len(out) and time.monotonic() < deadline:
            for t in out:
                found = None if t in parts else consumer.partitions_for_topic(t)
                if found:
                    parts[t] = [TopicPartition(t, p) for p in sorted(found)]
            if len(parts) < len(out):
                time.sleep(0.2)
        assigned = [tp for t in out if t in parts for tp in parts[t]]
        if not assigned:
            return out
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            got = False
            for records in batch.values():
                for r in records:
                    got = True
                    out[r.topic].append(
                        Message(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
                    )
            now = time.monotonic()
            if got:
                last_new = now
            elif all(len(out[t]) >= n for t, n in wanted.items()) and (now - last_new) * 1000 >= quiet_ms:
                break
    finally:
        consumer.close()
    return out


def wait_for_count(bootstrap: str, topic: str, count: int, *, max_wait_s: float = 120.0) -> list[Message]:
    """consume_all that keeps waiting until at least `count` committed records are there."""
    return consume_all(bootstrap, topic, expect=count, max_wait_s=max_wait_s)


def wait_for_group(bootstrap: str, group: str, members: int, *, max_wait_s: float = 120.0) -> None:
    """Wait until consumer group `group` is Stable with `members` members (each one then holds its
    assignment); AssertionError, with the last description, if it is not within `max_wait_s`."""
    client = admin(bootstrap)
    seen: Any = None
    try:
        deadline = time.monotonic() + max_wait_s
        while time.monotonic() < deadline:
            try:
                seen = client.describe_groups([group]).get(group) or {}
            except KafkaError as exc:  # e.g. no coordinator yet: the group is still being formed
                if not exc.retriable:
                    raise
                seen = {"group_state": type(exc).__name__}
            if seen.get("group_state") == "Stable" and len(seen.get("members") or ()) == members:
                return
            time.sleep(0.3)
    finally:
        client.close()
    state = (seen or {}).get("group_state")
    raise AssertionError(f"group {group}: not Stable with {members} members ({state}, {seen})")


def worker_env(
    bootstrap: str,
    *,
    prefix: str,
    state_dir: str,
    web_port: int,
    partitions: int = 3,
    guarantee: str = "exactly_once",
    app_id: str | None = None,
) -> dict[str, str]:
    """Environment of a `gateway run` subprocess isolated from every other test (own topics, group)."""
    import os  # noqa: PLC0415

    # GATEWAY_KAFKA_* (the security of an external cluster) is kept; a test-kit broker's admin
    # client file (0600) is passed by path, never its secret
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") or k.startswith("GATEWAY_KAFKA_")
    }
    registered = _CLIENT_FILES.get(bootstrap)
    if registered is not None:
        env = {k: v for k, v in env.items() if not k.startswith("GATEWAY_KAFKA_")}
        env["GATEWAY_KAFKA_CLIENT_FILE"] = str(registered)
    env.update(
        {
            "GATEWAY_BOOTSTRAP_SERVERS": bootstrap,
            "GATEWAY_TOPIC_PREFIX": prefix,
            "GATEWAY_APP_ID": app_id or f"{prefix}-app",
            "GATEWAY_STATE_DIR": state_dir,
            "GATEWAY_WEB_PORT": str(web_port),
            "GATEWAY_PARTITIONS": str(partitions),
            "GATEWAY_PROCESSING_GUARANTEE": guarantee,
            # a killed worker's partitions go to its successor after 6 s (the broker's minimum), not
            # 15: what the restart tests check is the same, sooner
            "GATEWAY_SESSION_TIMEOUT_S": "6",
        }
    )
    return env


def cli_env(bootstrap: str) -> dict[str, str]:
    """Environment of a `gateway ...` CLI subprocess aimed at the test broker `bootstrap`: no
    GATEWAY_* setting of the calling shell, except that broker's security (a test-kit broker: its
    admin client file, by path; an external cluster: the GATEWAY_KAFKA_* environment)."""
    import os  # noqa: PLC0415

    env = {
        k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") or k.startswith("GATEWAY_KAFKA_")
    }
    registered = _CLIENT_FILES.get(bootstrap)
    if registered is not None:
        env = {k: v for k, v in env.items() if not k.startswith("GATEWAY_KAFKA_")}
        env["GATEWAY_KAFKA_CLIENT_FILE"] = str(registered)
    env["GATEWAY_BOOTSTRAP_SERVERS"] = bootstrap
    return env


def apply_acls(env: dict[str, str]) -> None:
    """`gateway acl apply` in a child process with `env` (the ACLs the workers and the actors' kits
    connect with); fails the test when it fails."""
    applied = subprocess.run(
        [sys.executable, "-m", "gateway", "acl", "apply"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if applied.returncode != 0:
        raise AssertionError(applied.stderr[-2000:])


def start_worker(env: dict[str, str], flows: str = "ingest", log_path: str | None = None) -> Any:
    """Start `python -m gateway run --flows <flows>` as a subprocess (its own process group)."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    cmd = [sys.executable, "-m", "gateway", "run", "--flows", flows, "--worker-log-level", "warning"]
    if log_path is None:
        return subprocess.Popen(  # noqa: S603
            cmd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    with Path(log_path).open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(  # noqa: S603
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_worker(proc: Any, timeout: float = 30.0) -> int:
    """SIGTERM the worker and wait; SIGKILL if it does not stop. Returns its exit code."""
    import subprocess  # noqa: PLC0415

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def count_records(bootstrap: str, topics: Sequence[str], *, idle_polls: int = 4) -> dict[str, int]:
    """Committed records per topic (read_committed), read from the beginning until nothing comes."""
    consumer = KafkaConsumer(
        **client_kwargs(bootstrap),
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    counts = dict.fromkeys(topics, 0)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not tps:
            return counts
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        idle = 0
        while idle < idle_polls and not all(consumer.position(tp) >= ends[tp] for tp in tps):
            batch = consumer.poll(timeout_ms=300)
            idle = 0 if batch else idle + 1
            for tp, records in batch.items():
                counts[tp.topic] += len(records)
    finally:
        consumer.close()
    return counts
