"""Connector SPI: what a source or a sink plugin implements.

A connector is a class with a `name`, a pydantic `Config` model and two or three methods. Everything
else (batching, retries, dead letters, metrics) is the core's job. Plugins are found through the
`gateway.connectors` entry-point group (see gateway.registry), built-in ones included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

__all__ = [
    "CheckResult",
    "ConnectorConfig",
    "Emit",
    "RawEvent",
    "Sink",
    "SinkOutput",
    "SinkRecord",
    "Source",
]


class ConnectorConfig(BaseModel):
    """Base of connector configs: validated at construction, frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RawEvent:
    """What a source emits: raw bytes in a declared format, keyed if the source knows the key."""

    format: str  # sne-xml, cdc-json, siao-json, cal-csv, comed-json
    payload: bytes
    key: bytes | None = None
    origin: str = ""  # where it came from (file name, table), never personal data
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """What a sink receives: one canonical record (decoded) with its key, headers and coordinates."""

    schema: str
    key: str
    record: dict[str, object]
    headers: tuple[tuple[str, bytes], ...] = ()
    topic: str = ""
    partition: int = -1
    offset: int = -1
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SinkOutput:
    """A record a sink asks the core to publish (e.g. SNE feedback), in the same commit as its input."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


Emit = Callable[[RawEvent], Awaitable[None]]
Guarantee = Literal["at-least-once", "exactly-once"]


@runtime_checkable
class Source(Protocol):
    """Reads an external system and emits raw events. Delivery: stated by each implementation."""

    name: ClassVar[str]
    Config: ClassVar[type[ConnectorConfig]]
    guarantee: ClassVar[Guarantee]

    def check(self) -> CheckResult:
        """Validate reachability / permissions without moving data."""
        ...

    async def run(self, emit: Emit) -> None:
        """Emit raw events until stop() is called. `emit` returns once the event is durably accepted."""
        ...

    async def stop(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Receives canonical records. `write` may raise RetriableError or RejectedMessage per record."""

    name: ClassVar[str]
    Config: ClassVar[type[ConnectorConfig]]
    guarantee: ClassVar[Guarantee]

    def check(self) -> CheckResult: ...

    async def write(self, batch: Sequence[SinkRecord]) -> Sequence[SinkOutput]:
        """Deliver the batch; return records to publish (feedback). Offsets advance only after it returns."""
        ...

    async def flush(self) -> None: ...
