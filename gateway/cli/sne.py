"""`gateway sne`: the SNE connector and its simulator.

    gateway sne simulate --port 8443 --certs DIR [--state DIR] [--fail-first N] [--latency S] [--drop-next N]
    gateway sne send FILE [--service numUnique|doublons]     one interfaceNuu XML file, prints the answer
    gateway sne run                                         sink on the canonical topics + poller
    gateway sne poll                                        one poll of the *DepuisLe services
    gateway sne flush                                       daily mode: send the queued records now
    gateway sne check                                       TLS material, XSD, ledger (no traffic)
    gateway sne validate FILE...                            offline: XSD + SNE rules (exit 0 valid, 2 invalid)

Connector settings come from GATEWAY_SNE_<FIELD> environment variables (opt-in; this is the only
place they are read), overridden by the options; `--certs DIR` is a shortcut for the simulator's
development material (client.pem, client.key, ca.pem in DIR).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from gateway.errors import ConfigError, Problem
from gateway.kafka_config import client_kwargs
from gateway.topics import canonical_topic, dlq_topic

__all__ = ["sne"]

ENV_PREFIX = "GATEWAY_SNE_"


def sne_config(overrides: dict[str, Any]) -> Any:
    """SneConfig from GATEWAY_SNE_* variables and CLI overrides; every error reported at once."""
    from connectors.sne.config import SneConfig  # noqa: PLC0415 - lazy CLI import

    values: dict[str, Any] = {}
    fields = set(SneConfig.model_fields)
    for key, value in os.environ.items():
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :].lower() in fields:
            values[key[len(ENV_PREFIX) :].lower()] = value
    certs = overrides.pop("certs", None)
    if certs:
        d = Path(certs)
        values.update(
            client_cert=d / "client.pem",
            client_key=d / "client.key",
            ca_cert=d / "ca.pem",
            certificate_part=d / "client.pem",
        )
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return SneConfig.model_validate(values)
    except ValidationError as exc:
        problems = [Problem(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise ConfigError("invalid SNE connector configuration", problems) from exc


def _common(f: Any) -> Any:
    for opt in (
        click.option("--url", help="SNE service URL (GATEWAY_SNE_URL)."),
        click.option("--guichet", help="Guichet code G + 4 characters (GATEWAY_SNE_GUICHET)."),
        click.option(
            "--certs", type=click.Path(file_okay=False), help="Directory with client.pem, client.key, ca.pem."
        ),
    ):
        f = opt(f)
    return f


@click.group("sne")
def sne() -> None:
    """The national registry (SNE) connector and its simulator."""


@sne.command("simulate")
@click.option(
    "--port", type=int, default=8443, show_default=True, help="Port on 127.0.0.1 (0: any free port)."
)
@click.option(
    "--certs",
    "certs_dir",
    type=click.Path(file_okay=False),
    required=True,
    help="Directory of the development CA, server and client certificates (created if absent).",
)
@click.option(
    "--state",
    "state_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="State directory (default: the certs directory).",
)
@click.option("--fail-first", type=int, default=0, help="Answer 503 to the first N requests.")
@click.option("--latency", type=float, default=0.0, help="Seconds added to every request.")
@click.option("--drop-next", type=int, default=0, help="Process the next N requests, then drop them.")
def simulate(
    *, certs_dir: str, state_dir: str | None, port: int, fail_first: int, latency: float, drop_next: int
) -> None:
    """Run the SNE simulator (HTTPS, client certificate required) until interrupted."""
    from connectors.sne.simulator.server import Faults, serve  # noqa: PLC0415

    faults = Faults(fail_next=fail_first, latency=latency, drop_next=drop_next)
    server = serve(port, Path(certs_dir), Path(state_dir or certs_dir), faults)
    click.echo(
        f"SNE simulator listening on https://127.0.0.1:{server.port}/services/DemandeLogementImplService/ "
        f"(certificates in {certs_dir})",
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()


@sne.command("send")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--service", type=click.Choice(["numUnique", "doublons"]), default="numUnique", show_default=True
)
@_common
def send(*, file: str, service: str, url: str | None, guichet: str | None, certs: str | None) -> None:
    """Send one file to the SNE and print the answer: an interfaceNuu XML file, or a canonical
    fr.gp.Demande / fr.gp.Decision as JSON (sent as the connector would, feedback printed).
    A file the SNE would refuse is refused before sending (exit code 2)."""
    cfg = sne_config({"url": url, "guichet": guichet, "certs": certs})
    try:
        data = Path(file).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {type(exc).__name__}") from exc
    if file.endswith(".json") or data.lstrip()[:1] == b"{":
        click.echo(json.dumps(asyncio.run(_send_json(cfg, data, file)), ensure_ascii=False, indent=2))
        return
    click.echo(json.dumps(_send_xml(cfg, data, file, service), ensure_ascii=False, indent=2))


def _send_xml(cfg: Any, data: bytes, file: str, service: str) -> dict[str, Any]:
    from connectors.sne.client import SneClient  # noqa: PLC0415
    from connectors.sne.mtom import safe_parser  # noqa: PLC0415
    from connectors.sne.nuu import to_bytes  # noqa: PLC0415
    from connectors.sne.rules import as_problems, mandatory_anomalies, xsd_problems  # noqa: PLC0415
    from lxml import etree  # noqa: PLC0415

    from gateway.errors import RejectedMessage  # noqa: PLC0415

    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise RejectedMessage(
            "not well-formed XML", [Problem(Path(file).name, f"line {exc.lineno}")]
        ) from exc
    problems = as_problems(mandatory_anomalies(root)) + xsd_problems(root)
    if problems:
        raise RejectedMessage("the SNE would refuse this file", problems)
    exchange = SneClient(cfg).call(service, now=datetime.now(UTC), xml=to_bytes(root))
    a = exchange.answer
    return {
        "service": service,
        "file": exchange.request.file_name,
        "status": "ACCEPTED" if a.accepted else "REJECTED",
        "numUnique": a.num_unique,
        "anomalies": [{"code": c, "message": m} for c, m in a.anomalies],
        "doublons": list(a.doublons),
    }


async def _send_json(cfg: Any, data: bytes, file: str) -> Any:
    import tempfile  # noqa: PLC0415

    from connectors.sne.canonical_json import record_from_json  # noqa: PLC0415
    from connectors.sne.connector import SneSink  # noqa: PLC0415

    from gateway.codec.avro import decode_single_object, load_schemas, to_jsonable  # noqa: PLC0415
    from gateway.connectors import SinkRecord  # noqa: PLC0415
    from gateway.errors import RejectedMessage  # noqa: PLC0415

    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise RejectedMessage("not JSON", [Problem(Path(file).name, type(exc).__name__)]) from exc
    schema, record = record_from_json(document)
    with tempfile.TemporaryDirectory(prefix="gp-sne-send-") as tmp:
        ledger = cfg.ledger_path or Path(tmp) / "ledger.sqlite"
        sink = SneSink(
            cfg.model_copy(update={"ledger_path": ledger, "mode": "immediate"}), state_dir=Path(tmp)
        )
        try:
            outputs = await sink.write([SinkRecord(schema, "", record, topic=Path(file).name)])
        finally:
            sink.close()
    codecs = load_schemas().by_fingerprint()
    return [
        {
            "topic": o.topic,
            "key": (o.key or b"").decode(),
            "value": to_jsonable(decode_single_object(o.value, codecs)[1]),
        }
        for o in outputs
        if o.value is not None
    ]


@sne.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Check interfaceNuu files offline against the XSD and the SNE's rules: one line per offending
    element (path, line, reason; never a value). Exit 0 when every file is valid, 2 otherwise."""
    from connectors.sne.rules import file_problems  # noqa: PLC0415 - lazy CLI import

    invalid = 0
    for file in files:
        try:
            problems = file_problems(Path(file).read_bytes())
        except OSError as exc:
            raise click.ClickException(f"cannot read {file}: {type(exc).__name__}") from exc
        if not problems:
            click.echo(f"{file}: valid")
            continue
        invalid += 1
        for p in problems:
            click.echo(f"{file}: {p.path}: {p.reason}")
    if invalid:
        click.echo(f"{invalid} of {len(files)} files invalid", err=True)
        raise SystemExit(2)


@sne.command("check")
@_common
def check(url: str | None, guichet: str | None, certs: str | None) -> None:
    """Check the connector's configuration without calling the SNE."""
    from connectors.sne.connector import SneSink  # noqa: PLC0415

    from gateway.settings import GatewaySettings  # noqa: PLC0415

    sink = SneSink(
        sne_config({"url": url, "guichet": guichet, "certs": certs}), state_dir=GatewaySettings().state_dir
    )
    result = sink.check()
    click.echo(("ok: " if result.ok else "failed: ") + result.detail)
    if not result.ok:
        raise SystemExit(1)


@sne.command("flush")
@_common
def flush(url: str | None, guichet: str | None, certs: str | None) -> None:
    """Daily mode: ask the running connector to send its queued records now."""
    from connectors.sne.connector import SneSink  # noqa: PLC0415

    from gateway.settings import GatewaySettings  # noqa: PLC0415

    sink = SneSink(
        sne_config({"url": url, "guichet": guichet, "certs": certs}), state_dir=GatewaySettings().state_dir
    )
    pending = sum(v for k, v in sink.ledger.counts().items() if k != "ANSWERED")
    sink.trigger_file.touch()
    sink.close()
    click.echo(f"daily batch requested ({pending} record(s) queued)")


@sne.command("poll")
@_common
def poll(url: str | None, guichet: str | None, certs: str | None) -> None:
    """Poll nouveauxDaloDepuisLe and demandesRadieesDepuisLe once; publish the decisions."""
    from gateway.settings import GatewaySettings  # noqa: PLC0415

    settings = GatewaySettings()
    cfg = sne_config({"url": url, "guichet": guichet, "certs": certs, "topic_prefix": settings.topic_prefix})
    count = asyncio.run(_poll_once(cfg, settings))
    click.echo(f"{count} decision(s) published")


async def _poll_once(cfg: Any, settings: Any) -> int:
    from connectors.sne.connector import SneSink  # noqa: PLC0415
    from connectors.sne.poller import SnePoller  # noqa: PLC0415
    from kafka import KafkaProducer  # noqa: PLC0415

    from gateway.codec.framing import framer_for  # noqa: PLC0415

    sink = SneSink(cfg, state_dir=settings.state_dir)
    producer = KafkaProducer(**client_kwargs(settings), acks="all")

    framer = framer_for(settings.schema_registry_url)

    async def publish(outputs: Any) -> None:
        await asyncio.to_thread(_send_all, producer, outputs, framer)

    try:
        return await SnePoller(cfg, sink.client, sink.ledger).poll_once(publish)
    finally:
        producer.close()
        sink.close()


def _send_all(producer: Any, outputs: Any, framer: Any = None) -> None:
    def value(o: Any) -> Any:  # Confluent wire format when a schema registry is configured
        confluent = framer is not None and framer.confluent and o.value[:2] == b"\xc3\x01"
        return framer.reframe(o.topic, o.value) if confluent else o.value

    futures = [producer.send(o.topic, key=o.key, value=value(o), headers=list(o.headers)) for o in outputs]
    producer.flush()
    for f in futures:
        f.get(timeout=60)


@sne.command("run")
@_common
@click.option("--no-poll", is_flag=True, help="Do not poll the *DepuisLe services.")
@click.option(
    "--max-wait", default=0.0, show_default=True, help="Give up if Kafka does not answer (s, 0 = never)."
)
def run(*, url: str | None, guichet: str | None, certs: str | None, no_poll: bool, max_wait: float) -> None:
    """Send canonical demands and decisions to the SNE (ack after answer) and poll it, until Ctrl-C.

    Kafka away at start: one line per try, backoff 1 s ... 30 s (as `gateway run`); --max-wait gives up
    with exit code 1. Kafka lost while running: the runner retries with the same backoff."""
    from gateway.cli.run import wait_for_broker  # noqa: PLC0415
    from gateway.retry import broker_lost  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415

    settings = GatewaySettings()
    cfg = sne_config({"url": url, "guichet": guichet, "certs": certs, "topic_prefix": settings.topic_prefix})
    try:
        wait_for_broker(client_kwargs(settings), max_wait=max_wait)
        asyncio.run(run_sne(cfg, settings, poll=not no_poll))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:  # gave up (--max-wait), or the broker left before the runner started
        if not broker_lost(exc):
            raise
        click.echo(f"gateway sne run: {str(exc) or type(exc).__name__}", err=True)
        raise SystemExit(1) from None


async def run_sne(cfg: Any, settings: Any, *, poll: bool = True, stop: asyncio.Event | None = None) -> None:
    """The sink on canonical topics through the egress runner, plus the poller (used by tests and demo)."""
    from connectors.sne.connector import SneSink  # noqa: PLC0415
    from connectors.sne.poller import SnePoller  # noqa: PLC0415
    from kafka import KafkaProducer  # noqa: PLC0415

    from gateway.flows.admin import DAY_MS, TopicSpec, ensure_topics, ingest_topics, receipts_topic  # noqa: PLC0415
    from gateway.flows.egress import EgressRunner, RetryPolicy  # noqa: PLC0415
    from gateway.flows.sinks import principal_client_kwargs  # noqa: PLC0415

    canonical = {canonical_topic("demande", cfg.topic_prefix), canonical_topic("decision", cfg.topic_prefix)}
    specs = [t for t in ingest_topics(settings, raw_topics=()) if t.name in canonical]
    p, r = settings.partitions, settings.replication_factor
    specs += [
        TopicSpec(dlq_topic(t), p, r, "delete", {"retention.ms": str(30 * DAY_MS)}) for t in sorted(canonical)
    ]
    specs.append(receipts_topic(settings))  # its erasure receipts
    await asyncio.to_thread(ensure_topics, client_kwargs(settings), specs)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    sink = SneSink(cfg, state_dir=settings.state_dir)
    prefix = cfg.topic_prefix

    def create(names: set[str]) -> None:  # feedback topics (one per organisation): 30 days
        new = [TopicSpec(t, p, r, "delete", {"retention.ms": str(30 * DAY_MS)}) for t in sorted(names)]
        ensure_topics(client_kwargs(settings), new, request_timeout_s=settings.broker_timeout_s)

    runner = EgressRunner(
        sink,
        client=principal_client_kwargs(settings, f"{settings.app_id}.{sink.name}"),  # the gateway worker
        topics=[canonical_topic("demande", prefix), canonical_topic("decision", prefix)],
        group_id=f"{settings.app_id}.sne",
        retry=RetryPolicy(cfg.retry_attempts, cfg.retry_base_delay, cfg.retry_max_delay),
        partitions=settings.partitions,
        replication=settings.replication_factor,
        registry_url=settings.schema_registry_url,
        create_topics=create,
        commit_timeout_ms=int(settings.broker_timeout_s * 1000),
        session_timeout_ms=int(settings.session_timeout_s * 1000),
    )
    tasks = [asyncio.create_task(runner.run(stop))]
    producer = None
    if poll:
        producer = KafkaProducer(**client_kwargs(settings), acks="all")
        prod = producer

        async def publish(outputs: Any) -> None:
            await asyncio.to_thread(_send_all, prod, outputs, runner.outputs.framer)

        tasks.append(asyncio.create_task(SnePoller(cfg, sink.client, sink.ledger).run(publish, stop)))
    try:
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        if producer is not None:
            producer.close()
        sink.close()
