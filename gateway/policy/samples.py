"""Fictitious canonical records for policy tests, cases and benchmarks (no real person)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from gateway.codec.avro import load_schemas

DEMANDE_SCHEMA, DECISION_SCHEMA = "fr.gp.Demande", "fr.gp.Decision"

__all__ = ["sample_decision", "sample_demande"]

_T0 = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)


def _provenance(origine: str) -> dict[str, Any]:
    return {
        "origine": origine,
        "saisie": origine,
        "dateEvenement": _T0,
        "dateSaisie": _T0,
        "systemeSource": "sne-xml",
        "referenceSource": "ERP-0001",
        "operation": "CREATION",
    }


def _personne(nom: str, prenom: str) -> dict[str, Any]:
    return {
        "civilite": "MADAME",
        "nom": nom,
        "nomPatronymique": None,
        "prenom": prenom,
        "dateNaissance": date(1990, 4, 2),
        "nationalite": None,
        "situationFamiliale": None,
        "lienDemandeur": None,
        "telPortable": "0600000000",
        "mel": "demo@example.invalid",
        "adressePostale": {
            "etranger": False,
            "numero": "1",
            "voie": "rue de l'Exemple",
            "complement": None,
            "codePostal": "35000",
            "commune": "35238",
            "ville": "Rennes",
            "pays": None,
        },
        "situationProfessionnelle": {
            "profession": "Agent",
            "typeContratTravail": None,
            "nomEmployeurPrincipal": "Employeur Demo",
            "etranger": False,
            "codePostal": "35000",
            "commune": "35238",
        },
        "revenuFiscal": {
            "anneeMoins1": 2025,
            "montantMoins1": Decimal("18000.00"),
            "anneeMoins2": None,
            "montantMoins2": None,
        },
        "ressourcesRecues": [],
        "ressourcesSante": [{"code": "AAH", "montant": Decimal("900.00")}],
        "ressourcesVersees": [],
        "ressourcesRecuesPersACharge": [],
        "ressourcesSantePersACharge": [],
        "ressourcesVerseesPersACharge": [],
    }


def _complete(schema: str, record: dict[str, Any]) -> dict[str, Any]:
    """Every field of the schema, missing ones with their defaults (as a decoded record has them)."""
    import fastavro  # noqa: PLC0415

    parsed = load_schemas().codec(schema).parsed
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    buf.seek(0)
    out: dict[str, Any] = fastavro.schemaless_reader(buf, parsed, parsed)  # type: ignore[assignment]
    return out


def sample_demande(
    num_unique: str = "035260100000000001",
    communes: tuple[str, ...] = ("35238",),
    *,
    elargie: bool = False,
    violences: bool = False,
    handicap: bool = True,
    origine: str = "200000001",
) -> dict[str, Any]:
    """A complete fr.gp.Demande with every sub-record set (so every class has data)."""
    demandeur = _personne("DEMO", "Alice")
    return _complete(
        DEMANDE_SCHEMA,
        {
            "numUnique": num_unique,
            "numGuichet": "G3501",
            "dateCreationDemande": date(2026, 1, 15),
            "dateDernierRenouvellement": None,
            "statut": "ACTIVE",
            "radiation": None,
            "demandeur": demandeur,
            "personneMorale": None,
            "cotitulaires": [_personne("DEMO", "Bob")],
            "personnesACharge": [
                {
                    "nom": "DEMO",
                    "prenom": "Chloe",
                    "dateNaissance": date(2018, 6, 1),
                    "sexe": None,
                    "lienParente": None,
                }
            ],
            "personnesANaitre": {"nombre": 1, "dateNaissancePrevue": None},
            "personnesEnGarde": [],
            "logementActuel": {
                "modelesLogement": ["LP"],
                "montantMensuelLoyer": Decimal("650.00"),
                "nombreHabitant": 4,
                "categorieLogement": None,
                "typeLogementActuel": None,
                "surface": 45.0,
                "proprietaire": "Propriétaire Demo",
                "estProprietaire": None,
            },
            "logementRecherche": {
                "demandeElargie": elargie,
                "typesLogement": ["T3"],
                "communes": list(communes),
                "categorie": None,
                "loyerMaximum": Decimal("550.00"),
            },
            "motifs": [],
            "motifsSante": ["HANDICAP"] if handicap else [],
            "violencesFamiliales": violences,
            "handicap": (
                {
                    "etat": "STABLE",
                    "capaciteMarche": None,
                    "naturesMoteur": [],
                    "naturesSensoriel": [],
                    "aidesTechniques": [],
                    "equipements": [],
                }
                if handicap
                else None
            ),
            "dalo": None,
            "provenance": _provenance(origine),
            "fichierSne": None,
        },
    )


def _logement(siren: str = "200000001", commune: str = "35238") -> dict[str, Any]:
    return {
        "rpls": "RPLS000001",
        "referenceBailleur": "LGT-1",
        "sirenBailleur": siren,
        "adresse": None,
        "commune": commune,
        "typeLogement": None,
        "surface": 60.0,
        "loyer": Decimal("480.00"),
        "zus": None,
    }


def sample_decision(
    kind: str,
    num_unique: str = "035260100000000001",
    *,
    origine: str = "200000001",
    event_id: str | None = None,
    **sub: Any,
) -> dict[str, Any]:
    """A fr.gp.Decision of type `kind`; `sub` overrides its sub-record fields (e.g. designataire=...)."""
    record: dict[str, Any] = {
        "eventId": event_id or f"evt-{kind.lower()}-{num_unique}",
        "numUnique": num_unique,
        "typeEvenement": kind,
        "provenance": _provenance(origine),
    }
    for name in (
        "pieces", "designation", "inscriptionCal", "visite", "decisionCal", "refus", "bail", "radiation",
        "decisionDalo", "label", "labelSante", "labelViolences", "avis", "orientation",
    ):  # fmt: skip
        record[name] = None
    d = date(2026, 2, 1)
    if kind == "DESIGNATION":
        record["designation"] = {
            "designataire": origine,
            "contingent": "COLACT",
            "logement": _logement(),
        } | sub
    elif kind == "DECISION_CAL":
        record["decisionCal"] = {
            "dateCommission": d, "commission": "200000001-CAL1", "decision": "ATTRIBUTION", "rang": 1,
            "motifs": None, "piecesManquantes": [], "dateLimitePieces": None, "logement": _logement(),
        } | sub  # fmt: skip
    elif kind == "AVIS_COMMISSION":
        record["avis"] = {
            "typeCommission": "CIA_COORDINATION", "commission": origine, "dateAvis": d, "avis": "FAVORABLE",
            "motifs": "Motifs demo",
        } | sub  # fmt: skip
    elif kind == "ORIENTATION_SIAO":
        record["orientation"] = {
            "siao": origine, "dateOrientation": d, "enHebergement": True, "departement": "35",
            "structure": "CHRS Demo",
        } | sub  # fmt: skip
    elif kind == "LABEL_PRIORITAIRE":
        target = sub.pop("_field", "label")
        record[target] = {
            "categorie": "VIOLENCES_FAMILIALES" if target == "labelViolences" else "MAL_LOGE",
            "organismeLabellisant": origine, "dateLabel": d, "dateFin": None, "contingentsEligibles": [],
        } | sub  # fmt: skip
    elif kind == "RADIATION":
        record["radiation"] = {
            "motif": "RADATT", "sousMotif": None, "dateRadiation": d,
            "attribution": {
                "siren": "200000001", "dateSignatureBail": d, "dejaLocataire": "NON", "logement": _logement(),
                "accordCollectif": "AUCUN", "daloPrioritaireUrgent": None, "contingent": "COLACT",
                "contingentDesignataire": None, "relogementAnru": None,
            },
        } | sub  # fmt: skip
    elif kind == "BAIL_SIGNE":
        record["bail"] = {"dateSignature": d, "logement": _logement()} | sub
    return _complete(DECISION_SCHEMA, record)
