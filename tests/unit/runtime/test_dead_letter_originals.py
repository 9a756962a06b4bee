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
