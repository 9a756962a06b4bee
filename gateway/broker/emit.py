"""The core side of a source connector: `emit(RawEvent)` publishes to the raw topic of its source for
its format (`<prefix>.raw.<format>.<source>`, the source being the connector's `source` setting,
declared in the actors file with the formats it sends) and returns once the broker acknowledged it
(acks=all, idempotent producer). An event the broker can never take (too large), or of a format its
source does not declare, is a RejectedMessage; other Kafka failures are RetriableError."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from gateway.connectors import RawEvent, Source
from gateway.errors import ConfigError, Problem, RejectedMessage, RetriableError
from gateway.formats import FORMATS
from gateway.settings import GatewaySettings
from gateway.topics import source_raw_topic

__all__ = ["KafkaEmitter", "run_source", "source_id_of"]


class KafkaEmitter:
    """An async context manager whose instances are `Emit` callables."""

    def __init__(self, settings: GatewaySettings, *, source: str, timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.source = source
        self._formats = _declared_formats(settings, source)
        self.timeout_s = timeout_s
        self.count = 0
        self._producer: Any = None

    async def __aenter__(self) -> KafkaEmitter:
        from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]  # noqa: PLC0415 - no hints

        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            client_id=f"{self.settings.app_id}-source",
        )
        try:
            await producer.start()
        except Exception as exc:
            await producer.stop()
            raise RetriableError(
                f"cannot reach Kafka at {self.settings.bootstrap_servers}: {type(exc).__name__}"
            ) from exc
        self._producer = producer
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def __call__(self, event: RawEvent) -> None:
        if event.format not in FORMATS:
            raise ConfigError(f"unknown format {event.format!r}")
        if event.format not in self._formats:  # no raw topic of it: the input could never be read
            raise RejectedMessage(
                f"source {self.source} does not declare format {event.format} in the actors file",
                [Problem("$", f"format {event.format} not declared for source {self.source}")],
            )
        if self._producer is None:
            raise RuntimeError("KafkaEmitter used outside `async with`")
        topic = source_raw_topic(event.format, self.source, self.settings.topic_prefix)
        headers = [*event.headers, ("gp.source.origin", event.origin.encode())]
        try:
            await asyncio.wait_for(
                self._producer.send_and_wait(topic, event.payload, key=event.key, headers=headers),
                self.timeout_s,
            )
        except (TimeoutError, OSError) as exc:
            raise RetriableError(f"emit to {topic} not acknowledged: {type(exc).__name__}") from exc
        except Exception as exc:  # aiokafka errors have no common root with ours
            if type(exc).__name__ == "MessageSizeTooLargeError":  # retrying can never succeed
                raise RejectedMessage(
                    f"emit to {topic} refused: too large for the broker",
                    [Problem("$", "too large for the broker", f"{len(event.payload)} bytes")],
                ) from exc
            if type(exc).__module__.startswith("aiokafka"):
                raise RetriableError(f"emit to {topic} failed: {type(exc).__name__}") from exc
            raise
        self.count += 1


def _declared_formats(settings: GatewaySettings, source: str) -> frozenset[str]:
    from gateway.policy.model import load_policy  # noqa: PLC0415 - policy loading is not a leaf

    policy = load_policy(settings.policy_file, secret=settings.pseudonymisation_secret)
    declared = policy.sources.get(source)
    if declared is None:
        raise ConfigError(
            f"source {source!r} is not declared in the actors file (`sources:`); declared: "
            + (", ".join(sorted(policy.sources)) or "none")
        )
    return frozenset(declared.formats)


def source_id_of(source: Source) -> str:
    """The source id a connector publishes for: its config's `source` setting."""
    sid = getattr(getattr(source, "config", None), "source", None)
    if not isinstance(sid, str) or not sid:
        raise ConfigError(
            f"connector {getattr(source, 'name', '?')} has no `source` setting: a source connector"
            " publishes for one source of the actors file"
        )
    return sid


async def run_source(source: Source, settings: GatewaySettings, *, source_id: str | None = None) -> int:
    """Run `source` until it returns (or is stopped), publishing what it emits for `source_id` (by
    default its config's `source`); returns the count."""
    async with KafkaEmitter(settings, source=source_id or source_id_of(source)) as emit:
        await source.run(emit)
        return emit.count
