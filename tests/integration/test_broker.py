"""The session broker is a real Kafka: topics are created, records round-trip with keys and headers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gateway.broker import free_port
from gateway.settings import GatewaySettings
from gateway.testing.kafka import consume_all, create_topics, end_offsets, produce


def test_round_trip_with_keys_and_headers(kafka_bootstrap: str, unique_topic: str) -> None:
    create_topics(kafka_bootstrap, [unique_topic], partitions=3)
    assert sorted(end_offsets(kafka_bootstrap, unique_topic)) == [0, 1, 2]
    items = [(f"k{i}".encode(), f"v{i}".encode(), [("h", str(i).encode())]) for i in range(20)]
    assert produce(kafka_bootstrap, unique_topic, items) == 20
    got = consume_all(kafka_bootstrap, unique_topic, expect=20)
    assert sorted((m.key, m.value, m.header("h")) for m in got) == sorted(
        (k, v, h[0][1]) for k, v, h in items
    )
    # same key -> same partition (order per numéro unique rests on this)
    by_key: dict[bytes | None, set[int]] = {}
    for m in got:
        by_key.setdefault(m.key, set()).add(m.partition)
    assert all(len(p) == 1 for p in by_key.values())


def test_two_starts_at_once_leave_one_broker_that_stop_stops(tmp_path: Path) -> None:
    """`gateway broker start` twice at the same moment on a fresh state dir: one broker starts, the
    other command finds it; `gateway broker stop` then stops it and no broker process is left."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "KAFKA_"))}
    env |= {"GATEWAY_STATE_DIR": str(tmp_path), "GATEWAY_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"}
    libs = Path(GatewaySettings().state_dir).expanduser() / "kafka"
    (tmp_path / "kafka").symlink_to(libs)  # the jars already fetched, not a second download
    cmd = [sys.executable, "-m", "gateway", "broker", "start"]
    starts = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=240)[0].decode() for p in starts]
        assert [p.returncode for p in starts] == [0, 0], outputs
        assert sum("starting Kafka" in o for o in outputs) == 1, outputs
    finally:
        stop = subprocess.run(
            [sys.executable, "-m", "gateway", "broker", "stop"],
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert stop.returncode == 0, stop.stdout + stop.stderr
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False)
    assert left.stdout.strip() == "", "a broker of this state dir is still running"
