"""Texts written by the SNE (SOAP fault reasons, anomaly labels) may quote the values they refuse:
they never reach a problem list, an error message or a dead-letter header."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from connectors.sne.answers import Answer, SneFaultError
from connectors.sne.canonical_json import record_from_json
from connectors.sne.connector import SneSink
from connectors.sne.testing import decision_radiation, sink_config
from gateway.connectors import SinkRecord
from gateway.errors import RejectedMessage
from gateway.model.deadletter import dead_letter_headers

PERSONAL = "DUPONT Jeanne 06 12 34 56 78"


def _all_text(exc: RejectedMessage) -> str:
    headers = dead_letter_headers(exc, topic="t", partition=0, offset=1, stage="sink:sne")
    return str(exc) + json.dumps([p.as_dict() for p in exc.problems]) + repr(headers)


def test_a_soap_fault_reason_is_not_in_the_problems_or_the_message() -> None:
    exc = SneFaultError("Sender", f"cvc-pattern-valid: value '{PERSONAL}' is not facet-valid", b"<raw/>")
    assert PERSONAL not in _all_text(exc)
    assert [(p.path, p.value) for p in exc.problems] == [("soap:Fault", "Sender")]
    assert exc.reason.endswith("is not facet-valid")  # kept on the exception for the raw-answer evidence


def test_a_soap_fault_code_that_is_not_a_soap_code_is_not_shown() -> None:
    exc = SneFaultError(PERSONAL, "x", b"<raw/>")
    assert PERSONAL not in _all_text(exc)


def test_sne_anomaly_labels_are_replaced_by_the_gateway_texts(simulator: Any, tmp_path: Path) -> None:
    cfg = sink_config(simulator.certs, simulator.port, tmp_path)
    sink = SneSink(cfg, state_dir=tmp_path, clock=lambda: datetime(2026, 11, 26, 12, tzinfo=UTC))
    answer = Answer("demandeLogement", anomalies=(("CTRL_DEM_0020", f"numéro inconnu pour {PERSONAL}"),))

    async def fake_call(service: str, xml: bytes | None = None, scalar: str | None = None) -> Any:
        return SimpleNamespace(answer=answer)

    sink._call = fake_call  # type: ignore[method-assign]  # no SNE call in this test
    rec = SinkRecord(
        "fr.gp.Decision", "k", decision_radiation("035260100000009999"),
        topic="gp.canonical.decision", partition=0, offset=1,
    )  # fmt: skip
    try:
        with pytest.raises(RejectedMessage) as info:
            asyncio.run(sink.write([rec]))
    finally:
        sink.close()
    assert PERSONAL not in _all_text(info.value)
    assert [p.value for p in info.value.problems] == ["CTRL_DEM_0020"]
    assert "Le numéro unique est inconnu." in info.value.problems[0].reason


def test_an_unknown_enum_value_is_described_by_its_type_only() -> None:
    with pytest.raises(RejectedMessage) as info:
        record_from_json({"numUnique": "035260100000000001", "statut": PERSONAL})
    assert PERSONAL not in _all_text(info.value)
    assert any(p.reason == "unknown code" and p.value == "str" for p in info.value.problems)
