from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from gateway.codec.avro import load_schemas
from gateway.normalise import check_sne_mandatory, normalise

from .helpers import (
    DEMANDE,
    ENTETE,
    SAMPLES,
    demande,
    only_record,
    problems,
    records,
    rejections,
    round_trip,
    to_xml,
)

WHEN = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def run(data: bytes) -> list:  # type: ignore[type-arg]
    return normalise("sne-xml", data, received_at=WHEN)


def sample(name: str) -> bytes:
    return (SAMPLES / "sne-xml" / name).read_bytes()


def test_full_household_with_coapplicant_dependants_custody_and_health_resources() -> None:
    out = run(sample("demande-cre-famille-rennes.xml"))
    rec = only_record(out)
    assert rec.schema == "fr.gp.Demande"
    r = round_trip(rec)
    assert rec.key == f"G3501/{r['provenance']['referenceSource']}"  # no numéro unique yet
    assert r["provenance"]["referenceSource"].startswith("sha256:")
    dem = r["demandeur"]
    assert (dem["civilite"], dem["nationalite"], dem["situationFamiliale"]) == (
        "MADAME",
        "FRANCAISE",
        "PACSE",
    )
    assert dem["prenom"] == "Anne-Cécile"  # accents kept
    assert dem["adressePostale"]["commune"] == "35238"
    # AEEH reveals health data: it goes to ressourcesSante, not ressourcesRecues
    assert [x["code"] for x in dem["ressourcesRecues"]] == ["SAL", "AF"]
    assert dem["ressourcesSante"] == [{"code": "AEEH", "montant": Decimal("149.26")}]
    co = r["cotitulaires"][0]
    assert co["lienDemandeur"] == "PACSE" and co["nomPatronymique"] == "Kerouédan"
    assert [x["code"] for x in co["ressourcesSante"]] == ["AAH"]
    assert co["ressourcesVersees"] == [{"code": "PAV", "montant": Decimal("180.00")}]
    assert [p["lienParente"] for p in r["personnesACharge"]] == ["ENFANT", "ENFANT", "PARENT"]
    assert r["personnesANaitre"] == {"nombre": 1, "dateNaissancePrevue": date(2026, 5, 20)}
    assert r["personnesEnGarde"][0]["coParentalite"] == "GARDE_ALTERNEE"
    assert r["logementActuel"]["montantMensuelLoyer"] == Decimal("890.00")
    assert r["logementRecherche"]["typesLogement"] == ["T4", "T5"]
    assert r["logementRecherche"]["communes"] == ["35238", "35360"]
    assert r["motifs"] == ["TROP_CHER", "TROP_PETIT"]  # code-list order, whatever the source order
    assert r["motifsSante"] == ["HANDICAP"] and r["violencesFamiliales"] is False
    assert r["handicap"]["aidesTechniques"] == ["AT3"] and r["handicap"]["equipements"] == ["EQ1", "EQ4"]
    prov = r["provenance"]
    assert prov["origine"] == "G3501" and prov["systemeSource"] == "sne-xml"
    assert prov["operation"] == "CREATION"
    assert prov["dateEvenement"] == datetime(2026, 1, 14, 9, 32, tzinfo=UTC)


def test_foreign_address_violence_motif_and_dalo_block() -> None:
    r = round_trip(only_record(run(sample("demande-mod-nantes-etranger.xml"))))
    adr = r["demandeur"]["adressePostale"]
    assert adr["etranger"] is True and adr["pays"] == "BE" and adr["commune"] is None
    assert adr["ville"] == "Etterbeek" and adr["codePostal"] == "1040"
    assert r["violencesFamiliales"] is True  # motif 06 never lands in `motifs`
    assert r["motifs"] == ["SANS_LOGEMENT", "DIVORCE_SEPARATION"]
    assert r["dalo"] == {"statut": "ACTIF", "dateDecision": date(2026, 1, 29), "typologie": "02"}
    assert r["numUnique"] == "044260100000000001"
    assert r["provenance"]["operation"] == "MODIFICATION"
    assert r["demandeur"]["nom"] == "Nguyễn"


def test_association_without_natural_person() -> None:
    r = round_trip(only_record(run(sample("demande-cre-association-rennes.xml"))))
    assert r["demandeur"] is None
    assert r["personneMorale"]["siret"] == "78945612300021"
    assert "« Toit à Moi »" in r["personneMorale"]["raisonSociale"]


def test_missing_optional_blocks_are_fine() -> None:
    minimal = {
        "numGuichet": "G4401",
        "dateCreationDemande": "2026-02-01",
        "personnePhysique": {"demandeur": {"nom": "Roux", "prenom": "Paul"}},
        "logementRecherche": DEMANDE["logementRecherche"],
    }
    r = round_trip(only_record(run(to_xml(ENTETE, minimal, version="02.00"))))
    assert r["cotitulaires"] == [] and r["logementActuel"] is None and r["handicap"] is None
    assert r["demandeur"]["civilite"] is None and r["demandeur"]["revenuFiscal"] is None


def test_rad_attribution_yields_radiated_demande_and_radiation_decision() -> None:
    out = run(sample("demande-rad-attribution-rennes.xml"))
    assert not rejections(out)
    dem, dec = records(out)
    d = round_trip(dem)
    assert d["statut"] == "RADIEE"
    assert d["radiation"] == {"motif": "RADATT", "sousMotif": None, "dateRadiation": date(2026, 2, 27)}
    e = round_trip(dec)
    assert dec.schema == "fr.gp.Decision" and dec.key == "035260100000000001"
    assert e["typeEvenement"] == "RADIATION"
    att = e["radiation"]["attribution"]
    assert att["siren"] == "200000001" and att["contingent"] == "PPRIOR" and att["dejaLocataire"] == "OUI"
    assert att["logement"]["rpls"] == "0000351234" and att["logement"]["zus"] == "ZUSNON"
    assert att["logement"]["loyer"] == Decimal("356.80")
    # deterministic event id: a re-delivered file yields the same id
    again = records(run(sample("demande-rad-attribution-rennes.xml")))[1]
    assert again.record["eventId"] == e["eventId"]


def test_rad_irrecevabilite_needs_its_sub_motif() -> None:
    out = run(sample("demande-rad-irrecevabilite-nantes.xml"))
    assert records(out)[1].record["radiation"]["sousMotif"] == "IRRRES"
    rad = {"motifRadiation": "RADIRR", "dateRadiation": "2026-04-14"}
    bad = run(
        to_xml({**ENTETE, "typeFichier": "RAD"}, demande(numUnique="044260100000000003", radiation=rad))
    )
    assert ("demandeLogement/radiation/sousMotifRadiation", "missing (mandatory for RADIRR)") in problems(bad)


def test_radatt_without_attribution_data_is_rejected() -> None:
    rad = {"motifRadiation": "RADATT", "dateRadiation": "2026-04-14"}
    bad = run(to_xml({**ENTETE, "typeFichier": "RAD"}, demande(radiation=rad)))
    assert problems(bad) >= {
        ("demandeLogement/radiation/attribution", "missing (mandatory for RADATT)"),
        ("demandeLogement/numUnique", "missing (mandatory for a RAD file)"),
    }


def test_empty_radiation_motif_is_a_deradiation() -> None:
    rad = {"motifRadiation": "", "dateRadiation": "2026-05-02"}
    out = run(
        to_xml({**ENTETE, "typeFichier": "RAD"}, demande(numUnique="035260100000000009", radiation=rad))
    )
    dem, dec = records(out)
    assert dem.record["statut"] == "ACTIVE" and dem.record["radiation"] is None
    assert dec.record["typeEvenement"] == "DERADIATION"
    round_trip(dec)


def test_renewal_file_yields_renouvellement_event() -> None:
    dem, dec = records(run(sample("demande-ren-nantes.xml")))
    assert dem.record["dateDernierRenouvellement"] == date(2026, 11, 2)
    assert dec.record["typeEvenement"] == "RENOUVELLEMENT"
    assert dec.record["provenance"]["dateEvenement"] == datetime(2026, 11, 1, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"numGuichet": None}, "demandeLogement/numGuichet"),
        ({"dateCreationDemande": None}, "demandeLogement/dateCreationDemande"),
        (
            {"logementRecherche": {**DEMANDE["logementRecherche"], "demandeElargie": None}},
            "demandeLogement/logementRecherche/demandeElargie",
        ),
        (
            {"logementRecherche": {**DEMANDE["logementRecherche"], "listeTypeLogement": None}},
            "demandeLogement/logementRecherche/listeTypeLogement",
        ),
        (
            {"logementRecherche": {**DEMANDE["logementRecherche"], "listeLocalisationSouhaite": None}},
            "demandeLogement/logementRecherche/listeLocalisationSouhaite",
        ),
    ],
)
def test_mandatory_fields_are_named_as_the_sne_names_them(change: dict, path: str) -> None:  # type: ignore[type-arg]
    out = run(to_xml(ENTETE, demande(**change)))
    assert path in {p for p, _ in problems(out)}
    # check_sne_mandatory names the same field on a canonical record missing it
    good = only_record(run(to_xml(ENTETE, DEMANDE))).record
    assert check_sne_mandatory(good) == []
    broken = dict(good)
    lr = dict(good["logementRecherche"])
    if path.endswith("numGuichet"):
        broken["numGuichet"] = ""
    elif path.endswith("dateCreationDemande"):
        broken["dateCreationDemande"] = None
    elif path.endswith("demandeElargie"):
        lr["demandeElargie"] = None
    elif path.endswith("listeTypeLogement"):
        lr["typesLogement"] = []
    else:
        lr["communes"] = []
    broken["logementRecherche"] = lr
    assert path in {p.path for p in check_sne_mandatory(broken)}


def test_file_level_mandatory_fields() -> None:
    out = run(to_xml({"dateFichier": None, "typeFichier": "XXX"}, DEMANDE, version="03.00"))
    assert problems(out) >= {
        ("interfaceNuu/@versionInterface", "unsupported version (02.00 or 02.01)"),
        ("entete/typeFichier", "unknown code for ListeTypeFichier"),
        ("entete/dateFichier", "missing"),
    }
    assert ("interfaceNuu/@versionInterface", "missing") in problems(
        run(to_xml(ENTETE, DEMANDE, version=None))
    )


def test_every_problem_is_listed_with_its_sne_path() -> None:
    out = run((SAMPLES / "bad" / "sne-champs-obligatoires-manquants.xml").read_bytes())
    assert len(out) == 1 and out[0].locator == "$" and out[0].fragment is None  # type: ignore[union-attr]
    p = "demandeLogement/personnePhysique/demandeur"
    assert problems(out) >= {
        ("entete/typeFichier", "missing"),
        ("demandeLogement/numGuichet", "missing"),
        ("demandeLogement/dateCreationDemande", "impossible date"),
        (f"{p}/civilite", "unknown code for ListeCivilite"),
        (f"{p}/listeRessourceRecue/detailRessource[1]/montant", "negative amount"),
        (
            f"{p}/listeRessourceRecue/detailRessource[2]/ressource",
            "unknown code for ListeRessourceRecue",
        ),
        ("demandeLogement/logementRecherche/listeTypeLogement", "missing: at least one typeLogement"),
    }


def test_problem_values_never_carry_personal_data() -> None:
    d = demande()
    d["personnePhysique"]["demandeur"]["dateNaissance"] = "Jean-Pierre"
    d["personnePhysique"]["demandeur"]["mel"] = "pas-une-adresse"
    out = run(to_xml(ENTETE, d))
    values = {p.value for r in rejections(out) for p in r.problems}
    assert "Jean-Pierre" not in values and "pas-une-adresse" not in values
    assert problems(out)


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<interfaceNuu xmlns="http://nuu.application.i2/">&b;</interfaceNuu>',
        (SAMPLES / "bad" / "sne-entite-externe.xml").read_bytes(),
    ],
)
def test_dtd_and_entities_are_refused(data: bytes) -> None:
    out = run(data)
    assert problems(out) == {("$", "DOCTYPE/DTD not allowed")}


def test_oversized_and_not_sne_documents_are_rejected_clearly() -> None:
    huge = b"<a>" + b"x" * (6 * 1024 * 1024) + b"</a>"
    assert problems(run(huge)) == {("$", "too large")}
    assert problems(run((SAMPLES / "bad" / "sne-pas-une-demande.xml").read_bytes())) == {
        ("$", "not an SNE interfaceNuu document (root element or namespace)")
    }
    assert ("$", "malformed XML (line 39)") in problems(
        run((SAMPLES / "bad" / "sne-tronque.xml").read_bytes())
    )
    assert problems(run(b"")) == {("$", "empty XML document")} or problems(run(b"")) == {("$", "empty input")}


# -- every SNE code list used by the demand, each code exercised --
def _set(d: dict, path: str, value: object) -> None:  # type: ignore[type-arg]
    keys = path.split("/")
    for k in keys[:-1]:
        d = d[int(k)] if isinstance(d, list) else d[k]  # type: ignore[index]
    d[keys[-1]] = value


CODE_SITES = [
    ("Civilite", "personnePhysique/demandeur/civilite", ("demandeur", "civilite")),
    ("Nationalite", "personnePhysique/demandeur/nationalite", ("demandeur", "nationalite")),
    (
        "SituationFamiliale",
        "personnePhysique/demandeur/situationFamiliale",
        ("demandeur", "situationFamiliale"),
    ),
    (
        "TypeContratTravail",
        "personnePhysique/demandeur/situationProfessionnelle/typeContratTravail",
        ("demandeur", "situationProfessionnelle", "typeContratTravail"),
    ),
    (
        "LienDemandeur",
        "personnePhysique/listeCotitulaire/0/lienDemandeur",
        ("cotitulaires", 0, "lienDemandeur"),
    ),
    (
        "LienParente",
        "personnePhysique/listePersonneACharge/0/lienParente",
        ("personnesACharge", 0, "lienParente"),
    ),
    ("Sexe", "personnePhysique/listePersonneACharge/0/sexe", ("personnesACharge", 0, "sexe")),
    (
        "Coparentalite",
        "personnePhysique/listePersonneEnGarde/0/coParentalite",
        ("personnesEnGarde", 0, "coParentalite"),
    ),
    (
        "CategorieLogement",
        "personnePhysique/logementActuel/categorieLogement",
        ("logementActuel", "categorieLogement"),
    ),
    (
        "TypeLogement",
        "personnePhysique/logementActuel/typeLogementActuel",
        ("logementActuel", "typeLogementActuel"),
    ),
    ("CategorieLogementRecherche", "logementRecherche/categorieLogement", ("logementRecherche", "categorie")),
]


@pytest.mark.parametrize(("enum", "site", "target"), CODE_SITES, ids=[c[0] for c in CODE_SITES])
def test_every_code_of_each_list_maps_to_its_symbol(enum: str, site: str, target: tuple) -> None:  # type: ignore[type-arg]
    for symbol, code in load_schemas().sne_codes(enum).items():
        d = demande()
        _set(d, site, code)
        r = only_record(run(to_xml(ENTETE, d))).record
        for k in target:
            r = r[k]
        assert r == symbol, (enum, code)


def test_every_list_code_of_the_demand() -> None:
    schemas = load_schemas()
    d = demande()
    pp = d["personnePhysique"]
    modeles = schemas.enum_symbols("ModeleLogement")
    pp["logementActuel"]["listeModeleLogement"] = modeles
    recues = list(schemas.sne_codes("CodeRessourceRecue").values()) + schemas.enum_symbols("RessourceSante")
    pp["demandeur"]["listeRessourceRecue"] = [{"ressource": c, "montant": "10"} for c in recues]
    pp["demandeur"]["listeRessourceVersee"] = [{"ressource": "PAV", "montant": "10"}]
    types = list(schemas.sne_codes("TypeLogement").values())
    d["logementRecherche"]["listeTypeLogement"] = types
    motifs = [f"{i:02d}" for i in range(1, 24)]
    d["listeMotifDemande"] = motifs
    d["complementHandicap"] = {
        "etatHandicap": "EVO",
        "capaciteMarche": "4",
        "listeNatureHandicapMoteur": ["MS", "MI"],
        "listeNatureHandicapSensoriel": ["DA", "DV"],
        "listeAideTechnique": [str(i) for i in range(1, 8)],
        "listeEquipement": [str(i) for i in range(1, 7)],
    }
    d["dalo"] = {"statutDalo": "ACTREL", "typologieLogementDalo": "45"}
    r = round_trip(only_record(run(to_xml(ENTETE, d))))
    assert r["logementActuel"]["modelesLogement"] == modeles
    assert len(r["demandeur"]["ressourcesRecues"]) == 10 and len(r["demandeur"]["ressourcesSante"]) == 4
    assert r["logementRecherche"]["typesLogement"] == schemas.enum_symbols("TypeLogement")
    assert r["motifs"] == schemas.enum_symbols("MotifDemande")
    assert r["motifsSante"] == ["HANDICAP", "SANTE"] and r["violencesFamiliales"] is True
    assert r["handicap"]["etat"] == "EVOLUTIF" and r["handicap"]["capaciteMarche"] == "CM4"
    assert r["handicap"]["aidesTechniques"] == schemas.enum_symbols("AideTechnique")
    assert r["handicap"]["equipements"] == schemas.enum_symbols("Equipement")
    assert r["dalo"]["statut"] == "ACTREL"
    for statut in schemas.enum_symbols("StatutDalo"):
        d["dalo"] = {"statutDalo": statut}
        assert only_record(run(to_xml(ENTETE, d))).record["dalo"]["statut"] == statut


@pytest.mark.parametrize("type_fichier", ["CRE", "CRS", "MOD", "SUP", "DIS", "RET", "COP"])
def test_every_type_fichier_sets_the_operation(type_fichier: str) -> None:
    r = only_record(run(to_xml({**ENTETE, "typeFichier": type_fichier}, DEMANDE))).record
    expected = {
        "CRE": "CREATION",
        "CRS": "CREATION",
        "SUP": "SUPPRESSION",
        "DIS": "LECTURE",
        "RET": "LECTURE",
    }
    assert r["provenance"]["operation"] == expected.get(type_fichier, "MODIFICATION")
