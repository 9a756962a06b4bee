"""gp-gateway: interoperability gateway of the gestion partagée de la demande de logement social."""

from gateway.connectors import (
    CheckResult,
    ConnectorConfig,
    Erasure,
    RawEvent,
    Sink,
    SinkContext,
    SinkOutput,
    SinkRecord,
    Source,
)
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
    "Erasure",
    "FatalError",
    "GatewayError",
    "Problem",
    "RawEvent",
    "RejectedMessage",
    "RetriableError",
    "Sink",
    "SinkContext",
    "SinkOutput",
    "SinkRecord",
    "SkipMessage",
    "Source",
]
__version__ = "0.1.0"
