"""The poller turns SNE items into decisions; an item that is no valid fr.gp.Decision (a code the
canonical enums do not know) is dead-lettered instead of failing the whole poll forever."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from connectors.sne.answers import Answer, RadiationItem
from connectors.sne.ledger import Ledger
from connectors.sne.poller import SnePoller
from connectors.sne.testing import sink_config
from gateway.model.deadletter import problems_from_headers

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class _Client:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer

    def call(self, service: str, *, now: datetime, scalar: str | None = None) -> Any:
        return SimpleNamespace(answer=self.answer)


def test_an_item_with_an_unknown_code_is_dead_lettered_and_the_others_published(
    simulator: Any, tmp_path: Path
) -> None:
    good = RadiationItem("035260100000000001", "RADATT", None, date(2026, 11, 20))
    bad = RadiationItem("035260100000000002", "ZZ-NEW", None, date(2026, 11, 21))
    cfg = sink_config(simulator.certs, simulator.port, tmp_path)
    ledger = Ledger(tmp_path / "poll.sqlite")
    try:
        client = _Client(Answer("demandesRadieesDepuisLe", radiations=(good, bad)))
        poller = SnePoller(cfg, client, ledger, clock=lambda: NOW)  # type: ignore[arg-type]  # fake client
        outputs, started = poller.poll_service("demandesRadieesDepuisLe")
        assert started == NOW
        by_topic = {o.topic: o for o in outputs}
        assert set(by_topic) == {"gp.canonical.decision", "gp.canonical.decision.dlq"}
        dead = by_topic["gp.canonical.decision.dlq"]
        assert dead.key == b"035260100000000002"
        assert json.loads(dead.value or b"")["radiation"]["motif"] == "ZZ-NEW"
        problems = problems_from_headers(list(dead.headers))
        assert "fr.gp.RadiationEvenement.motif" in {p.path for p in problems}
        assert all(p.value in (None, "str", "dict") for p in problems)  # type names, never the values
        assert dict(dead.headers)["ce_id"]  # marked seen like the others: not dead-lettered twice
    finally:
        ledger.close()


def test_codes_the_sne_added_later_are_carried_not_dead_lettered(simulator: Any, tmp_path: Path) -> None:
    from connectors.sne.answers import DaloItem  # noqa: PLC0415
    from gateway.codec.avro import decode_single_object, load_schemas  # noqa: PLC0415

    rad = RadiationItem("035260100000000001", "RADNEW", None, date(2026, 11, 20))
    cfg = sink_config(simulator.certs, simulator.port, tmp_path)
    ledger = Ledger(tmp_path / "poll.sqlite")
    try:
        client = _Client(Answer("demandesRadieesDepuisLe", radiations=(rad,)))
        poller = SnePoller(cfg, client, ledger, clock=lambda: NOW)  # type: ignore[arg-type]  # fake client
        [out] = poller.poll_service("demandesRadieesDepuisLe")[0]
        dalo = DaloItem("035260100000000002", "NOUVST", date(2026, 11, 2), None, "035")
        poller.client = _Client(Answer("nouveauxDaloDepuisLe", dalo=(dalo,)))  # type: ignore[assignment]
        [out2] = poller.poll_service("nouveauxDaloDepuisLe")[0]
    finally:
        ledger.close()
    codecs = load_schemas().by_fingerprint()
    assert out.topic == out2.topic == "gp.canonical.decision"
    radiation = decode_single_object(out.value or b"", codecs)[1]["radiation"]
    assert (radiation["motif"], radiation["motifCodeInconnu"]) == ("INCONNU", "RADNEW")
    decision = decode_single_object(out2.value or b"", codecs)[1]["decisionDalo"]
    assert (decision["statut"], decision["statutCodeInconnu"]) == ("INCONNU", "NOUVST")
