"""Dead letters of partial envelopes (Sink.headers_in_write = False) made whole: the original value
and headers put back before the error headers, or, for a record no longer in its topic, an empty
value and `gp.errors.original: gone` (gateway.flows.originals.restore)."""

from __future__ import annotations

from gateway.connectors import SinkOutput
from gateway.flows.originals import GONE_HEADER, restore
from gateway.model.envelope import Envelope


def test_originals_go_back_before_the_error_headers_and_a_gone_record_says_so() -> None:
    error = (("__connect.errors.topic", b"t"),)
    dead = [
        SinkOutput("t.dlq", b"k0", b"whole", (("ce_id", b"0"), *error)),  # a whole envelope's: kept
        SinkOutput("t.dlq", b"k1", b"", error),
        SinkOutput("t.dlq", b"k2", b"", error),
    ]
    partial = [
        (1, Envelope(b"", b"k1", (), "t", 2, 41, partial=True)),
        (2, Envelope(b"", b"k2", (), "t", 0, 7, partial=True)),
    ]
    found = {("t", 2, 41): (b"original", (("ce_id", b"1"), ("ce_type", b"x"))), ("t", 0, 7): None}
    restore(dead, partial, found)
    assert dead[0] == SinkOutput("t.dlq", b"k0", b"whole", (("ce_id", b"0"), *error))
    assert dead[1] == SinkOutput("t.dlq", b"k1", b"original", (("ce_id", b"1"), ("ce_type", b"x"), *error))
    assert dead[2] == SinkOutput("t.dlq", b"k2", b"", (GONE_HEADER, *error))


def test_a_record_not_read_again_is_sent_without_it_and_says_so() -> None:
    """Reading again fails (here the consumer is refused at once: a setting kafka-python does not
    know; a broker away fails the same way once the commit timeout passed): the letters are not
    held back (their sink stored its offsets), each says its original is unavailable."""
    import asyncio  # noqa: PLC0415

    from gateway.flows.deliver import EgressResult  # noqa: PLC0415
    from gateway.flows.originals import UNAVAILABLE_HEADER, restore_dead_letters  # noqa: PLC0415

    error = (("__connect.errors.topic", b"t"),)
    result = EgressResult(dead=[SinkOutput("t.dlq", b"k", b"", error)])
    result.partial = [(0, Envelope(b"", b"k", (), "t", 0, 3, partial=True))]
    client = {"bootstrap_servers": "127.0.0.1:9", "no_such_setting": 1}
    asyncio.run(restore_dead_letters(client, result, 1.0))
    assert result.dead == [SinkOutput("t.dlq", b"k", b"", (UNAVAILABLE_HEADER, *error))]
    assert result.partial == []
