"""`gateway demo` end to end on the session broker: exit 0, a table of what flowed where, and the
counts agree with what the pure normalisers say about the bundled samples."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from connectors.file_drop.demo import assign_samples
from gateway.cli.demo import SAMPLES
from gateway.normalise import CanonicalRecord, Rejection, normalise
from gateway.policy.model import load_policy


def _expected() -> tuple[int, int]:
    """What the normalisers make of the samples, each dropped by its demo source: a record the
    source may not enter (the spoofed input) is a dead letter."""
    canonical = dead = 0
    policy = load_policy()
    for source, fmt, p, _ in assign_samples(policy, SAMPLES):
        for o in normalise(fmt, p.read_bytes()):
            ok = isinstance(o, CanonicalRecord) and o.record["provenance"]["saisie"] in policy.may_enter(
                source
            )
            canonical += ok
            dead += isinstance(o, Rejection) or not ok
    return canonical, dead


def test_demo_runs_the_samples_and_reports(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"demo{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "GATEWAY_STATE_DIR": str(tmp_path)})
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--prefix", prefix],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "already running" in out  # it used the given broker and left it alone
    match = re.search(r"ingest records: (\d+) canonical, (\d+) dead-lettered", out)
    assert match, out
    assert (int(match.group(1)), int(match.group(2))) == _expected()
    assert f"{prefix}.canonical.demande" in out
    assert "gateway worker stopped" in out
    # the route and SNE steps ran too: actor views, audit entries, SNE answers
    assert f"{prefix}.audit.disclosures" in out
    assert re.search(r"SNE: \d+ accepted", out), out
