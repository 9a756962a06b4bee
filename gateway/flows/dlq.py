"""Dead letters: a rejected input goes to `<source topic>.dlq` with its ORIGINAL bytes and
Connect-style error headers; `replay` re-injects a dead letter into its original topic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from gateway.errors import Problem, RejectedMessage
from gateway.model.deadletter import ERR, dead_letter_headers
from gateway.topics import DLQ_SUFFIX, dlq_topic

__all__ = ["DeadLetter", "DeadLetters", "Publish", "original_topic", "replay_headers"]

Headers = tuple[tuple[str, bytes], ...]
# publish(topic, key, value, headers) -> awaitable done when the record is handed to the producer
Publish = Callable[[str, bytes | None, bytes | None, Headers], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What goes to a dead-letter topic (value = the original bytes, untouched)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers


class DeadLetters:
    """The dead-letter helper every flow gets in its FlowContext."""

    def __init__(self, publish: Publish | None = None, *, connector: str = "gp-gateway") -> None:
        self._publish = publish
        self.connector = connector

    def bind(self, publish: Publish) -> None:
        self._publish = publish

    def build(
        self,
        *,
        source_topic: str,
        partition: int | None,
        offset: int | None,
        key: bytes | None,
        original: bytes,
        problems: Sequence[Problem],
        message: str,
        stage: str,
        locator: str = "$",
        extra_headers: Headers = (),
    ) -> DeadLetter:
        error = RejectedMessage(message, list(problems))
        headers = dead_letter_headers(
            error,
            topic=source_topic,
            partition=partition,
            offset=offset,
            stage=stage,
            connector=self.connector,
        )
        headers.append(("gp.errors.locator", locator.encode()))
        return DeadLetter(dlq_topic(source_topic), key, original, (*extra_headers, *headers))

    async def send(self, letter: DeadLetter) -> None:
        if self._publish is None:
            raise RuntimeError("DeadLetters.send before bind(): the flow has no producer yet")
        await self._publish(letter.topic, letter.key, letter.value, letter.headers)


def original_topic(dlq: str, headers: Sequence[tuple[str, bytes]]) -> str:
    """The topic a dead letter is replayed to: the dead-letter topic's name minus `.dlq`.

    The `__connect.errors.topic` header is only a fallback for a topic not named `<topic>.dlq`: a
    header (which anyone able to write to the DLQ can set) must not redirect a replay elsewhere.
    """
    if dlq.endswith(DLQ_SUFFIX):
        return dlq[: -len(DLQ_SUFFIX)]
    for k, v in headers:
        if k == ERR + "topic" and v:
            try:
                return v.decode()
            except UnicodeDecodeError:
                break  # a damaged header: replay to the topic itself
    return dlq


def replay_headers(headers: Sequence[tuple[str, bytes]], dlq: str, offset: int) -> Headers:
    """Headers for a replayed record: the error headers dropped, the provenance of the replay added."""
    kept = tuple((k, v) for k, v in headers if not k.startswith(ERR) and not k.startswith("gp.errors."))
    return (*kept, ("gp.replayed.from", f"{dlq}@{offset}".encode()))
