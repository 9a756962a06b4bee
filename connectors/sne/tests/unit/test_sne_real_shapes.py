"""Files shaped like real SNE exports (issue 17; written from the brief: empty lists, dependants'
resources, a 02.00 header without typeFichier, Corsican communes, école-shaped numéro unique) through
normalise, the XSD and rules, the simulator and `gateway sne send`; what the SNE rejects still is."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from connectors.sne.rules import mandatory_anomalies, type_fichier_of, xsd_problems
from gateway.cli.sne import sne
from gateway.model.canonical import CanonicalRecord
from gateway.normalise import normalise as _normalise
from lxml import etree


def normalise(fmt: str, data: bytes) -> list[CanonicalRecord]:
    out = _normalise(fmt, data)
    assert all(isinstance(o, CanonicalRecord) for o in out), out
    return [o for o in out if isinstance(o, CanonicalRecord)]


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "exports"
EXTRACT = FIXTURES / "extrait-0200-sans-typefichier.xml"
CREATION = FIXTURES / "creation-0201-listes-vides.xml"
SAMPLE = Path(__file__).resolve().parents[4] / "samples" / "sne-xml" / "demande-cre-famille-rennes.xml"
NS = "{http://nuu.application.i2/}"
LISTS = (
    "listeRessourceVersee", "listeRessourceRecue", "listePersonneACharge", "listePersonneEnGarde",
    "listeCotitulaire", "listeModeleLogement", "listeMotifDemande",
)  # fmt: skip


def _args(simulator: Any) -> list[str]:
    url = f"https://127.0.0.1:{simulator.port}/services/DemandeLogementImplService/"
    return ["--certs", str(simulator.certs), "--guichet", "G3501", "--url", url]


@pytest.mark.parametrize("path", [EXTRACT, CREATION], ids=lambda p: p.name)
def test_export_shapes_pass_the_xsd_the_rules_and_the_normaliser(path: Path) -> None:
    root = etree.parse(str(path)).getroot()
    assert xsd_problems(root) == []
    assert mandatory_anomalies(root) == []
    [demande] = normalise("sne-xml", path.read_bytes())
    assert demande.schema == "fr.gp.Demande"


def test_the_extract_reads_with_dependants_resources_corsica_and_its_header() -> None:
    [demande] = normalise("sne-xml", EXTRACT.read_bytes())
    r = demande.record
    assert type_fichier_of(etree.parse(str(EXTRACT)).getroot()) == "MOD"  # 02.00: read from the content
    assert r["numUnique"] == "1110318016982G1104"
    assert r["fichierSne"] == {
        "versionInterface": "02.00",
        "typeFichier": None,
        "dateFichier": "2018-03-15T09:41:27.3+01:00",
    }
    dem = r["demandeur"]
    assert [x["code"] for x in dem["ressourcesRecuesPersACharge"]] == ["BE"]
    assert [(x["code"], x["position"]) for x in dem["ressourcesSantePersACharge"]] == [("AEEH", 0)]
    assert [x["code"] for x in dem["ressourcesVerseesPersACharge"]] == ["PAV"]
    assert r["logementRecherche"]["communes"] == ["2A004", "2B033"]
    assert r["logementActuel"]["estProprietaire"] is False and r["logementActuel"]["proprietaire"] is None


@pytest.mark.parametrize("liste", LISTS)
def test_every_list_of_a_real_file_may_be_empty(liste: str) -> None:
    root = etree.parse(str(SAMPLE)).getroot()
    for el in root.iter(f"{NS}{liste}"):
        for child in list(el):
            el.remove(child)
    assert xsd_problems(root) == []


def test_xsd_errors_name_the_element_and_line_never_the_value() -> None:
    text = CREATION.read_text().replace("<montant>607.75</montant>", "<montant>SECRET-607</montant>")
    root = etree.fromstring(text.encode())
    [problem] = xsd_problems(root)
    assert problem.path.endswith("listeRessourceRecue/detailRessource/montant")
    assert re.search(r"line \d+", problem.reason)
    assert "SECRET" not in f"{problem.path} {problem.reason} {problem.value}"


def test_a_0201_file_without_typefichier_is_still_refused() -> None:
    root = etree.parse(str(CREATION)).getroot()
    entete = root.find(f"{NS}entete")
    assert entete is not None
    entete.remove(entete.find(f"{NS}typeFichier"))  # type: ignore[arg-type]
    assert [a.code for a in mandatory_anomalies(root)] == ["CTRL_DEM_0002"]


def test_a_creation_with_empty_lists_is_registered_by_the_simulator(simulator: Any) -> None:
    result = CliRunner().invoke(sne, ["send", str(CREATION), *_args(simulator)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["status"] == "ACCEPTED" and answer["numUnique"].startswith("035")


def test_a_0200_extract_without_typefichier_reaches_the_simulator(simulator: Any, tmp_path: Path) -> None:
    # as it is: a modification of a numéro the simulator does not know (its business answer, no fault)
    result = CliRunner().invoke(sne, ["send", str(EXTRACT), *_args(simulator)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["status"] == "REJECTED"
    assert [a["code"] for a in answer["anomalies"]] == ["CTRL_DEM_0020"]
    # without its numéro: a creation, numbered in Corse-du-Sud (02A)
    new = tmp_path / "sans-numero.xml"
    new.write_text(re.sub(r"<numUnique>.*</numUnique>", "", EXTRACT.read_text()))
    result = CliRunner().invoke(sne, ["send", str(new), *_args(simulator)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["numUnique"].startswith("02A1803")


def test_validate_names_elements_and_lines_never_values(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    text = CREATION.read_text().replace("<numGuichet>G3501</numGuichet>", "")
    text = text.replace('<civilite code="2"/>', '<civilite code="0612345678"/>')
    bad.write_text(text.replace("<nom>Morvan</nom>", "<nom>Morvan</nom><inconnu>SECRET</inconnu>"))
    result = CliRunner().invoke(sne, ["validate", str(CREATION), str(EXTRACT), str(bad)])
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert f"{CREATION}: valid" in lines and f"{EXTRACT}: valid" in lines
    assert "0612345678" not in result.output and "SECRET" not in result.output
    found = {line.split(": ")[1] for line in lines if line.startswith(str(bad))}
    dl = "interfaceNuu/demande/demandeLogement"
    assert {
        f"{dl}/numGuichet",
        f"{dl}/personnePhysique/demandeur/civilite/@code",
        f"{dl}/personnePhysique/demandeur/inconnu",
    } <= found
    assert all(re.search(r"line \d+", line) for line in lines if line.startswith(str(bad)))
    ok = CliRunner().invoke(sne, ["validate", str(CREATION)])
    assert ok.exit_code == 0


def test_an_unknown_element_is_refused_by_the_normaliser_naming_it_never_dropped() -> None:
    text = CREATION.read_text().replace("<nom>Morvan</nom>", "<nom>Morvan</nom><surnom>SECRET</surnom>")
    [out] = _normalise("sne-xml", text.encode())
    assert not isinstance(out, CanonicalRecord)
    assert [p.path for p in out.problems] == ["demande/demandeLogement/personnePhysique/demandeur/surnom"]
    assert "SECRET" not in repr(out.problems)
