"""publish() under exactly-once with batch agents: each output is keyed by the input named by
publishing_for (not by faust's current event), so it commits with that input's offset."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from gateway.flows.app import publish, publishing_for


class _Outbox:
    def __init__(self) -> None:
        self.put_calls: list[tuple[Any, int, str]] = []

    def install(self) -> None:
        pass

    def put(self, tp: Any, offset: int, record: tuple[Any, ...]) -> None:
        self.put_calls.append((tp, offset, record[0]))


def _app(in_transaction: bool) -> Any:
    sent: list[str] = []
    made: list[str] = []

    def topic(name: str) -> Any:
        made.append(name)
        return SimpleNamespace(name=name)

    async def send(channel: Any, **kwargs: Any) -> None:
        sent.append(channel.name)

    return SimpleNamespace(
        in_transaction=in_transaction, gp_outbox=_Outbox(), send=send, topic=topic, sent=sent, made=made
    )


def _event(partition: int, offset: int) -> Any:
    tp = ("raw", partition)
    return SimpleNamespace(message=SimpleNamespace(tp=tp, offset=offset))


def test_exactly_once_outputs_are_keyed_by_the_named_input() -> None:
    app = _app(in_transaction=True)

    async def batch() -> None:
        for event in (_event(0, 5), _event(1, 7), _event(0, 6)):
            with publishing_for(event):
                await publish(app, f"out-{event.message.offset}", b"k", b"v")
                await publish(app, f"dlq-{event.message.offset}", b"k", b"v")

    asyncio.run(batch())
    assert app.gp_outbox.put_calls == [
        (("raw", 0), 5, "out-5"),
        (("raw", 0), 5, "dlq-5"),
        (("raw", 1), 7, "out-7"),
        (("raw", 1), 7, "dlq-7"),
        (("raw", 0), 6, "out-6"),
        (("raw", 0), 6, "dlq-6"),
    ]
    assert app.sent == []


def test_the_named_input_is_forgotten_after_its_block() -> None:
    app = _app(in_transaction=True)

    async def run() -> None:
        with publishing_for(_event(0, 1)):
            pass
        # no named input and no faust current event: a plain send (outside an agent)
        await publish(app, "after", b"k", b"v")

    asyncio.run(run())
    assert app.gp_outbox.put_calls == []
    assert app.sent == ["after"]


def test_at_least_once_sends_straight_away() -> None:
    app = _app(in_transaction=False)

    async def run() -> None:
        with publishing_for(_event(2, 3)):
            await publish(app, "out", b"k", b"v")

    asyncio.run(run())
    assert app.sent == ["out"]
    assert app.gp_outbox.put_calls == []


def test_plain_sends_reuse_one_topic_object_per_name() -> None:
    app = _app(in_transaction=False)

    async def run() -> None:
        for name in ("a", "b", "a", "a", "b"):
            await publish(app, name, b"k", b"v")

    asyncio.run(run())
    assert app.sent == ["a", "b", "a", "a", "b"]
    assert app.made == ["a", "b"]
