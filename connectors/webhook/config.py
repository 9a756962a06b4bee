"""Configuration of the webhook sink (`gateway connectors describe webhook`)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from gateway.connectors import ConnectorConfig
from pydantic import Field, SecretStr, field_validator, model_validator

__all__ = ["WebhookConfig", "is_loopback"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebhookConfig(ConnectorConfig):
    url: str = Field(
        description="Receiver URL: https:// (http:// only to a loopback address or with allow_http)."
    )
    secret: SecretStr = Field(
        description="Standard Webhooks signing secret: `whsec_` + base64 key (shared with the receiver)."
    )
    batch: bool = Field(
        False, description="POST up to batch_max events per request (cloudevents-batch+json)."
    )
    batch_max: int = Field(100, ge=1, le=10_000, description="Events per request in batch mode.")
    connections: int = Field(
        4,
        ge=1,
        le=32,
        description="Kept-alive connections side by side (one key: one, in order).",
    )
    pipeline: int = Field(
        16,
        ge=1,
        le=256,
        description="Requests written ahead on a connection before their answers are read (HTTP/1.1"
        " pipelining; never two events of one key at once); 1: one request at a time.",
    )
    timeout_s: float = Field(
        10.0, gt=0, le=300, description="Connect and read timeout of one request, seconds."
    )
    allow_http: bool = Field(False, description="Allow http:// to a non-loopback host (unencrypted: avoid).")
    ca_file: Path | None = Field(
        None, description="CA bundle to verify the receiver with (default: system CAs)."
    )
    source: str = Field(
        "gp-gateway", min_length=1, description="CloudEvents `source` when the record has none."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http:// or https:// URL with a host is expected")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not raw.startswith("whsec_"):
            raise ValueError("a Standard Webhooks secret starts with whsec_")
        try:
            key = base64.b64decode(raw.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("whsec_ must be followed by base64") from None
        if len(key) < 24:
            raise ValueError("the key must be at least 24 bytes (192 bits)")
        return value

    @model_validator(mode="after")
    def _plain_http(self) -> WebhookConfig:
        parts = urlsplit(self.url)
        if parts.scheme == "http" and not self.allow_http and not is_loopback(parts.hostname or ""):
            raise ValueError(
                "url: http:// is only allowed to a loopback address (set allow_http to force it)"
            )
        return self
