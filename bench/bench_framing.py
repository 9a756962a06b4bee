"""Confluent wire format vs Avro single-object framing: CPU of ingest and route (prints figures).

In one run, alternating, best of 3 (the machine is shared):
- ingest core: normalise + encode the bundled samples (`ingest_record`), then frame the canonical
  records as the ingest loop does (single-object: as encoded; Confluent: prefix swapped from the
  cached schema id);
- route core: `RouteCore.process` of a demand and a decision (decode + policy + views + audit),
  single-object in and out vs Confluent in and out.
Ratio = single-object CPU / Confluent CPU per input (throughput ratio; goal >= 0.95), and the number
of registry calls made while measuring (goal 0: ids are cached).

Registry: GATEWAY_SCHEMA_REGISTRY_URL if set, else a local Apicurio Registry started for the run.
Usage: python bench/bench_framing.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gateway.codec.avro import load_schemas
from gateway.codec.framing import ConfluentFramer, FrameDecoder, Framer
from gateway.codec.registry_client import RegistryClient
from gateway.flows.dlq import DeadLetters
from gateway.flows.ingest import ingest_record
from gateway.flows.route import RouteCore
from gateway.policy import PolicyStore, ScopeState
from gateway.policy.samples import sample_decision, sample_demande
from gateway.topics import FORMATS, canonical_topic

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
NUM = "035260100000000001"
PREFIX = "bench"


def _inputs() -> list[tuple[str, bytes]]:
    out = []
    for fmt in FORMATS:
        out += [(fmt, p.read_bytes()) for p in sorted((SAMPLES / fmt).glob("*")) if p.is_file()]
    return out


def _ingest(framer: Framer, inputs: list[tuple[str, bytes]]) -> Callable[[], int]:
    schemas, dead = load_schemas(), DeadLetters()
    confluent = framer.confluent

    def run() -> int:
        n = 0
        for i, (fmt, payload) in enumerate(inputs):
            result = ingest_record(
                fmt, payload, source_topic=f"bench.raw.{fmt}", partition=0, offset=i, key=None,
                timestamp_ms=0, schemas=schemas, dead_letters=dead, prefix=PREFIX,
            )  # fmt: skip
            for out in result.records:
                value = framer.reframe(out.topic, out.value) if confluent else out.value
                n += len(value)
        return n

    return run


def _route(framer: Framer, decoder: FrameDecoder) -> Callable[[], int]:
    core = RouteCore(PolicyStore(), load_schemas(), DeadLetters(), PREFIX, framer=framer, decoder=decoder)
    schemas = load_schemas()
    inputs = []
    for kind, schema, record in (
        ("demande", "fr.gp.Demande", sample_demande(NUM)),
        ("decision", "fr.gp.Decision", sample_decision("DECISION_CAL", NUM)),
    ):
        value = schemas.codec(schema).encode_framed(record)
        inputs.append(framer.reframe(canonical_topic(kind, PREFIX), value) if framer.confluent else value)
    state = ScopeState(communes=("35238",)).to_bytes()

    def run() -> int:
        n = 0
        for i, value in enumerate(inputs):
            out = core.process(
                topic="t", partition=0, offset=i, key=NUM.encode(), value=value,
                headers=[("ce_id", b"x")], state=state,
            )  # fmt: skip
            n += sum(len(o.value) for o in out)
        return n

    return run


def _cpu(fn: Callable[[], int], rounds: int) -> float:
    fn()  # warm-up (views built, ids cached)
    started = time.process_time()
    for _ in range(rounds):
        fn()
    return (time.process_time() - started) / rounds


def _registry() -> tuple[str, Callable[[], None]]:
    url = os.environ.get("GATEWAY_SCHEMA_REGISTRY_URL")
    if url:
        return url, lambda: None
    from gateway.registry_local import LocalRegistry, install_registry  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415

    data = Path(tempfile.mkdtemp(prefix="gp-bench-registry-"))
    local = LocalRegistry(install_registry(GatewaySettings().state_dir), data, watch_parent=True)
    url = local.start()

    def stop() -> None:
        local.stop()
        shutil.rmtree(data, ignore_errors=True)

    return url, stop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    url, stop = _registry()
    try:
        client = RegistryClient(url)
        framer = ConfluentFramer(client)
        schemas = load_schemas()
        canonical = schemas.by_fingerprint()
        kinds = (("demande", "fr.gp.Demande"), ("decision", "fr.gp.Decision"))
        framer.prepare([(canonical_topic(k, PREFIX), schemas.codec(s)) for k, s in kinds])
        inputs = _inputs()
        cases = {
            "ingest": (_ingest(Framer(), inputs), _ingest(framer, inputs)),
            "route": (
                _route(Framer(), FrameDecoder(canonical)),
                _route(framer, FrameDecoder(canonical, client)),
            ),
        }
        calls = framer.registry_calls
        for name, (single, confluent) in cases.items():
            single_runs, confluent_runs = [], []
            for _ in range(3):  # alternating: both see the same machine load
                single_runs.append(_cpu(single, args.rounds))
                confluent_runs.append(_cpu(confluent, args.rounds))
            s, c = min(single_runs), min(confluent_runs)
            per = len(inputs) if name == "ingest" else 2
            print(
                f"{name:6}: single-object {s / per * 1e6:8.1f} µs, Confluent {c / per * 1e6:8.1f} µs CPU "
                f"per input; throughput ratio Confluent/single-object {s / c:.3f} (goal >= 0.95)"
            )
        print(f"registry calls while measuring: {framer.registry_calls - calls} (ids cached; goal 0)")
    finally:
        stop()


if __name__ == "__main__":
    main()
