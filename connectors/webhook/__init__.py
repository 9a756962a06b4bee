"""Webhook sink: each record of an actor's stream POSTed as a signed CloudEvent (Standard Webhooks)."""

from __future__ import annotations

from connectors.webhook.config import WebhookConfig
from connectors.webhook.connector import WebhookSink

__all__ = ["WebhookConfig", "WebhookSink"]
