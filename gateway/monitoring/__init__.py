"""Health and metrics: a Prometheus registry updated by flows, served on faust's web server."""

from __future__ import annotations

from gateway.monitoring.metrics import CONTENT_TYPE, Metrics

__all__ = ["CONTENT_TYPE", "Metrics"]
