"""Webhook sink against a real local HTTP receiver: CloudEvent body, Standard Webhooks signature,
statuses (2xx delivered, 5xx retried with a stable webhook-id, 4xx dead-lettered), URL rules."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from connectors.webhook import WebhookConfig, WebhookSink
from gateway.errors import RejectedMessage, RetriableError
from gateway.testing.actor_stream import sink_records
from gateway.testing.http_receiver import Receiver
from gateway.testing.sink_run import write_and_flush
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook

SECRET = "whsec_" + base64.b64encode(b"unit-test-key-0123456789abcdefgh").decode()


def _sink(url: str, **extra: object) -> WebhookSink:
    return WebhookSink(WebhookConfig.model_validate({"url": url, "secret": SECRET, **extra}))


def test_each_record_is_a_signed_structured_cloudevent() -> None:
    records = list(sink_records())[:3]
    with Receiver() as rx:
        write_and_flush(_sink(rx.url), records)
    assert len(rx.requests) == 3
    first = rx.requests[0]
    assert first.headers["content-type"].startswith("application/cloudevents+json")
    assert first.webhook_id == records[0].header("ce_id")
    # the receiver's side of the specification verifies the signature with the shared secret
    Webhook(SECRET).verify(first.body, {k: v for k, v in first.headers.items() if k.startswith("webhook-")})
    event = json.loads(first.body)
    assert event["specversion"] == "1.0"
    assert event["id"] == records[0].header("ce_id")
    assert event["dataschema"] == records[0].schema
    assert event["datacontenttype"] == "application/json"
    assert set(event["data"]) == set(records[0].record)
    json.dumps(event["data"])  # plain JSON: dates and decimals as strings


def test_dates_are_iso_and_decimals_strings() -> None:
    records = [r for r in sink_records() if "Demande" in r.schema][:1]
    with Receiver() as rx:
        write_and_flush(_sink(rx.url), records)
    data = json.loads(rx.requests[0].body)["data"]
    assert data["dateCreationDemande"] == str(records[0].record["dateCreationDemande"])


def test_server_error_is_retriable_then_same_webhook_id_succeeds() -> None:
    record = next(iter(sink_records()))
    with Receiver() as rx:
        rx.script(500, 503)
        sink = _sink(rx.url)
        for _ in range(2):
            with pytest.raises(RetriableError, match="HTTP 50"):
                write_and_flush(sink, [record])
        write_and_flush(sink, [record])
    ids = {r.webhook_id for r in rx.requests}
    assert [r.status for r in rx.requests] == [500, 503, 200]
    assert ids == {record.header("ce_id")}


def test_client_error_is_rejected_with_the_status_and_no_payload() -> None:
    record = next(iter(sink_records()))
    with Receiver() as rx:
        rx.script(400)
        with pytest.raises(RejectedMessage) as info:
            write_and_flush(_sink(rx.url), [record])
    assert "HTTP 400" in str(info.value)
    assert info.value.problems[0].value == "400"
    assert record.key not in str(info.value)


def test_a_batch_retried_record_by_record_does_not_resend_what_was_delivered() -> None:
    records = list(sink_records())[:4]
    with Receiver() as rx:
        rx.refuse(503, when=str(records[2].header("ce_id")))
        sink = _sink(rx.url)
        with pytest.raises(RetriableError):
            write_and_flush(sink, records)
        write_and_flush(sink, [records[0]])  # the runtime's record-by-record retry
    assert rx.delivered_ids().count(str(records[0].header("ce_id"))) == 1


def test_batch_mode_posts_a_cloudevents_batch() -> None:
    records = list(sink_records())[:5]
    with Receiver() as rx:
        write_and_flush(_sink(rx.url, batch=True, batch_max=2, connections=1), records)
    assert len(rx.requests) == 3
    assert rx.requests[0].headers["content-type"].startswith("application/cloudevents-batch+json")
    assert sorted(rx.delivered_ids()) == sorted(str(r.header("ce_id")) for r in records)


def test_unreachable_receiver_is_retriable_and_named_without_payload() -> None:
    with Receiver() as rx:
        url = rx.url
    with pytest.raises(RetriableError, match="unreachable"):
        write_and_flush(_sink(url, timeout_s=1), list(sink_records())[:1])
    assert not _sink(url).check().ok


def test_tls_is_verified(tmp_path: Path) -> None:
    from connectors.sne.simulator.certs import ensure_certs  # noqa: PLC0415 - the project's dev CA

    certs = ensure_certs(tmp_path / "certs")
    records = list(sink_records())[:2]
    with Receiver(tls=(certs.server, certs.server_key)) as rx:
        assert rx.url.startswith("https://")
        with pytest.raises(RetriableError, match="TLS failure"):  # not signed by a CA the system trusts
            write_and_flush(_sink(rx.url), records)
        assert not _sink(rx.url).check().ok
        write_and_flush(_sink(rx.url, ca_file=str(certs.ca)), records)  # the receiver's CA given: delivered
    assert sorted(rx.delivered_ids()) == sorted(str(r.header("ce_id")) for r in records)


def test_plain_http_only_to_loopback() -> None:
    with pytest.raises(ValidationError, match="loopback"):
        WebhookConfig.model_validate({"url": "http://hooks.example.org/x", "secret": SECRET})
    WebhookConfig.model_validate({"url": "http://hooks.example.org/x", "secret": SECRET, "allow_http": True})
    WebhookConfig.model_validate({"url": "http://[::1]:8080/x", "secret": SECRET})


def test_lanes_keep_each_keys_order() -> None:
    records = list(sink_records())
    with Receiver() as rx:
        write_and_flush(_sink(rx.url, connections=4), records)
    delivered = rx.delivered_ids()
    assert sorted(delivered) == sorted(str(r.header("ce_id")) for r in records)
    for key in {r.key for r in records}:
        expected = [r.header("ce_id") for r in records if r.key == key]
        assert [i for i in delivered if i in expected] == expected


def test_secret_is_never_shown() -> None:
    config = WebhookConfig.model_validate({"url": "https://h.example.org", "secret": SECRET})
    assert SECRET not in repr(config)
    assert SECRET not in str(config.model_dump())


@pytest.mark.parametrize("signed_ago_s", [0, 120], ids=["fresh", "stale"])
def test_events_rendered_ahead_are_posted_as_rendered_and_signed_afresh_when_stale(
    signed_ago_s: int,
) -> None:
    """The runtime's reading processes give `write` each record's event and its signed POST (record
    empty); a POST signed long ago (a retry after a backoff) is signed again when sent."""
    import time  # noqa: PLC0415
    from dataclasses import replace  # noqa: PLC0415
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from connectors.webhook.connector import CE_JSON, signed_request  # noqa: PLC0415

    records = list(sink_records())[:4]
    with Receiver() as rx:
        sink = _sink(rx.url)
        render = sink.renderer()
        ahead = []
        signed_at = datetime.now(UTC) - timedelta(seconds=signed_ago_s)
        for r in records:
            body, _, _ = render(r)
            req = signed_request(
                sink._signer, sink._path, sink._host_header, body, r.event_id(), CE_JSON, signed_at
            )
            ahead.append(replace(r, record={}, rendered=(body, req, signed_at.timestamp())))
        write_and_flush(sink, ahead)
        plain = _sink(rx.url)
        write_and_flush(plain, records)
    got, expected = rx.requests[:4], rx.requests[4:]  # (each in its lane's order)
    assert {g.webhook_id: g.body for g in got} == {e.webhook_id: e.body for e in expected}
    for g in got:
        Webhook(SECRET).verify(g.body, {k: v for k, v in g.headers.items() if k.startswith("webhook-")})
        signed = int(g.headers["webhook-timestamp"])
        assert abs(signed - time.time()) < 30  # signed when rendered moments ago, or again when sent
