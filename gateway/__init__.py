"""gp-gateway: interoperability gateway of the gestion partagée de la demande de logement social."""

from gateway.connectors import CheckResult, ConnectorConfig, RawEvent, Sink, SinkRecord, Source
from gateway.errors import (
    ConfigError,
    FatalError,
    GatewayError,
    Problem,
    RejectedMessage,
    RetriableError,
    SkipMessage,
)
from gateway.model.envelope import Envelope

__all__ = [
    "CheckResult",
    "ConfigError",
    "ConnectorConfig",
    "Envelope",
    "FatalError",
    "GatewayError",
    "Problem",
    "RawEvent",
    "RejectedMessage",
    "RetriableError",
    "Sink",
    "SinkRecord",
    "SkipMessage",
    "Source",
]
__version__ = "0.1.0"
