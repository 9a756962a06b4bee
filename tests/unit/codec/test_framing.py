"""Framing without a registry: single-object frames pass through, and what cannot be decoded is
rejected with a reason (the Confluent paths are tested against a real registry in integration)."""

from __future__ import annotations

import struct

import pytest
from gateway.codec.avro import load_schemas
from gateway.codec.framing import FrameDecoder, Framer, framer_for, subject_name
from gateway.errors import RejectedMessage
from gateway.policy.samples import sample_demande


def test_single_object_framer_leaves_frames_as_encoded() -> None:
    codec = load_schemas().codec("fr.gp.Demande")
    value = codec.encode_framed(sample_demande())
    framer = framer_for(None)
    assert type(framer) is Framer and not framer.confluent
    assert framer.reframe("t", value) is value
    assert framer.reframe_fanout(("a", "b"), value) == (value,)
    assert framer.prefix("t", codec) == value[:10]
    assert codec.fingerprint_hex == value[2:10].hex()  # header and frame agree byte for byte


def test_decoder_reads_single_object_and_refuses_the_rest() -> None:
    codec = load_schemas().codec("fr.gp.Demande")
    decoder = FrameDecoder({codec.fingerprint: codec})
    got, record = decoder.decode(codec.encode_framed(sample_demande()))
    assert got is codec and record["numUnique"] == sample_demande()["numUnique"]
    confluent = b"\x00" + struct.pack(">I", 7) + codec.encode(sample_demande())
    with pytest.raises(RejectedMessage) as no_registry:
        decoder.decode(confluent)
    assert "no schema registry" in str(no_registry.value)
    assert no_registry.value.problems[0].reason == "schema id 7: set GATEWAY_SCHEMA_REGISTRY_URL"
    for junk in (b"", b"{}", b"\x00\x01"):
        with pytest.raises(RejectedMessage):
            decoder.decode(junk)


def test_subjects_follow_the_topic_and_record_name_strategy() -> None:
    assert subject_name("gp.actor.200000001", "fr.gp.view.Demande_1a2b3c4d") == (
        "gp.actor.200000001-fr.gp.view.Demande_1a2b3c4d"
    )
