"""The envelope that carries one message between topics, with its provenance and headers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["CE_SPECVERSION", "Envelope", "cloudevent_headers"]

CE_SPECVERSION = "1.0"


@dataclass(frozen=True, slots=True)
class Envelope:
    """Raw bytes plus where they came from. Flows move envelopes; the core never sees Kafka objects."""

    payload: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    timestamp_ms: int | None = None
    content_type: str | None = None
    # the payload and headers were left in the process that read the record (a sink's reading
    # process, gateway.flows.readers): a dead letter of it reads them again from its topic
    partial: bool = False

    def header(self, name: str) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


def cloudevent_headers(
    *,
    source: str,
    type_: str,
    subject: str,
    time: datetime | None = None,
    id_: str | None = None,
    content_type: str = "application/avro",
    dataschema: str | None = None,
) -> list[tuple[str, bytes]]:
    """CloudEvents 1.0 Kafka protocol binding, binary mode: ce_* headers, data in the value."""
    when = (time or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")
    headers = [
        ("ce_specversion", CE_SPECVERSION.encode()),
        ("ce_id", (id_ or str(uuid.uuid4())).encode()),
        ("ce_source", source.encode()),
        ("ce_type", type_.encode()),
        ("ce_subject", subject.encode()),
        ("ce_time", when.encode()),
        ("content-type", content_type.encode()),
    ]
    if dataschema:
        headers.append(("ce_dataschema", dataschema.encode()))
    return headers
