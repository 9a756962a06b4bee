"""The connector contract suite, applied to the webhook sink, against a real local HTTP receiver."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from connectors.webhook import WebhookSink
from gateway.registry import load
from gateway.testing.contract import sink_contract
from gateway.testing.http_receiver import Receiver

SECRET = "whsec_" + base64.b64encode(b"contract-test-key-0123456789abcdef").decode()
_RECEIVERS: dict[str, Receiver] = {}


def _receiver(tmp_path: Path) -> Receiver:
    rx = _RECEIVERS.get(str(tmp_path))
    if rx is None:
        rx = _RECEIVERS[str(tmp_path)] = Receiver().start()
    return rx


def _delivery_config(tmp_path: Path) -> dict[str, Any]:
    return {"url": _receiver(tmp_path).url, "secret": SECRET, "timeout_s": 5}


def _delivered(config: Any) -> list[str]:
    rx = next(r for r in _RECEIVERS.values() if r.url == config.url)
    return rx.delivered_ids()


TestWebhookContract = sink_contract(
    WebhookSink,
    valid_config={"url": "https://hooks.example.org/gp", "secret": SECRET},
    invalid_config={"url": "ftp://x", "secret": "not-whsec", "timeout_s": 0},
    delivery_config=_delivery_config,
    delivered=_delivered,
    erasure_read_back="log",  # the receiver's log: the erasure is an event delivered after the others
)


def test_registered_under_its_entry_point() -> None:
    assert load("webhook") is WebhookSink
