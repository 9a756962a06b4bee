"""The SNE part of `gateway demo` (a step and a report function, for gateway.cli.demo's extension lists).

    from connectors.sne.demo import sne_report_topics, step_sne
    STEPS.append(("sne", step_sne)); REPORT_TOPICS.append(sne_report_topics)

After the ingest drained, `step_sne`:
1. reads the canonical records the demo produced and seeds a fresh simulator with the applications
   that already carry a numéro unique (the SNE knows them), plus one new DALO decision (for the
   smallest numéro unique among the Demandes: the same application every run);
2. starts the simulator (development certificates in <workdir>/sne/certs) and `gateway sne run`
   as child processes (mutual TLS, settings passed as GATEWAY_* / GATEWAY_SNE_* variables);
3. waits until every SNE fact got its feedback and the polled DALO decision is on the decision topic,
   then stops both processes and adds a summary to the demo's notes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.codec.avro import load_schemas
from gateway.codec.framing import decoder_for
from gateway.errors import GatewayError, RejectedMessage
from gateway.kafka_config import client_kwargs
from gateway.settings import GatewaySettings
from gateway.topics import canonical_topic, dlq_topic

from connectors.sne.nuu import NUU_NS, build_interface_nuu, to_bytes, type_fichier_for
from connectors.sne.simulator.certs import ensure_certs
from connectors.sne.simulator.state import Registry, identity_key
from connectors.sne.testing import SimulatorProcess

__all__ = ["sne_report_topics", "step_sne"]

FEEDBACK_INFIX = ".feedback."


def sne_report_topics(settings: GatewaySettings) -> list[str]:
    """The feedback topics that exist for the demo's prefix, and the canonical dead-letter topics."""
    from kafka import KafkaConsumer  # noqa: PLC0415

    consumer = KafkaConsumer(**client_kwargs(settings))
    try:
        names = sorted(t for t in consumer.topics() if t.startswith(settings.topic_prefix + FEEDBACK_INFIX))
    finally:
        consumer.close()
    p = settings.topic_prefix
    return [*names, dlq_topic(canonical_topic("demande", p)), dlq_topic(canonical_topic("decision", p))]


def _canonical(settings: GatewaySettings) -> list[tuple[str, dict[str, Any]]]:
    from gateway.testing.kafka import consume_all  # noqa: PLC0415

    decoder = decoder_for(settings.schema_registry_url, load_schemas().by_fingerprint())
    out = []
    for kind in ("demande", "decision"):
        for m in consume_all(
            settings.bootstrap_servers, canonical_topic(kind, settings.topic_prefix), quiet_ms=800
        ):
            if not m.value:
                continue
            try:
                codec, record = decoder.decode(m.value)
            except RejectedMessage:
                continue
            out.append((codec.name, record))
    return out


def _seed(registry: Registry, records: list[tuple[str, dict[str, Any]]]) -> int:
    seeded = 0
    for schema, record in records:
        num = record.get("numUnique")
        if not schema.endswith("Demande") or not num or not record.get("demandeur"):
            continue
        dem = record["demandeur"]
        born = dem.get("dateNaissance")
        identity = identity_key(
            dem.get("nom") or "", dem.get("prenom") or "", born.isoformat() if born else ""
        )
        root = build_interface_nuu(schema, record, "CRE", guichet=record["numGuichet"], now=datetime.now(UTC))
        created = record["dateCreationDemande"].isoformat()
        seeded += registry.seed(
            num, identity=identity, guichet=record["numGuichet"], date_creation=created, xml=to_bytes(root)
        )
    known = {r.get("numUnique") for s, r in records if s.endswith("Demande")}
    for schema, record in records:  # applications the demo knows only by number, from their decisions
        num = record.get("numUnique")
        if schema.endswith("Decision") and num and num not in known and _reported(schema, record):
            known.add(num)
            seeded += registry.seed(
                num, identity=None, guichet="G0000", date_creation=_month(num), xml=_partial(num)
            )
    return seeded


def _reported(schema: str, record: dict[str, Any]) -> bool:
    return type_fichier_for(schema, record) is not None


def _month(num: str) -> str:
    """First day of the filing month a demo numéro carries (DDD YY MM ...), else 2026-01-01."""
    yy, mm = num[3:5], num[5:7]
    return f"20{yy}-{mm}-01" if (yy + mm).isdigit() and "01" <= mm <= "12" else "2026-01-01"


def _partial(num: str) -> bytes:
    """The SNE's copy of an application registered elsewhere, of which the demo knows only the number
    (the radiation and CAL-decision reports do not depend on the copy being complete)."""
    return (
        f'<interfaceNuu xmlns="{NUU_NS}" versionInterface="02.01"><entete><typeFichier>CRE</typeFichier>'
        f"<dateFichier>{datetime.now(UTC).isoformat(timespec='seconds')}</dateFichier></entete><demande>"
        f"<demandeLogement><numUnique>{num}</numUnique><numGuichet>G0000</numGuichet>"
        f"<dateCreationDemande>{_month(num)}</dateCreationDemande></demandeLogement></demande></interfaceNuu>"
    ).encode()


def _feedback_counts(settings: GatewaySettings) -> Counter[str]:
    from gateway.testing.kafka import consume_all  # noqa: PLC0415

    codec = load_schemas().codec("SneFeedback")
    decoder = decoder_for(settings.schema_registry_url, {codec.fingerprint: codec})  # either framing
    counts: Counter[str] = Counter()
    for topic in sne_report_topics(settings):
        if FEEDBACK_INFIX not in topic:
            continue
        for m in consume_all(settings.bootstrap_servers, topic, quiet_ms=300):
            try:
                counts[str(decoder.decode(m.value or b"")[1]["status"])] += 1
            except RejectedMessage:
                continue
    return counts


def step_sne(ctx: Any, timeout_s: float = 120.0) -> None:
    """See the module docstring. `ctx` is gateway.cli.demo.DemoContext."""
    from gateway.cli.demo import worker_env  # noqa: PLC0415

    settings: GatewaySettings = ctx.settings
    work: Path = ctx.workdir / "sne"
    certs = work / "certs"
    ensure_certs(certs)
    records = _canonical(settings)
    facts = sum(1 for schema, r in records if type_fichier_for(schema, r) is not None)
    registry = Registry(work / "sim-state" / "sne-simulator.sqlite")
    try:
        seeded = _seed(registry, records)
        # the same application every run (the topics' read order is not: one per partition)
        dalo_for = min(
            (str(r["numUnique"]) for s, r in records if s.endswith("Demande") and r.get("numUnique")),
            default=None,
        )
        if dalo_for:
            registry.add_dalo(
                str(dalo_for), "ACTIF", datetime.now(UTC).date().isoformat(), "03", str(dalo_for)[1:3]
            )
    finally:
        registry.close()
    sim = SimulatorProcess(certs, work / "sim-state").start()
    ctx.say(f"SNE simulator on port {sim.port} ({seeded} known applications seeded, certificates in {certs})")
    env = worker_env(settings.model_copy(update={"state_dir": work / "connector-state"}))
    env.update(
        GATEWAY_SNE_URL=f"https://127.0.0.1:{sim.port}/services/DemandeLogementImplService/",
        GATEWAY_SNE_GUICHET="G3501",
        GATEWAY_SNE_POLL_INTERVAL="1",
        GATEWAY_SNE_RATE_LIMIT_PER_SECOND="50",
        GATEWAY_SNE_RETRY_BASE_DELAY="0.2",
    )
    log = work / "sne-run.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "gateway", "sne", "run", "--certs", str(certs)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    ctx.say(f"gateway sne run started (pid {proc.pid}, log {log}); {facts} SNE facts to send")
    try:
        deadline = time.monotonic() + timeout_s
        counts: Counter[str] = Counter()
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise GatewayError(f"gateway sne run exited ({proc.returncode}); see {log}")
            counts = _feedback_counts(settings)
            if sum(counts.values()) >= facts:
                break
            time.sleep(1.0)
        else:
            raise GatewayError(f"SNE feedback incomplete after {timeout_s:.0f}s: {dict(counts)} of {facts}")
        time.sleep(2.0)  # one more poll interval: the DALO decision read back from the SNE
        state = sim.control()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sim.stop()
    ctx.notes.append(_sne_note(counts, state, settings.topic_prefix))
    ctx.say("SNE step done: simulator and connector stopped")


def _sne_note(counts: Mapping[str, int], state: Mapping[str, Any], prefix: str) -> str:
    """The report's SNE line: the answers and the sends are the samples' facts (the same every run);
    the polls of the *DepuisLe services depend on how long the step ran, so they are given apart."""
    calls = dict(state["calls"])
    polls = sum(n for name, n in calls.items() if name.endswith("DepuisLe"))
    sends = {name: n for name, n in calls.items() if not name.endswith("DepuisLe")}
    return (
        f"SNE: {counts.get('ACCEPTED', 0)} accepted, {counts.get('REJECTED', 0)} rejected, "
        f"{counts.get('ERROR', 0)} errors (feedback on {prefix}.feedback.<organisation>); "
        f"simulator calls {sends}, {state['demandes']} applications registered; {polls} polls"
    )
