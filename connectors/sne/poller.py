"""Polling of nouveauxDaloDepuisLe and demandesRadieesDepuisLe: SNE facts back into the gateway.

Each poll asks for what changed since the service's watermark (persisted in the ledger), turns each
item into an fr.gp.Decision (DECISION_DALO or RADIATION, provenance.systemeSource "sne"), publishes
them Avro single-object framed to canonical_topic("decision") keyed by numéro unique, and only then
moves the watermark to the poll's start time. The eventId is derived from the item's content, so a
re-poll after a crash publishes exact duplicates that consumers drop by eventId / ce_id.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from gateway.codec.avro import UNKNOWN_SYMBOL, encode_single_object, from_sne_code, load_schemas, to_jsonable
from gateway.codec.xml import element_to_tree
from gateway.connectors import SinkOutput
from gateway.errors import Problem, RejectedMessage
from gateway.model.deadletter import dead_letter_headers
from gateway.model.envelope import cloudevent_headers
from gateway.normalise.codes import complete
from gateway.normalise.common import Ctx, Node
from gateway.normalise.events import map_attribution
from gateway.normalise.values import code_shape
from gateway.topics import canonical_topic, dlq_topic
from lxml import etree

from connectors.sne.answers import RAW_ANSWER_HEADER, DaloItem, RadiationItem
from connectors.sne.client import SneClient
from connectors.sne.config import SneConfig
from connectors.sne.ledger import Ledger

__all__ = [
    "SERVICES",
    "SnePoller",
    "attribution_of",
    "dalo_decision",
    "format_since",
    "radiation_decision",
]

log = logging.getLogger(__name__)
SERVICES = ("nouveauxDaloDepuisLe", "demandesRadieesDepuisLe")
Publish = Callable[[Sequence[SinkOutput]], Awaitable[None]]


def format_since(when: datetime) -> str:
    """aaaa-mm-jjTHH:MM:SS.s+hh:mm (brief §4.2)."""
    w = when.astimezone(UTC)
    return f"{w:%Y-%m-%dT%H:%M:%S}.{w.microsecond // 100000}+00:00"


def _event_id(*parts: object) -> str:
    return "sne-" + hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]


def _provenance(origine: str, when: datetime) -> dict[str, Any]:
    return {
        "origine": origine,
        "saisie": origine,
        "dateEvenement": when,
        "dateSaisie": when,
        "systemeSource": "sne",
        "referenceSource": None,
        "operation": "CREATION",
    }


def _empty_decision(event_id: str, num: str, kind: str, prov: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventId": event_id,
        "numUnique": num,
        "typeEvenement": kind,
        "provenance": prov,
    }
    for f in load_schemas().raw("Decision")["fields"]:
        record.setdefault(f["name"], None)
    return record


def _code(enum: str, code: str) -> tuple[str, str | None]:
    """(symbol, None) for a known SNE code; ("INCONNU", code) for a code of the list's shape added
    later (carried, as the normalisers do); else (code, None): not a valid record, dead-lettered."""
    symbol = from_sne_code(enum, code)
    if symbol is not None:
        return symbol, None
    shape = code_shape(enum)
    if shape is not None and code != UNKNOWN_SYMBOL and shape.fullmatch(code):
        return UNKNOWN_SYMBOL, code
    return code, None


def dalo_decision(item: DaloItem, origine: str, now: datetime) -> dict[str, Any]:
    day = item.date_decision or now.date()
    when = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    record = _empty_decision(
        _event_id("dalo", item.num_unique, item.statut, day),
        item.num_unique,
        "DECISION_DALO",
        _provenance(origine, when),
    )
    favourable = item.statut in ("ACTIF", "ACTREL")
    statut, statut_inconnu = _code("StatutDalo", item.statut) if item.statut else ("NON", None)
    record["decisionDalo"] = {
        "commission": item.commission or item.num_unique[:3],
        "dateDecision": day,
        "sens": "FAVORABLE" if favourable else "SANS_OBJET",
        "statut": statut,
        "statutCodeInconnu": statut_inconnu,
        "typologie": item.typologie,
        "dateLimiteRelogement": None,
        "motifs": None,
    }
    complete("fr.gp.Decision", record)
    return record


def attribution_of(item: RadiationItem) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The canonical attribution data of a polled radiation (mapped as the sne-xml normaliser does),
    and the problems that keep it from being read (then the item is dead-lettered, never dropped)."""
    if item.attribution is None:
        return None, []
    ctx = Ctx()
    tree = element_to_tree(item.attribution)
    node = Node(ctx, tree if isinstance(tree, dict) else {}, "demandeRadiee/radiation/attribution")
    mapped = map_attribution(node)
    return (None, ctx.problems) if ctx.problems else (mapped, [])


def radiation_decision(item: RadiationItem, origine: str, now: datetime) -> dict[str, Any]:
    day: date = item.date_radiation or now.date()
    when = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    deradiation = item.motif == ""
    kind = "DERADIATION" if deradiation else "RADIATION"
    record = _empty_decision(
        _event_id("rad", item.num_unique, item.motif, day), item.num_unique, kind, _provenance(origine, when)
    )
    if not deradiation:
        motif, motif_inconnu = _code("MotifRadiation", item.motif)
        sous, sous_inconnu = (
            _code("SousMotifIrrecevabilite", item.sous_motif) if item.sous_motif else (None, None)
        )
        record["radiation"] = {
            "motif": motif,
            "motifCodeInconnu": motif_inconnu,
            "sousMotif": sous,
            "sousMotifCodeInconnu": sous_inconnu,
            "dateRadiation": day,
            "attribution": attribution_of(item)[0],
        }
    complete("fr.gp.Decision", record)
    return record


class SnePoller:
    def __init__(
        self,
        cfg: SneConfig,
        client: SneClient,
        ledger: Ledger,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.cfg = cfg
        self.client = client
        self.ledger = ledger
        self._clock = clock or (lambda: datetime.now(UTC))
        self._codec = load_schemas().codec("Decision")

    def _since(self, service: str) -> datetime:
        stored = self.ledger.watermark(service)
        if stored:
            return datetime.fromisoformat(stored)
        return self.cfg.poll_since or (self._clock() - timedelta(days=30))

    def _output(self, record: dict[str, Any]) -> SinkOutput:
        value = encode_single_object(self._codec, record)
        headers = cloudevent_headers(
            source="gp-gateway/sne-poller",
            type_="fr.gp.Decision",
            subject=record["numUnique"],
            id_=record["eventId"],
            time=record["provenance"]["dateEvenement"],
            dataschema="fr.gp.Decision",
        )
        topic = canonical_topic("decision", self.cfg.topic_prefix)
        return SinkOutput(topic, record["numUnique"].encode(), value, tuple(headers))

    def poll_service(self, service: str) -> tuple[list[SinkOutput], datetime]:
        """Outputs for what changed since the watermark and was not published yet, and the new
        watermark (not yet stored). The date parameter has a tenth-of-second resolution, so polls
        overlap a little; items already published (by eventId) are dropped instead of missed."""
        started = self._clock()
        since = self._since(service)
        exchange = self.client.call(service, now=started, scalar=format_since(since))
        answer = exchange.answer
        origine = self.cfg.poll_origine
        records = [dalo_decision(i, origine, started) for i in answer.dalo if i.num_unique]
        # eventId -> why its attribution data cannot be read, and the block as the SNE sent it
        unread: dict[str, tuple[list[Problem], bytes]] = {}
        for i in answer.radiations:
            if i.num_unique and not self.ledger.sent_accepted(i.num_unique, "RAD"):  # not our own echo
                records.append(radiation_decision(i, origine, started))
                problems = attribution_of(i)[1]
                if problems and i.attribution is not None:
                    unread[records[-1]["eventId"]] = (problems, etree.tostring(i.attribution))
        fresh = self.ledger.unseen([r["eventId"] for r in records])
        outputs = []
        for r in records:
            if r["eventId"] not in fresh:
                continue
            try:
                if r["eventId"] in unread:
                    problems, raw = unread[r["eventId"]]
                    error = RejectedMessage("attribution data not readable", problems)
                    error.extra_headers = ((RAW_ANSWER_HEADER, raw),)  # type: ignore[attr-defined]
                    raise error
                outputs.append(self._output(r))
            except RejectedMessage as exc:  # e.g. a code the canonical enums do not know yet
                outputs.append(self._dead_letter(r, exc))
                log.warning("SNE %s: one item dead-lettered (%d problem(s))", service, len(exc.problems))
        return outputs, started

    def _dead_letter(self, record: dict[str, Any], error: RejectedMessage) -> SinkOutput:
        """An item that is not a valid fr.gp.Decision: to the decision topic's dead letters, as JSON,
        so one bad item neither blocks the poll (and its watermark) nor is lost."""
        topic = canonical_topic("decision", self.cfg.topic_prefix)
        headers = dead_letter_headers(
            error, topic=None, partition=None, offset=None, stage="sne-poll", connector="sne"
        )
        value = json.dumps(to_jsonable(record), ensure_ascii=False).encode()
        extra = tuple(getattr(error, "extra_headers", ()) or ())  # e.g. the unreadable block, as sent
        return SinkOutput(
            dlq_topic(topic),
            str(record["numUnique"]).encode(),
            value,
            (("ce_id", str(record["eventId"]).encode()), *headers, *extra),
        )

    async def poll_once(self, publish: Publish) -> int:
        """One poll of both services; watermarks move only after publish() returned."""
        total = 0
        for service in SERVICES:
            outputs, started = await asyncio.to_thread(self.poll_service, service)
            if outputs:
                await publish(outputs)
                self.ledger.mark_seen([dict(o.headers)["ce_id"].decode() for o in outputs])
            self.ledger.set_watermark(service, started.isoformat())
            total += len(outputs)
            log.info("SNE %s: %d decision(s)", service, len(outputs))
        return total

    async def run(self, publish: Publish, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.poll_once(publish)
            except Exception as exc:  # noqa: BLE001 - a failed poll is retried at the next interval
                log.warning("SNE poll failed: %s", type(exc).__name__)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.cfg.poll_interval)
            except TimeoutError:
                continue
