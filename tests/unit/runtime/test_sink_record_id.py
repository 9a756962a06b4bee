"""SinkRecord.event_id: the one id every sink gives a record (webhook-id, the file's id, gp_event_id)."""

from __future__ import annotations

from gateway.connectors import SinkRecord


def _record(headers: tuple[tuple[str, bytes], ...]) -> SinkRecord:
    return SinkRecord("fr.gp.Demande", "k", {}, headers, topic="gp.actor.1", partition=2, offset=41)


def test_the_id_is_the_records_cloudevents_id_its_last_value() -> None:
    assert _record((("ce_id", b"first"), ("other", b"x"), ("ce_id", b"last"))).event_id() == "last"


def test_a_record_without_a_cloudevents_id_is_known_by_its_coordinates() -> None:
    assert _record((("ce_type", b"t"),)).event_id() == "gp.actor.1/2/41"
    assert _record((("ce_id", b""),)).event_id() == "gp.actor.1/2/41"


def test_every_sink_gives_a_record_the_same_id() -> None:
    import orjson  # noqa: PLC0415
    from connectors.file.connector import render_csv, render_jsonl  # noqa: PLC0415
    from connectors.postgres.connector import render_row  # noqa: PLC0415
    from connectors.postgres.rows import SYSTEM  # noqa: PLC0415
    from connectors.webhook.connector import cloud_event  # noqa: PLC0415

    for rec in (_record((("ce_id", b"e-1"),)), _record(())):
        want = rec.event_id()
        assert orjson.loads(render_jsonl(rec))["id"] == want
        assert render_csv(rec)[1].decode().split(",")[0] == want
        assert orjson.loads(cloud_event(rec, "src"))["id"] == want
        row = render_row(rec)
        assert row is not None
        assert orjson.loads(row)[list(SYSTEM).index("gp_event_id")] == want
