"""Disclosures of an application without a numéro unique yet are audited with a findable reference
(issue 10 item 6), and `gateway audit who-received` finds them."""

from __future__ import annotations

from gateway.cli.audit import disclosures_of
from gateway.codec.avro import decode_single_object, load_schemas
from gateway.policy import Router, load_policy
from gateway.policy.samples import sample_demande

ROUTER = Router(load_policy())
REFERENCE = "G3501/RH-DEM-2026-000451"  # key of a Demande not numbered yet: <numGuichet>/<referenceSource>


def unnumbered() -> dict[str, object]:
    record = sample_demande()
    record["numUnique"] = None
    return record


def test_an_unnumbered_application_is_audited_with_its_reference() -> None:
    result = ROUTER.route("fr.gp.Demande", REFERENCE.encode(), unnumbered(), None)
    entries = result.audit_entries()
    assert entries, "the demo application is disclosed to nominative actors"
    assert all(e["numUnique"] is None and e["reference"] == REFERENCE for e in entries)
    codec = load_schemas().codec("fr.gp.AuditEntry")
    decoded = [
        decode_single_object(value, {codec.fingerprint: codec})[1]
        for batch in result.audit
        for _, value in batch.records()
    ]
    assert decoded and {r["reference"] for r in decoded} == {REFERENCE}


def test_a_numbered_application_has_its_numero_as_reference() -> None:
    result = ROUTER.route("fr.gp.Demande", b"035260100000000001", sample_demande(), None)
    assert {e["reference"] for e in result.audit_entries()} == {"035260100000000001"}


def test_who_received_finds_disclosures_by_numero_or_by_reference() -> None:
    entries = [
        {"actor": "a", "numUnique": None, "reference": REFERENCE},
        {"actor": "b", "numUnique": "035260100000000001", "reference": "035260100000000001"},
        {"actor": "c", "numUnique": "035260100000000001"},  # written before the reference existed
    ]
    assert [e["actor"] for e in disclosures_of(entries, REFERENCE)] == ["a"]
    assert [e["actor"] for e in disclosures_of(entries, "035260100000000001")] == ["b", "c"]
    assert disclosures_of(entries, "G3501/other") == []
