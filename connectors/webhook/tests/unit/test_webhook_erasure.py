"""Webhook sink erasure against a real local HTTP receiver: a signed `fr.gp.effacement` CloudEvent,
retried as records are, with a stable webhook-id (the record's ce_id, else its coordinates)."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import replace

import pytest
from connectors.webhook import WebhookConfig, WebhookSink
from connectors.webhook.connector import ERASURE_TYPE
from gateway.connectors import Erasure
from gateway.errors import RetriableError
from gateway.testing.effacement import erasure_sink_record
from gateway.testing.http_receiver import Receiver
from standardwebhooks.webhooks import Webhook

SECRET = "whsec_" + base64.b64encode(b"unit-test-key-0123456789abcdefgh").decode()
NUM = "044260100000000004"


def _erase(url: str, erasures: list[Erasure], **extra: object) -> None:
    sink = WebhookSink(WebhookConfig.model_validate({"url": url, "secret": SECRET, **extra}))

    async def go() -> None:
        try:
            await sink.erase(erasures)
        finally:
            await sink.flush()

    asyncio.run(go())


def test_an_erasure_is_a_signed_cloudevent_the_receiver_can_act_on() -> None:
    record = erasure_sink_record(NUM, topic="gp.actor.x", offset=7)
    with Receiver() as rx:
        _erase(rx.url, [Erasure.of(record)])
    (request,) = rx.requests
    Webhook(SECRET).verify(
        request.body, {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    )
    assert request.webhook_id == record.header("ce_id")
    event = json.loads(request.body)
    assert event["type"] == ERASURE_TYPE == "fr.gp.effacement"
    assert event["subject"] == NUM
    assert event["dataschema"] == "fr.gp.Effacement"
    assert event["data"] == {
        "numUnique": NUM,
        "dateRadiation": "2025-03-14",
        "dateEffacement": "2026-03-14",
        "time": "2026-03-14T02:00:00+00:00",
        "par": "gp-gateway.retention/horloge",
        "stores": [],
    }


def test_without_a_ce_id_the_webhook_id_comes_from_the_coordinates_and_is_stable() -> None:
    record = erasure_sink_record(NUM, topic="gp.actor.x", offset=7, partition=2)
    bare = replace(record, headers=tuple((k, v) for k, v in record.headers if k != "ce_id"))
    with Receiver() as rx:
        rx.script(503)
        with pytest.raises(RetriableError, match="HTTP 503"):
            _erase(rx.url, [Erasure.of(bare)])
        _erase(rx.url, [Erasure.of(bare)])  # the runtime's retry
    assert [r.webhook_id for r in rx.requests] == ["gp.actor.x/2/7", "gp.actor.x/2/7"]
    assert [r.status for r in rx.requests] == [503, 200]


def test_batch_mode_sends_erasures_as_events_of_the_batch() -> None:
    erasures = [
        Erasure.of(erasure_sink_record(f"0442601000000000{i:02d}", topic="t", offset=i)) for i in range(3)
    ]
    with Receiver() as rx:
        _erase(rx.url, erasures, batch=True)
    events = [e for r in rx.requests for e in r.events()]
    assert sorted(e["subject"] for e in events) == sorted(e.key for e in erasures)
    assert {e["type"] for e in events} == {"fr.gp.effacement"}
