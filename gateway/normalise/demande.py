"""An application in the SNE vocabulary (interfaceNuu `demandeLogement`) -> canonical fr.gp.Demande.

The input is a tree of mappings: an SNE XML element turned into a dict by `gateway.codec.xml`, or
the JSON demand document of an ERP change event, which uses the same names (see docs/normalise.md).
Codes are SNE codes; every problem names the SNE element path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.codec.avro import load_schemas
from gateway.errors import Problem
from gateway.normalise.common import Node, _is_mapping, known_code, length, lookup_code

__all__ = [
    "HEALTH_RESOURCES",
    "INSEE_RE",
    "NUM_UNIQUE_RE",
    "check_sne_mandatory",
    "map_adresse",
    "map_demande",
    "map_logement",
    "map_personne",
    "map_radiation",
]

INSEE_RE = r"\d[\dAB]\d{3}"
NUM_UNIQUE_RE = r"[0-9A-Z]{18}"
GUICHET_RE = r"G[0-9A-Z]{4}"
HEALTH_RESOURCES = ("AAH", "AEEH", "AJPP", "PINV")
DALO_TYPOLOGIES = frozenset(
    [f"{i:02d}" for i in range(1, 7)]
    + [str(i) for i in range(21, 27)]
    + ["30", "50"]
    + [str(i) for i in range(40, 50)]
)
MP = "demandeLogement"  # path prefix of the mandatory rules
LR = f"{MP}/logementRecherche"
_COMMUNE = re.compile(r"\d{5}", re.ASCII)


def check_sne_mandatory(record: Mapping[str, Any]) -> list[Problem]:
    """The SNE's client-side mandatory-field rules, on a canonical Demande.

    Same fields and paths as the SNE (libsne): numGuichet, dateCreationDemande, demandeElargie, at
    least one typeLogement, at least one localisation commune with a numeric INSEE code. The file
    level rules (versionInterface, typeFichier, dateFichier) are checked by the sne-xml normaliser.
    """
    problems: list[Problem] = []
    if not record.get("numGuichet"):
        problems.append(Problem(f"{MP}/numGuichet", "missing"))
    if record.get("dateCreationDemande") is None:
        problems.append(Problem(f"{MP}/dateCreationDemande", "missing"))
    lr = record.get("logementRecherche")
    if not isinstance(lr, Mapping):
        lr = {}
    if not isinstance(lr.get("demandeElargie"), bool):
        problems.append(Problem(f"{LR}/demandeElargie", "missing"))
    if not lr.get("typesLogement"):
        problems.append(Problem(f"{LR}/listeTypeLogement", "missing: at least one typeLogement"))
    communes = lr.get("communes") or []
    if not communes:
        problems.append(Problem(f"{LR}/listeLocalisationSouhaite", "missing: at least one commune"))
    for i, commune in enumerate(communes):
        if not (isinstance(commune, str) and _COMMUNE.fullmatch(commune)):
            problems.append(
                Problem(
                    f"{LR}/listeLocalisationSouhaite/localisationSouhaite[{i + 1}]/commune",
                    "not a numeric INSEE code",
                )
            )
    return problems


def map_adresse(n: Node) -> dict[str, Any]:
    etranger = bool(n.boolean("etranger"))
    out: dict[str, Any] = {
        "etranger": etranger,
        "numero": n.text("numero", max_len=20),
        "voie": n.text("voie"),
        "complement": n.text("complement"),
        "codePostal": n.text("codePostal", max_len=20, pattern=None if etranger else r"\d{5}"),
        "commune": None,
        "ville": n.text("ville", required="missing (mandatory abroad)" if etranger else False),
        "pays": n.text(
            "pays", pattern=r"[A-Z]{2}", required="missing (mandatory abroad)" if etranger else False
        ),
    }
    if not etranger:
        out["commune"] = n.text("commune", pattern=INSEE_RE)
        out["pays"] = None
    return out


def map_logement(n: Node) -> dict[str, Any]:
    """A dwelling: RPLS id, or failing that its address, type, surface, ZUS and rent."""
    rpls = n.text("rpls", pattern=r"[0-9A-Z]{10}")
    adresse = n.child("adresse")
    out = {
        "rpls": rpls,
        "referenceBailleur": n.text("referenceBailleur", max_len=64),
        "sirenBailleur": n.text("sirenBailleur", pattern=r"\d{9}"),
        "adresse": map_adresse(adresse) if adresse else None,
        "commune": n.text("commune", pattern=INSEE_RE),
        "typeLogement": n.code("typeLogement", "TypeLogementRPLS", "ListeTypeLogementRPLS"),
        "surface": n.real("surface"),
        "loyer": n.amount("loyer"),
        "zus": n.code("zus", "Zus", "ListeZUS"),
    }
    if rpls is None and not n.has("rpls") and not n.has("referenceBailleur") and out["adresse"] is None:
        n.ctx.add(n.p("rpls"), "missing: an RPLS id, a bailleur reference or an address is needed")
    return out


def _ressources(n: Node, person: dict[str, Any]) -> None:
    for d in n.child_items("listeRessourceRecue", "detailRessource"):
        code = d.raw("ressource")
        montant = d.amount("montant", required=True)
        if code is None:
            d.ctx.add(d.p("ressource"), "missing")
            continue
        if isinstance(code, str) and code.strip() in HEALTH_RESOURCES:
            if montant is not None:
                person["ressourcesSante"].append({"code": code.strip(), "montant": montant})
            continue
        symbol = known_code(code, "CodeRessourceRecue") or lookup_code(
            d.ctx, d.p("ressource"), code, "CodeRessourceRecue", "ListeRessourceRecue"
        )
        if symbol is not None and montant is not None:
            person["ressourcesRecues"].append({"code": symbol, "montant": montant})
    for d in n.child_items("listeRessourceVersee", "detailRessource"):
        v = d.code("ressource", "RessourceVersee", "ListeRessourceVersee", required=True)
        montant = d.amount("montant", required=True)
        if v is not None and montant is not None:
            person["ressourcesVersees"].append({"code": v, "montant": montant})


def map_personne(n: Node, *, cotitulaire: bool) -> dict[str, Any]:
    adresse = n.child("adressePostale")
    sp = n.child("situationProfessionnelle")
    rf = n.child("revenuFiscal")
    person: dict[str, Any] = {
        "civilite": n.code("civilite", "Civilite", "ListeCivilite"),
        "nom": n.text("nom", required=True, max_len=100),
        "nomPatronymique": n.text("nomPatronymique", max_len=100),
        "prenom": n.text("prenom", required=True, max_len=100),
        "dateNaissance": n.date("dateNaissance", past=True),
        "nationalite": n.code("nationalite", "Nationalite", "ListeNationalite"),
        "situationFamiliale": n.code("situationFamiliale", "SituationFamiliale", "ListeSituationFamiliale"),
        "lienDemandeur": (
            n.code("lienDemandeur", "LienDemandeur", "ListeLienDemandeur") if cotitulaire else None
        ),
        "telPortable": n.text("telPortable", max_len=20, pattern=r"\+?[0-9 .]{6,20}"),
        "mel": n.text("mel", max_len=254, pattern=r"[^@\s]+@[^@\s]+"),
        "adressePostale": map_adresse(adresse) if adresse else None,
        "situationProfessionnelle": None,
        "revenuFiscal": None,
        "ressourcesRecues": [],
        "ressourcesSante": [],
        "ressourcesVersees": [],
    }
    if sp is not None:
        etranger = bool(sp.boolean("etranger"))
        person["situationProfessionnelle"] = {
            "profession": sp.text("profession"),
            "typeContratTravail": sp.code(
                "typeContratTravail", "TypeContratTravail", "ListeTypeContratTravail"
            ),
            "nomEmployeurPrincipal": sp.text("nomEmployeurPrincipal"),
            "etranger": etranger,
            "codePostal": sp.text("codePostal", max_len=20, pattern=None if etranger else r"\d{5}"),
            "commune": None if etranger else sp.text("commune", pattern=INSEE_RE),
        }
    if rf is not None:
        person["revenuFiscal"] = {
            "anneeMoins1": rf.integer("anneeMoins1", minimum=1900, maximum=2200),
            "montantMoins1": rf.amount("montantMoins1"),
            "anneeMoins2": rf.integer("anneeMoins2", minimum=1900, maximum=2200),
            "montantMoins2": rf.amount("montantMoins2"),
        }
    _ressources(n, person)
    return person


def _handicap(n: Node) -> dict[str, Any]:
    return {
        "etat": n.code("etatHandicap", "EtatHandicap", "ListeEtatHandicap"),
        "capaciteMarche": n.code("capaciteMarche", "CapaciteMarche", "ListeCapaciteMarcheHandicap"),
        "naturesMoteur": n.codes(
            "listeNatureHandicapMoteur",
            "natureHandicapMoteur",
            "NatureHandicapMoteur",
            "ListeNatureHandicapMoteur",
        ),
        "naturesSensoriel": n.codes(
            "listeNatureHandicapSensoriel",
            "natureHandicapSensoriel",
            "NatureHandicapSensoriel",
            "ListeNatureHandicapSensoriel",
        ),
        "aidesTechniques": n.codes(
            "listeAideTechnique",
            "aideTechnique",
            "AideTechnique",
            "ListeAideTechniqueHandicap",
        ),
        "equipements": n.codes("listeEquipement", "equipement", "Equipement", "ListeEquipementHandicap"),
    }


def _motifs(n: Node, out: dict[str, Any]) -> None:
    key, elements = n.elements("listeMotifDemande")
    for i, element in enumerate(elements):
        raw = element.get("code") if _is_mapping(element) else element
        code = str(raw).strip() if isinstance(raw, str | int) and not isinstance(raw, bool) else None
        if code == "06":
            out["violencesFamiliales"] = True
        elif code in ("07", "08"):
            symbol = known_code(code, "MotifSante") or lookup_code(
                n.ctx, n.item_path(key, "motifDemande", i), code, "MotifSante", "ListeMotifDemande"
            )
            if symbol and symbol not in out["motifsSante"]:
                out["motifsSante"].append(symbol)
        elif code is None:
            n.ctx.add(n.item_path(key, "motifDemande", i), "missing")
        else:
            symbol = known_code(code, "MotifDemande") or lookup_code(
                n.ctx, n.item_path(key, "motifDemande", i), code, "MotifDemande", "ListeMotifDemande"
            )
            if symbol and symbol not in out["motifs"]:
                out["motifs"].append(symbol)
    # a set, in code-list order: the same application gives the same record whatever the source order
    for field, enum in (("motifs", "MotifDemande"), ("motifsSante", "MotifSante")):
        if len(out[field]) > 1:  # (0 or 1 symbol: already in order)
            order = load_schemas().enum_symbols(enum)
            out[field].sort(key=order.index)


def map_radiation(n: Node) -> dict[str, Any] | None:
    """`radiation` block: motif (empty code = déradiation, returned as motif None), sub-motif, date."""
    motif_raw = n.data.get(n.key("motifRadiation"))
    if isinstance(motif_raw, str) and not motif_raw.strip():
        return {"motif": None, "sousMotif": None, "dateRadiation": n.date("dateRadiation")}
    motif = n.code("motifRadiation", "MotifRadiation", "ListeMotifsRadiation", required=True)
    sous = n.code(
        "sousMotifRadiation",
        "SousMotifIrrecevabilite",
        "ListeSousMotifRadiationIrrecevabilite",
        required="missing (mandatory for RADIRR)" if motif == "RADIRR" else False,
    )
    return {"motif": motif, "sousMotif": sous, "dateRadiation": n.date("dateRadiation", required=True)}


def map_demande(n: Node) -> dict[str, Any]:
    """The canonical Demande without `provenance` (the caller adds it). Problems go to n.ctx."""
    pp = n.child("personnePhysique")
    pm = n.child("personneMorale")
    out: dict[str, Any] = {
        "numUnique": n.text("numUnique", pattern=NUM_UNIQUE_RE),
        "numGuichet": n.text("numGuichet", required=True, pattern=GUICHET_RE),
        "dateCreationDemande": n.date("dateCreationDemande", required=True, past=True),
        "dateDernierRenouvellement": n.date("dateDernierRenouvellement", past=True),
        "statut": "ACTIVE",
        "radiation": None,
        "demandeur": None,
        "personneMorale": None,
        "cotitulaires": [],
        "personnesACharge": [],
        "personnesANaitre": None,
        "personnesEnGarde": [],
        "logementActuel": None,
        "motifs": [],
        "motifsSante": [],
        "violencesFamiliales": False,
        "handicap": None,
        "dalo": None,
    }
    if pm is not None:
        out["personneMorale"] = {
            "raisonSociale": pm.text("raisonSociale", required=True),
            "siret": pm.text("siret", pattern=r"\d{14}"),
        }
    if pp is not None:
        dem = pp.child("demandeur", required=pm is None)
        if dem is not None:
            out["demandeur"] = map_personne(dem, cotitulaire=False)
        out["cotitulaires"] = [
            map_personne(c, cotitulaire=True) for c in pp.child_items("listeCotitulaire", "cotitulaire")
        ]
        out["personnesACharge"] = [
            {
                "nom": c.text("nom", required=True, max_len=100),
                "prenom": c.text("prenom", required=True, max_len=100),
                "dateNaissance": c.date("dateNaissance", past=True),
                "sexe": c.code("sexe", "Sexe", "ListeSexe"),
                "lienParente": c.code("lienParente", "LienParente", "ListeLienParente"),
            }
            for c in pp.child_items("listePersonneACharge", "personneACharge")
        ]
        pan = pp.child("personneANaitre")
        if pan is not None:
            nombre = pan.integer("nombre", required=True, minimum=1, maximum=20)
            date_prevue = pan.date("dateNaissancePrevue")
            if nombre is not None:
                out["personnesANaitre"] = {"nombre": nombre, "dateNaissancePrevue": date_prevue}
        out["personnesEnGarde"] = [
            {
                "dateNaissance": g.date("dateNaissance", past=True),
                "sexe": g.code("sexe", "Sexe", "ListeSexe"),
                "coParentalite": g.code("coParentalite", "Coparentalite", "ListeCoparentalite"),
            }
            for g in pp.child_items("listePersonneEnGarde", "personneEnGarde")
        ]
        la = pp.child("logementActuel")
        if la is not None:
            out["logementActuel"] = {
                "modelesLogement": la.codes(
                    "listeModeleLogement", "modeleLogement", "ModeleLogement", "ListeModeleLogement"
                ),
                "montantMensuelLoyer": la.amount("montantMensuelLoyer"),
                "nombreHabitant": la.integer("nombreHabitant", maximum=99),
                "categorieLogement": la.code(
                    "categorieLogement", "CategorieLogement", "ListeCategorieLogement"
                ),
                "typeLogementActuel": la.code("typeLogementActuel", "TypeLogement", "ListeTypeLogement"),
                "surface": la.real("surface"),
                "proprietaire": la.text("proprietaire"),
            }
    elif pm is None:
        n.ctx.add(n.p("personnePhysique"), "missing: a personnePhysique or a personneMorale is needed")
    out["logementRecherche"] = _logement_recherche(n)
    _motifs(n, out)
    h = n.child("complementHandicap")
    if h is not None:
        out["handicap"] = _handicap(h)
    dalo = n.child("dalo")
    if dalo is not None:
        typologie = dalo.text("typologieLogementDalo", max_len=2)
        if typologie is not None and typologie not in DALO_TYPOLOGIES:
            dalo.ctx.add(
                dalo.p("typologieLogementDalo"),
                "unknown code for ListeTypologieLogementDalo",
                length(typologie),
            )
            typologie = None
        out["dalo"] = {
            "statut": dalo.code("statutDalo", "StatutDalo", "ListeStatutDalo", required=True),
            "dateDecision": dalo.date("dateDecisionDalo"),
            "typologie": typologie,
        }
    rad = n.child("radiation")
    if rad is not None:
        radiation = map_radiation(rad)
        if radiation is not None and radiation["motif"] is not None:
            out["radiation"] = radiation
            out["statut"] = "RADIEE"
    return out


def _logement_recherche(n: Node) -> dict[str, Any]:
    lr = n.child("logementRecherche")
    if lr is None:
        n.ctx.add(n.p("logementRecherche/demandeElargie"), "missing")
        n.ctx.add(n.p("logementRecherche/listeTypeLogement"), "missing: at least one typeLogement")
        n.ctx.add(n.p("logementRecherche/listeLocalisationSouhaite"), "missing: at least one commune")
        return {"demandeElargie": False, "typesLogement": [], "communes": []}
    types = lr.codes("listeTypeLogement", "typeLogement", "TypeLogement", "ListeTypeLogement")
    if not lr.elements("listeTypeLogement")[1]:
        lr.ctx.add(lr.p("listeTypeLogement"), "missing: at least one typeLogement")
    communes: list[str] = []
    key, elements = lr.elements("listeLocalisationSouhaite")
    for i, value in enumerate(elements):
        commune = value.get("commune") if _is_mapping(value) else value
        if isinstance(commune, Mapping):
            commune = commune.get("code")
        if commune is None or commune == "":
            path = lr.item_path(key, "localisationSouhaite", i)
            lr.ctx.add(f"{path}/commune" if lr.sep == "/" else f"{path}.commune", "missing")
        elif not (isinstance(commune, str) and _COMMUNE.fullmatch(commune.strip())):
            path = lr.item_path(key, "localisationSouhaite", i)
            lr.ctx.add(f"{path}/commune" if lr.sep == "/" else f"{path}.commune", "not a numeric INSEE code")
        elif commune.strip() not in communes:
            communes.append(commune.strip())
    if not elements:
        lr.ctx.add(lr.p("listeLocalisationSouhaite"), "missing: at least one commune")
    return {
        "demandeElargie": bool(lr.boolean("demandeElargie", required=True)),
        "typesLogement": types,
        "communes": communes,
        "categorie": lr.code(
            "categorieLogement", "CategorieLogementRecherche", "ListeCategorieLogementRecherche"
        ),
        "loyerMaximum": lr.amount("loyerMaximum"),
    }
