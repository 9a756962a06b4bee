"""Test helpers: build SNE XML from a dict, check records against the Avro contract."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from gateway.codec.avro import load_schemas
from gateway.model.canonical import CanonicalRecord
from gateway.normalise import Outcome, Rejection

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "samples"
NS = "http://nuu.application.i2/"

# list element -> item element name (the SNE convention: liste<Item>/<item>)
ITEMS = {
    "listeCotitulaire": "cotitulaire",
    "listePersonneACharge": "personneACharge",
    "listePersonneEnGarde": "personneEnGarde",
    "listeRessourceRecue": "detailRessource",
    "listeRessourceVersee": "detailRessource",
    "listeModeleLogement": "modeleLogement",
    "listeTypeLogement": "typeLogement",
    "listeLocalisationSouhaite": "localisationSouhaite",
    "listeMotifDemande": "motifDemande",
    "listeNatureHandicapMoteur": "natureHandicapMoteur",
    "listeNatureHandicapSensoriel": "natureHandicapSensoriel",
    "listeAideTechnique": "aideTechnique",
    "listeEquipement": "equipement",
}
CODED = {
    "civilite",
    "nationalite",
    "situationFamiliale",
    "lienDemandeur",
    "lienParente",
    "sexe",
    "coParentalite",
    "typeContratTravail",
    "ressource",
    "modeleLogement",
    "categorieLogement",
    "typeLogementActuel",
    "typeLogement",
    "commune",
    "motifDemande",
    "etatHandicap",
    "capaciteMarche",
    "natureHandicapMoteur",
    "natureHandicapSensoriel",
    "aideTechnique",
    "equipement",
    "statutDalo",
    "typologieLogementDalo",
    "motifRadiation",
    "sousMotifRadiation",
    "dejaLocataire",
    "accordCollectif",
    "contingent",
    "contingentDesignataire",
    "zus",
}


def _element(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        item = ITEMS[name]
        return f"<{name}>" + "".join(_element(item, v) for v in value) + f"</{name}>"
    if isinstance(value, dict):
        return f"<{name}>" + "".join(_element(k, v) for k, v in value.items()) + f"</{name}>"
    if name in CODED:
        return f'<{name} code="{escape(str(value))}"/>'
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"<{name}>{escape(text)}</{name}>"


def to_xml(entete: dict[str, Any], demande: dict[str, Any], version: str | None = "02.01") -> bytes:
    attr = f' versionInterface="{version}"' if version is not None else ""
    body = _element("entete", entete) + "<demande>" + _element("demandeLogement", demande) + "</demande>"
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return f'{head}<interfaceNuu xmlns="{NS}"{attr}>{body}</interfaceNuu>'.encode()


ENTETE = {"typeFichier": "CRE", "dateFichier": "2026-01-14T10:32:00+01:00"}

DEMANDE: dict[str, Any] = {
    "numGuichet": "G3501",
    "dateCreationDemande": "2026-01-14",
    "personnePhysique": {
        "demandeur": {
            "civilite": "2",
            "nom": "Le Goff",
            "prenom": "Anne",
            "dateNaissance": "1988-04-23",
            "nationalite": "1",
            "situationFamiliale": "C",
            "adressePostale": {
                "numero": "1",
                "voie": "rue de Brest",
                "codePostal": "35000",
                "commune": "35238",
            },
            "situationProfessionnelle": {"profession": "Infirmière", "typeContratTravail": "CDI"},
            "listeRessourceRecue": [{"ressource": "SAL", "montant": "1500.00"}],
        },
        "listeCotitulaire": [
            {
                "civilite": "1",
                "nom": "Le Goff",
                "prenom": "Yves",
                "lienDemandeur": "M",
                "situationFamiliale": "M",
            },
        ],
        "listePersonneACharge": [{"nom": "Le Goff", "prenom": "Lou", "sexe": "F", "lienParente": "E"}],
        "listePersonneEnGarde": [{"dateNaissance": "2015-01-01", "sexe": "M", "coParentalite": "G"}],
        "logementActuel": {
            "listeModeleLogement": ["LP"],
            "categorieLogement": "A",
            "typeLogementActuel": "T2",
        },
    },
    "logementRecherche": {
        "demandeElargie": False,
        "listeTypeLogement": ["T3"],
        "listeLocalisationSouhaite": [{"commune": "35238"}],
        "categorieLogement": "I",
    },
}


def demande(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(DEMANDE)
    out.update(changes)
    return out


def records(outcomes: list[Outcome]) -> list[CanonicalRecord]:
    return [o for o in outcomes if isinstance(o, CanonicalRecord)]


def rejections(outcomes: list[Outcome]) -> list[Rejection]:
    return [o for o in outcomes if isinstance(o, Rejection)]


def only_record(outcomes: list[Outcome]) -> CanonicalRecord:
    assert not rejections(outcomes), [(p.path, p.reason) for r in rejections(outcomes) for p in r.problems]
    assert len(outcomes) == 1
    out = outcomes[0]
    assert isinstance(out, CanonicalRecord)
    return out


def problems(outcomes: list[Outcome]) -> set[tuple[str, str]]:
    return {(p.path, p.reason) for r in rejections(outcomes) for p in r.problems}


def round_trip(record: CanonicalRecord) -> dict[str, Any]:
    """Encode / decode through the Avro codec; the decoded record must equal the original."""
    codec = load_schemas().codec(record.schema)
    assert codec.problems(record.record) == []
    back = codec.decode(codec.encode(record.record))
    assert back == record.record
    return back
