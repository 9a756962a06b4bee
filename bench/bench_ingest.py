"""Ingest benchmark on a real Kafka broker (prints figures; asserts nothing).

1. baselines: raw consume -> produce with kafka-python (the ingest runner's client), same message
   sizes, same topic layout, same client settings: records/s between the first and last output
   record. The plain baseline (the issue's measure: idempotent producer, offsets committed after
   each polled batch), a transactional one (each polled batch's outputs and offsets in one Kafka
   transaction: the client-side cost of exactly-once), and aiokafka's plain loop for reference
   (faust's client, used by the route flow);
2. the ingest flow (a `gateway run --flows ingest` worker) on the same inputs: exactly-once and
   at-least-once in one worker, exactly-once with one normalising process (GATEWAY_INGEST_PROCESSES=1),
   and two workers; records/s the same way and the ratio to the plain baseline (goal >= 0.5);
   exactly-once rows also print the ratio to the transactional baseline, labelled as such;
3. end-to-end latency at a fixed offered load: input produced at a fixed rate while the worker runs;
   latency = time a read_committed consumer receives the canonical record - time the input was sent.

Broker: KAFKA_BOOTSTRAP_SERVERS if set, else a local broker from the cached jars (as the tests do).
Usage: python bench/bench_ingest.py [--records 3000] [--rate 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from gateway.broker import LocalBroker, free_port, install_kafka
from gateway.flows.admin import TopicSpec, ensure_topics, ingest_topics
from gateway.settings import GatewaySettings
from gateway.testing.kafka import start_worker, stop_worker, worker_env
from gateway.topics import canonical_topic, source_raw_topic
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "sne-xml" / "demande-cre-famille-rennes.xml"
PARTITIONS = 3


def produce_n(bootstrap: str, topic: str, payload: bytes, n: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024)
    for i in range(n):
        producer.send(topic, key=f"k{i}".encode(), value=payload)
    producer.flush()
    producer.close()


def output_rate(bootstrap: str, topic: str, n: int, timeout: float = 600, skip: int = 0) -> float:
    """records/s between the first and last record of `topic` (CreateTime), once n are in; the `skip`
    oldest records (warm-up) are left out."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_bytes=64 * 1024 * 1024,
    )
    stamps: list[int] = []
    deadline = time.monotonic() + timeout
    while len(stamps) < n and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            stamps.extend(r.timestamp for r in records)
    consumer.close()
    if len(stamps) < n:
        raise SystemExit(f"only {len(stamps)} of {n} records arrived on {topic}")
    stamps = sorted(stamps)[skip:]
    span = (stamps[-1] - stamps[0]) / 1000
    return (len(stamps) - 1) / span if span > 0 else float("inf")


async def passthrough(bootstrap: str, src: str, dst: str, n: int) -> None:
    consumer = AIOKafkaConsumer(
        src,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    done = 0
    try:
        while done < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            for records in batch.values():
                for r in records:
                    await producer.send(dst, r.value, key=r.key, headers=list(r.headers))
                    done += 1
            await producer.flush()
            await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


def passthrough_kafka_python(bootstrap: str, src: str, dst: str, n: int, *, transactional: bool) -> None:
    """The ingest runner's loop without its core: kafka-python consumer -> producer, same settings
    (read_committed, idempotent acks=all producer, 500 records per poll); transactional: each polled
    batch's outputs and offsets in one transaction (KIP-447 group metadata), else flush + commit."""
    group = f"bench-kp-{uuid.uuid4().hex[:6]}"
    consumer = KafkaConsumer(
        src, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
        enable_auto_commit=False, isolation_level="read_committed", max_poll_records=500,
    )  # fmt: skip
    options: dict[str, Any] = {"transactional_id": group} if transactional else {}
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
        batch_size=256 * 1024, **options,
    )  # fmt: skip
    if transactional:
        producer.init_transactions()
    done = 0
    try:
        while done < n:
            batch = consumer.poll(timeout_ms=200, max_records=500)
            if not batch:
                continue
            if transactional:
                producer.begin_transaction()
            for records in batch.values():
                for r in records:
                    producer.send(dst, r.value, key=r.key, headers=list(r.headers))
                    done += 1
            offsets = {tp: OffsetAndMetadata(rs[-1].offset + 1, "", -1) for tp, rs in batch.items() if rs}
            if transactional:
                producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
                producer.commit_transaction()
            else:
                producer.flush()
                consumer.commit(offsets)
    finally:
        producer.close()
        consumer.close()


def bench_baseline(
    bootstrap: str, payload: bytes, n: int, *, client: str, transactional: bool = False
) -> float:
    src, dst = f"bench.base.in.{uuid.uuid4().hex[:6]}", f"bench.base.out.{uuid.uuid4().hex[:6]}"
    ensure_topics(bootstrap, [TopicSpec(src, PARTITIONS, 1), TopicSpec(dst, PARTITIONS, 1)])
    produce_n(bootstrap, src, payload, n)
    if client == "kafka-python":
        passthrough_kafka_python(bootstrap, src, dst, n, transactional=transactional)
    else:  # aiokafka, plain: the reference
        asyncio.run(passthrough(bootstrap, src, dst, n))
    return output_rate(bootstrap, dst, n)


def _flow_setup(bootstrap: str, tmp: Path, guarantee: str) -> tuple[str, dict[str, str]]:
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    settings = GatewaySettings(bootstrap_servers=bootstrap, topic_prefix=prefix, partitions=PARTITIONS)
    ensure_topics(bootstrap, ingest_topics(settings))
    env = worker_env(
        bootstrap,
        prefix=prefix,
        state_dir=str(tmp),
        web_port=free_port(),
        partitions=PARTITIONS,
        guarantee=guarantee,
    )
    return prefix, env


def bench_flow(
    bootstrap: str,
    payload: bytes,
    n: int,
    *,
    guarantee: str,
    tmp: Path,
    workers: int = 1,
    processes: int = 0,
) -> float:
    prefix, env = _flow_setup(bootstrap, tmp, guarantee)
    procs = []
    for i in range(workers):  # same group: the partitions are shared between the workers
        wenv = {
            **env,
            "GATEWAY_WEB_PORT": str(free_port()),
            "GATEWAY_INSTANCE_ID": f"bench-{i}",
            "GATEWAY_INGEST_PROCESSES": str(processes),
        }
        log = tmp / f"w{i}.log"
        procs.append(start_worker(wenv, log_path=str(log)))
    try:
        # start the clock only once every worker holds its partitions: wait for a warm-up record
        produce_n(bootstrap, source_raw_topic("sne-xml", "rennes-habitat-erp", prefix), payload, 1)
        output_rate(bootstrap, canonical_topic("demande", prefix), 1)
        time.sleep(2 * workers)  # let the group settle (one rebalance per extra worker)
        produce_n(bootstrap, source_raw_topic("sne-xml", "rennes-habitat-erp", prefix), payload, n)
        return output_rate(bootstrap, canonical_topic("demande", prefix), n + 1, skip=1)
    finally:
        for proc in procs:
            stop_worker(proc)


def bench_latency(
    bootstrap: str, payload: bytes, *, rate: float, seconds: float, guarantee: str, tmp: Path
) -> list[float]:
    prefix, env = _flow_setup(bootstrap, tmp, guarantee)
    raw, out = source_raw_topic("sne-xml", "rennes-habitat-erp", prefix), canonical_topic("demande", prefix)
    worker = start_worker(env, log_path=str(tmp / f"latency-{guarantee}.log"))
    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    total = int(rate * seconds)
    stop = threading.Event()

    def consume() -> None:
        consumer = KafkaConsumer(
            out, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
            enable_auto_commit=False, isolation_level="read_committed",
        )  # fmt: skip
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=100).values():
                now = time.time()
                for r in records:
                    coords = dict(r.headers).get("gp.source.coordinates", b"").decode()
                    received.setdefault(coords, now)
        consumer.close()

    try:
        # warm-up: wait until the worker processes one record, so start-up time is not measured
        warm = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        warm.send(raw, key=b"warm", value=payload).get(30)
        warm.close()
        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
        received.clear()
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        start = time.monotonic()
        for i in range(total):
            target = start + i / rate
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t0 = time.time()
            md = producer.send(raw, key=f"l{i}".encode(), value=payload).get(30)
            sent[f"{raw}/{md.partition}/{md.offset}"] = t0
        producer.close()
        deadline = time.monotonic() + 120
        while sum(1 for c in sent if c in received) < total and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        stop_worker(worker)
    return sorted(received[c] - sent[c] for c in sent if c in received)


def pure_rate(payload: bytes, n: int = 500) -> float:
    """The flow's pure core alone (normalise + Avro encode + headers): the CPU ceiling of one worker."""
    from gateway.codec.avro import load_schemas  # noqa: PLC0415
    from gateway.flows.dlq import DeadLetters  # noqa: PLC0415
    from gateway.flows.ingest import ingest_record  # noqa: PLC0415

    schemas, dead = load_schemas(), DeadLetters()

    def one(i: int) -> None:
        ingest_record(
            "sne-xml", payload, source_topic="t", partition=0, offset=i, key=b"k", timestamp_ms=0,
            schemas=schemas, dead_letters=dead,
        )  # fmt: skip

    for i in range(20):
        one(i)
    start = time.perf_counter()
    for i in range(n):
        one(i)
    return n / (time.perf_counter() - start)


def _runs(spec: str) -> list[tuple[str, int, int]]:
    """ "eos,alo,eos-2p,eos-2w" -> (guarantee, workers, processes) per run."""
    out = []
    for item in (i.strip() for i in spec.split(",") if i.strip()):
        mode, _, extra = item.partition("-")
        guarantee = {"eos": "exactly_once", "alo": "at_least_once"}[mode]
        n = int(extra[:-1]) if extra else 0
        out.append((guarantee, n if extra.endswith("w") else 1, n if extra.endswith("p") else 0))
    return out


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument(
        "--rate", type=float, default=100.0, help="offered load for the latency run (records/s)"
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--flows",
        default="eos,alo,eos-1p,eos-2w",
        help="ingest runs: eos / alo (1 worker), eos-Np (N normalising processes), eos-Nw (N workers)",
    )
    parser.add_argument("--no-latency", action="store_true", help="skip the latency runs")
    args = parser.parse_args()
    payload = SAMPLE.read_bytes()
    tmp = Path(tempfile.mkdtemp(prefix="gp-bench-"))
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        settings = GatewaySettings()
        broker = LocalBroker(
            install_kafka(settings.state_dir, settings.kafka_version), tmp / "kafka", watch_parent=True
        )
        bootstrap = broker.start()
    try:
        print(
            f"broker {bootstrap}; {args.records} records of {len(payload)} bytes SNE XML, {PARTITIONS} parts"
        )
        print(f"pure ingest_record, no Kafka (CPU ceiling) : {pure_rate(payload):8.0f} records/s")
        base = bench_baseline(bootstrap, payload, args.records, client="kafka-python")
        print(
            f"{'baseline kafka-python consume->produce':40}: {base:8.0f} records/s   (the issue's baseline)"
        )
        base_tx = bench_baseline(bootstrap, payload, args.records, client="kafka-python", transactional=True)
        print(f"{'baseline kafka-python, transactional':40}: {base_tx:8.0f} records/s")
        aio = bench_baseline(bootstrap, payload, args.records, client="aiokafka")
        print(f"{'aiokafka consume->produce (faust client)':40}: {aio:8.0f} records/s   (reference)")

        def ratios(rate: float, guarantee: str) -> str:
            out = f"ratio {rate / base:.2f}"
            if guarantee == "exactly_once":
                out += f"   (to transactional baseline {rate / base_tx:.2f})"
            return out

        for guarantee, workers, processes in _runs(args.flows):
            rate = bench_flow(
                bootstrap, payload, args.records, guarantee=guarantee, tmp=tmp, workers=workers,
                processes=processes,
            )  # fmt: skip
            label = f"ingest ({guarantee}, {workers}w, {processes}p)"
            print(f"{label:40}: {rate:8.0f} records/s   {ratios(rate, guarantee)}")
        for guarantee in () if args.no_latency else ("exactly_once", "at_least_once"):
            lat = bench_latency(
                bootstrap, payload, rate=args.rate, seconds=args.seconds, guarantee=guarantee, tmp=tmp
            )
            mean = statistics.fmean(lat) * 1000 if lat else float("nan")
            print(
                f"latency at {args.rate:.0f} rec/s ({guarantee:13}): n={len(lat)}"
                f" p50 {pct(lat, 0.5) * 1000:7.1f} ms p99 {pct(lat, 0.99) * 1000:7.1f} ms mean {mean:7.1f} ms"
            )
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
