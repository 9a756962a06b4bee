"""Forward-compatible codes (issue 17 item 4): a code of a list's shape that this version does not
know is carried (INCONNU + the code in its sibling field, classified like its field) and written back
to the SNE as it came; a value without the list's shape is refused without quoting it; an old
consumer reads a record with a code added later."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import pytest
from connectors.sne.nuu import as_read, to_bytes
from gateway.codec.avro import load_schemas
from gateway.model.canonical import CanonicalRecord
from gateway.normalise import Rejection, normalise
from gateway.policy.fields import classify_leaves
from lxml import etree

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "exports"
AVRO = Path(__file__).resolve().parents[4] / "schemas" / "avro"
POLICY = Path(__file__).resolve().parents[4] / "gateway" / "data" / "policy" / "default-policy.yaml"
NS = {"n": "http://nuu.application.i2/"}


def _with_new_codes() -> bytes:
    text = (FIXTURES / "creation-0201-listes-vides.xml").read_text()
    text = text.replace('<civilite code="2"/>', '<civilite code="4"/>')  # a civilité added later
    text = text.replace("<listeModeleLogement/>", '<listeModeleLogement><modeleLogement code="HLM"/>'
                        '<modeleLogement code="NOUV"/></listeModeleLogement>')  # fmt: skip
    text = text.replace('<typeLogement code="T1"/>', '<typeLogement code="T1"/><typeLogement code="T7"/>')
    text = text.replace("<listeMotifDemande/>", '<listeMotifDemande><motifDemande code="09"/>'
                        '<motifDemande code="24"/></listeMotifDemande>')  # fmt: skip
    return text.replace(
        '<detailRessource><ressource code="RSA"/><montant>607.75</montant></detailRessource>',
        '<detailRessource><ressource code="RSA"/><montant>607.75</montant></detailRessource>'
        '<detailRessource><ressource code="AIDX"/><montant>88.10</montant></detailRessource>',
    ).encode()


def _demande(data: bytes) -> CanonicalRecord:
    [out] = normalise("sne-xml", data)
    assert isinstance(out, CanonicalRecord), out
    return out


def test_codes_of_the_lists_shape_are_carried_in_their_sibling_fields() -> None:
    out = _demande(_with_new_codes())
    r = out.record
    dem = r["demandeur"]
    assert (dem["civilite"], dem["civiliteCodeInconnu"]) == ("INCONNU", "4")
    assert r["logementActuel"]["modelesLogement"] == ["HLM", "INCONNU"]
    assert r["logementActuel"]["modelesLogementCodesInconnus"] == ["NOUV"]
    assert r["logementRecherche"]["typesLogement"] == ["T1", "INCONNU"]
    assert r["logementRecherche"]["typesLogementCodesInconnus"] == ["T7"]
    # fail closed: unknown motifs and resources may reveal health or violence: carried in the health fields
    assert r["motifs"] == ["TROP_CHER"] and r["motifsSante"] == ["INCONNU"]
    assert r["motifsSanteCodesInconnus"] == ["24"]
    assert [x["code"] for x in dem["ressourcesRecues"]] == ["RSA"]
    [health] = dem["ressourcesSante"]
    assert (health["code"], health["codeCodeInconnu"], health["position"]) == ("INCONNU", "AIDX", 1)
    assert sorted(out.unknown_codes) == sorted(
        [
            "ListeCivilite",
            "ListeModeleLogement",
            "ListeTypeLogement",
            "ListeMotifDemande",
            "ListeRessourceRecue",
        ]
    )
    codec = load_schemas().codec("Demande")  # fits the contract, through the checked writer too
    assert codec.decode(codec.encode(r)) == r
    assert codec.problems(r) == []


def test_values_without_the_lists_shape_are_refused_without_being_quoted() -> None:
    text = _with_new_codes().decode().replace('<civilite code="4"/>', '<civilite code="0612345678"/>')
    text = text.replace('<typeLogement code="T7"/>', '<typeLogement code="Dupont"/>')
    [out] = normalise("sne-xml", text.encode())
    assert isinstance(out, Rejection)
    shown = json.dumps([(p.path, p.reason, p.value) for p in out.problems])
    assert "0612345678" not in shown and "Dupont" not in shown
    paths = {p.path for p in out.problems}
    assert "demandeLogement/personnePhysique/demandeur/civilite" in paths
    assert any(p.endswith("typeLogement[2]") for p in paths)
    assert all("not the shape of its codes" in p.reason for p in out.problems)


def test_the_inconnu_symbol_is_not_an_input_code() -> None:
    text = _with_new_codes().decode().replace('<civilite code="4"/>', '<civilite code="INCONNU"/>')
    [out] = normalise("sne-xml", text.encode())
    assert isinstance(out, Rejection)


def test_new_codes_go_back_to_the_sne_as_they_came() -> None:
    data = _with_new_codes()
    root = etree.fromstring(to_bytes(as_read("fr.gp.Demande", _demande(data).record)))
    assert root.find(".//n:demandeur/n:civilite", NS).get("code") == "4"  # type: ignore[union-attr]
    assert [e.get("code") for e in root.iterfind(".//n:listeModeleLogement/n:modeleLogement", NS)] == [
        "HLM",
        "NOUV",
    ]
    assert [e.get("code") for e in root.iterfind(".//n:listeTypeLogement/n:typeLogement", NS)] == ["T1", "T7"]
    assert [e.get("code") for e in root.iterfind(".//n:listeMotifDemande/n:motifDemande", NS)] == ["09", "24"]
    codes = [e.get("code") for e in root.iterfind(".//n:demandeur/n:listeRessourceRecue//n:ressource", NS)]
    assert codes == ["RSA", "AIDX"]


def test_every_sibling_is_classified_like_its_field() -> None:
    import yaml  # noqa: PLC0415

    fields = yaml.safe_load(POLICY.read_text())["fields"]
    for schema in ("fr.gp.Demande", "fr.gp.Decision"):
        classes, problems = classify_leaves(schema, fields[schema], "fields")
        assert problems == []
        flat = {k.replace("[]", ""): v for k, v in classes.items()}
        siblings = [p for p in flat if p.endswith(("CodeInconnu", "CodesInconnus"))]
        assert siblings
        for path in siblings:
            field = path.removesuffix("CodesInconnus").removesuffix("CodeInconnu")
            assert flat[path] == flat[field], path


def test_an_old_consumer_reads_a_record_with_a_code_added_later(tmp_path: Path) -> None:
    """Writer: a later version whose Civilite list has a new symbol; reader: this version."""
    newer = tmp_path / "avro"
    shutil.copytree(AVRO, newer)
    civ: dict[str, Any] = json.loads((newer / "fr.gp.Civilite.avsc").read_text())
    civ["symbols"].insert(3, "MX")
    civ["sneCodes"].insert(3, "4")
    (newer / "fr.gp.Civilite.avsc").write_text(json.dumps(civ))
    writer = fastavro.schema.load_schema(str(newer / "fr.gp.Demande.avsc"))
    reader = load_schemas().codec("Demande").parsed
    record = _demande((FIXTURES / "creation-0201-listes-vides.xml").read_bytes()).record
    record["demandeur"]["civilite"] = "MX"
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, writer, record)
    buf.seek(0)
    old: Any = fastavro.schemaless_reader(buf, writer, reader)
    assert old["demandeur"]["civilite"] == "INCONNU"  # the enum default: the record is read, not lost
    assert old["demandeur"]["nom"] == "Morvan"


@pytest.mark.parametrize(
    "enum", sorted(n for n in load_schemas().names() if load_schemas().raw(n)["type"] == "enum")
)
def test_every_enum_has_the_inconnu_default(enum: str) -> None:
    raw = load_schemas().raw(enum)
    assert raw["default"] == "INCONNU" and raw["symbols"][-1] == "INCONNU"


def test_a_carried_code_is_refused_before_sending_until_the_xsd_knows_it() -> None:
    from connectors.sne.rules import xsd_problems  # noqa: PLC0415

    root = as_read("fr.gp.Demande", _demande(_with_new_codes()).record)
    paths = {p.path for p in xsd_problems(root)}
    assert "interfaceNuu/demande/demandeLogement/personnePhysique/demandeur/civilite/@code" in paths
