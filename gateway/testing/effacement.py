"""`fr.gp.Effacement` records as an actor topic carries them, for sink and recipient tests.

The route flow sends one to each recipient of an erased application (gateway/retention/protocol.py):
keyed by the numéro unique, the Effacement (schemas/avro/fr.gp.Effacement.avsc) framed like the other
records of the topic (single-object encoding here; `ConfluentFramer.reframe` turns it into the
Confluent wire format under the subject `<topic>-fr.gp.Effacement`), with CloudEvents headers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from gateway.codec.avro import encode_single_object, load_schemas
from gateway.connectors import ERASURE_SCHEMA, SinkRecord
from gateway.retention.protocol import CLOCK, ERASURE_HEADER
from gateway.testing.actor_stream import ActorRecord

__all__ = ["effacement", "effacement_record", "erasure_sink_record"]

RADIATED = date(2025, 3, 14)


def effacement_record(num_unique: str, *, radiated: date = RADIATED) -> dict[str, object]:
    """The decoded Effacement of `num_unique` (as a sink receives it)."""
    return {
        "numUnique": num_unique,
        "dateRadiation": radiated,
        "dateEffacement": radiated + timedelta(days=365),
        "time": datetime(radiated.year + 1, radiated.month, radiated.day, 2, 0, tzinfo=UTC),
        "par": f"gp-gateway.retention/{CLOCK}",
        "stores": [],
    }


def effacement(num_unique: str, *, key: str | None = None, radiated: date = RADIATED) -> ActorRecord:
    """The record the route flow writes to an actor topic when `num_unique` is erased."""
    codec = load_schemas().codec(ERASURE_SCHEMA)
    value = effacement_record(num_unique, radiated=radiated)
    headers = (
        ("ce_specversion", b"1.0"),
        ("ce_id", f"effacement/{num_unique}/{radiated.isoformat()}".encode()),
        ("ce_source", b"gp-gateway/retention"),
        ("ce_type", ERASURE_SCHEMA.encode()),
        ("ce_subject", num_unique.encode()),
        ("ce_time", str(value["time"]).replace(" ", "T").encode()),
        ("content-type", b"application/avro"),
        (ERASURE_HEADER, CLOCK.encode()),
    )
    return ActorRecord((key or num_unique).encode(), encode_single_object(codec, value), headers, codec.name)


def erasure_sink_record(
    num_unique: str, *, topic: str, offset: int, partition: int = 0, key: str | None = None
) -> SinkRecord:
    """The Effacement of `num_unique` as the sink runtime gives it (decoded, with coordinates)."""
    codec = load_schemas().codec(ERASURE_SCHEMA)
    rec = effacement(num_unique, key=key)
    return SinkRecord(
        schema=codec.name,
        key=(rec.key or b"").decode(),
        record=codec.decode(rec.value[10:]),
        headers=rec.headers,
        topic=topic,
        partition=partition,
        offset=offset,
        writer_schema=codec.parsed,
    )
