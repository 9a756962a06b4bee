from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from gateway.codec.avro import (
    SINGLE_OBJECT_MAGIC,
    decode_single_object,
    from_sne_code,
    load_schemas,
    sne_code,
    to_jsonable,
)
from gateway.errors import RejectedMessage


def _minimal_demande() -> dict[str, object]:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return {
        "numUnique": None,
        "numGuichet": "G1226",
        "dateCreationDemande": date(2026, 1, 2),
        "logementRecherche": {"demandeElargie": False, "typesLogement": ["T2"], "communes": ["75056"]},
        "provenance": {
            "origine": "123456789",
            "saisie": "123456789",
            "dateEvenement": now,
            "dateSaisie": now,
            "systemeSource": "sne-xml",
        },
    }


def test_every_schema_file_loads_and_records_have_distinct_fingerprints() -> None:
    schemas = load_schemas()
    assert "fr.gp.Demande" in schemas.names()
    assert "fr.gp.Decision" in schemas.names()
    fps = [c.fingerprint for c in schemas.codecs()]
    assert len(fps) == len(set(fps))


def test_single_object_round_trip() -> None:
    codec = load_schemas().codec("Demande")
    rec = _minimal_demande()
    frame = codec.encode_framed(rec)
    assert frame.startswith(SINGLE_OBJECT_MAGIC)
    used, back = decode_single_object(frame, load_schemas().by_fingerprint())
    assert used.name == "fr.gp.Demande"
    assert back["logementRecherche"]["communes"] == ["75056"]
    assert back["statut"] == "ACTIVE"


def test_invalid_record_is_rejected_not_raised_raw() -> None:
    codec = load_schemas().codec("Demande")
    rec = _minimal_demande()
    rec["numGuichet"] = 12
    with pytest.raises(RejectedMessage) as info:
        codec.encode(rec)
    assert info.value.problems


def test_unknown_fingerprint_is_rejected() -> None:
    with pytest.raises(RejectedMessage):
        decode_single_object(SINGLE_OBJECT_MAGIC + b"\x00" * 8 + b"x", load_schemas().by_fingerprint())
    with pytest.raises(RejectedMessage):
        decode_single_object(b"junk", load_schemas().by_fingerprint())


def test_a_frame_with_bytes_after_the_record_is_rejected() -> None:
    frame = load_schemas().codec("Demande").encode_framed(_minimal_demande())
    with pytest.raises(RejectedMessage) as info:
        decode_single_object(frame + b"\x00tail", load_schemas().by_fingerprint())
    assert [p.reason for p in info.value.problems] == ["trailing bytes after the record"]


def test_sne_codes_map_both_ways() -> None:
    assert sne_code("Civilite", "MADAME") == "2"
    assert from_sne_code("Civilite", "2") == "MADAME"
    assert from_sne_code("MotifDemande", "06") is None  # violence goes to its own field
    assert from_sne_code("MotifSante", "07") == "HANDICAP"
    assert sne_code("TypeLogement", "T3") == "T3"


def test_to_jsonable() -> None:
    assert to_jsonable({"a": [date(2026, 1, 2), Decimal("1.50")]}) == {"a": ["2026-01-02", "1.50"]}


def test_encode_checked_gives_encodes_bytes_and_names_the_path_of_what_does_not_fit() -> None:
    codec = load_schemas().codec("Demande")
    rec = _minimal_demande()
    assert codec.encode_checked(rec) == codec.encode(rec)
    assert codec.encode_framed_checked(rec) == codec.encode_framed(rec)
    rec["logementRecherche"]["demandeElargie"] = "oui"
    with pytest.raises(RejectedMessage) as info:
        codec.encode_checked(rec)
    assert [(p.path, p.value) for p in info.value.problems] == [("logementRecherche.demandeElargie", "str")]
