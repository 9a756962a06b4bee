"""Processing events and decisions -> canonical fr.gp.Decision.

Each mapper reads one sub-record written with the canonical field names (the JSON formats and the
`evenement` CDC table use them; the SNE XML radiation block renames a few through `Node.names`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.normalise.common import CONTROL_CHARACTER, Ctx, Node, has_control, neutralise_formula
from gateway.normalise.demande import map_logement

__all__ = [
    "CAL_DECISION_LETTERS",
    "DEPARTEMENT_RE",
    "EVENT_FIELDS",
    "HEALTH_CATEGORIES",
    "ORG_RE",
    "VIOLENCE_CATEGORIES",
    "build_decision",
    "map_attribution",
    "map_event",
]

ORG_RE = r"\d{9}|G[0-9A-Z]{4}|[A-Z]{2,12}-[0-9A-Z]{1,14}"  # SIREN, guichet code, or actor id (CIA-…)
# a département: 01-19, 21-95 with Corsica 2A/2B (not 20), the DROM 971-976
DEPARTEMENT_RE = r"0[1-9]|1\d|2[1-9AB]|[3-8]\d|9[0-5]|97[1-6]"
HEALTH_CATEGORIES = frozenset({"HANDICAP", "SORTANT_ACT"})
VIOLENCE_CATEGORIES = frozenset({"VIOLENCES_FAMILIALES", "MARIAGE_FORCE", "PROSTITUTION", "TRAITE"})
# R441-3 a) to e): a CAL secretariat may write the letter instead of the symbol.
CAL_DECISION_LETTERS = {
    "a": "ATTRIBUTION",
    "b": "ATTRIBUTION_RANG",
    "c": "ATTRIBUTION_CONDITION_SUSPENSIVE",
    "d": "NON_ATTRIBUTION",
    "e": "IRRECEVABILITE",
}
NEEDS_MOTIFS = frozenset({"ATTRIBUTION_CONDITION_SUSPENSIVE", "NON_ATTRIBUTION", "IRRECEVABILITE"})


def _strings(n: Node, name: str) -> list[str]:
    raw = n.raw(name)
    if raw is None:
        return []
    if isinstance(raw, str):
        values: list[Any] = [v for v in raw.replace(",", "|").split("|") if v.strip()]
    elif isinstance(raw, list):
        values = raw
    else:
        n.ctx.add(n.p(name), "not a list", type(raw).__name__)
        return []
    out = []
    for i, v in enumerate(values):
        if not isinstance(v, str) or len(v) > 100:
            n.ctx.add(f"{n.p(name)}[{i}]", "not a short text", type(v).__name__)
        elif has_control(v.strip()):
            n.ctx.add(f"{n.p(name)}[{i}]", CONTROL_CHARACTER)
        else:
            out.append(neutralise_formula(v.strip()))
    return out


def _logement(n: Node, name: str, *, required: bool = False) -> dict[str, Any] | None:
    child = n.child(name, required=required)
    return map_logement(child) if child is not None else None


def map_attribution(n: Node) -> dict[str, Any]:
    return {
        "siren": n.text("siren", required=True, pattern=r"\d{9}"),
        "dateSignatureBail": n.date("dateSignatureBail", required=True),
        "dejaLocataire": n.code("dejaLocataire", "Booleen", "ListeBooleen") or "NONDOC",
        "logement": _logement(n, "logement", required=True),
        "accordCollectif": n.code("accordCollectif", "AccordCollectif", "ListeAccordCollectif") or "NONDOC",
        "daloPrioritaireUrgent": n.boolean("daloPrioritaireUrgent"),
        "contingent": n.code("contingent", "TypeReservataire", "ListeTypeReservataire", required=True),
        "contingentDesignataire": n.code(
            "contingentDesignataire", "TypeReservataire", "ListeTypeReservataire"
        ),
        "relogementAnru": n.boolean("relogementAnru"),
    }


def _radiation(n: Node) -> dict[str, Any]:
    motif = n.code("motif", "MotifRadiation", "ListeMotifsRadiation", required=True)
    att = n.child("attribution", required="missing (mandatory for RADATT)" if motif == "RADATT" else False)
    return {
        "motif": motif,
        "sousMotif": n.code(
            "sousMotif",
            "SousMotifIrrecevabilite",
            "ListeSousMotifRadiationIrrecevabilite",
            required="missing (mandatory for RADIRR)" if motif == "RADIRR" else False,
        ),
        "dateRadiation": n.date("dateRadiation", required=True),
        "attribution": map_attribution(att) if att is not None else None,
    }


def _visite(n: Node) -> dict[str, Any]:
    return {
        "dateVisite": n.timestamp("dateVisite", required=True),
        "logement": _logement(n, "logement", required=True),
    }


def _decision_cal(n: Node) -> dict[str, Any]:
    raw = n.raw("decision")
    if isinstance(raw, str) and raw.strip().lower() in CAL_DECISION_LETTERS:
        decision: str | None = CAL_DECISION_LETTERS[raw.strip().lower()]
    else:
        decision = n.code("decision", "TypeDecisionCal", "TypeDecisionCal (R441-3 a-e)", required=True)
    rang = n.integer(
        "rang",
        minimum=1,
        maximum=100,
        required="missing (mandatory for ATTRIBUTION_RANG)" if decision == "ATTRIBUTION_RANG" else False,
    )
    motifs = n.text(
        "motifs",
        max_len=1000,
        multiline=True,
        required=f"missing (mandatory for {decision})" if decision in NEEDS_MOTIFS else False,
    )
    return {
        "dateCommission": n.date("dateCommission", required=True),
        "commission": n.text("commission", required=True, max_len=64),
        "decision": decision,
        "rang": rang,
        "motifs": motifs,
        "piecesManquantes": _strings(n, "piecesManquantes"),
        "dateLimitePieces": n.date("dateLimitePieces"),
        "logement": _logement(n, "logement"),
    }


def _label(n: Node) -> dict[str, Any]:
    return {
        "categorie": n.code(
            "categorie", "CategoriePrioritaire", "CategoriePrioritaire (L441-1)", required=True
        ),
        "organismeLabellisant": n.text("organismeLabellisant", required=True, pattern=ORG_RE),
        "dateLabel": n.date("dateLabel", required=True),
        "dateFin": n.date("dateFin"),
        "contingentsEligibles": n.codes(
            "contingentsEligibles", "contingent", "TypeReservataire", "ListeTypeReservataire"
        ),
    }


MAPPERS: dict[str, tuple[str, Callable[[Node], dict[str, Any]]]] = {
    "PIECES_DEMANDEES": (
        "pieces",
        lambda n: {"pieces": _strings(n, "pieces"), "dateLimite": n.date("dateLimite")},
    ),
    "PIECES_RECUES": (
        "pieces",
        lambda n: {"pieces": _strings(n, "pieces"), "dateLimite": n.date("dateLimite")},
    ),
    "DOSSIER_COMPLET": (
        "pieces",
        lambda n: {"pieces": _strings(n, "pieces"), "dateLimite": n.date("dateLimite")},
    ),
    "DESIGNATION": (
        "designation",
        lambda n: {
            "designataire": n.text("designataire", required=True, pattern=ORG_RE),
            "contingent": n.code("contingent", "TypeReservataire", "ListeTypeReservataire", required=True),
            "logement": _logement(n, "logement", required=True),
        },
    ),
    "INSCRIPTION_CAL": (
        "inscriptionCal",
        lambda n: {
            "dateCommission": n.date("dateCommission", required=True),
            "commission": n.text("commission", required=True, max_len=64),
            "logement": _logement(n, "logement"),
        },
    ),
    "VISITE_PROPOSEE": ("visite", _visite),
    "VISITE_EFFECTUEE": ("visite", _visite),
    "DECISION_CAL": ("decisionCal", _decision_cal),
    "REFUS_DEMANDEUR": (
        "refus",
        lambda n: {
            "dateRefus": n.date("dateRefus", required=True),
            "motif": n.text("motif", max_len=1000, multiline=True),
            "logement": _logement(n, "logement"),
        },
    ),
    "BAIL_SIGNE": (
        "bail",
        lambda n: {
            "dateSignature": n.date("dateSignature", required=True),
            "logement": _logement(n, "logement", required=True),
        },
    ),
    "RADIATION": ("radiation", _radiation),
    "DECISION_DALO": (
        "decisionDalo",
        lambda n: {
            "commission": n.text("commission", required=True, max_len=64),
            "dateDecision": n.date("dateDecision", required=True),
            "sens": n.code("sens", "SensDecisionDalo", "SensDecisionDalo", required=True),
            "statut": n.code("statut", "StatutDalo", "ListeStatutDalo", required=True),
            "typologie": n.text("typologie", max_len=2, pattern=r"0[1-6]|2[1-6]|30|4\d|50"),
            "dateLimiteRelogement": n.date("dateLimiteRelogement"),
            "motifs": n.text("motifs", max_len=1000, multiline=True),
        },
    ),
    "LABEL_PRIORITAIRE": ("label", _label),
    "AVIS_COMMISSION": (
        "avis",
        lambda n: {
            "typeCommission": n.code("typeCommission", "TypeCommission", "TypeCommission", required=True),
            "commission": n.text("commission", required=True, max_len=64),
            "dateAvis": n.date("dateAvis", required=True),
            "avis": n.code("avis", "SensAvis", "SensAvis", required=True),
            "motifs": n.text("motifs", max_len=1000, multiline=True),
        },
    ),
    "ORIENTATION_SIAO": (
        "orientation",
        lambda n: {
            "siao": n.text("siao", required=True, pattern=ORG_RE),
            "dateOrientation": n.date("dateOrientation", required=True),
            "enHebergement": bool(n.boolean("enHebergement", required=True)),
            "departement": n.text("departement", pattern=DEPARTEMENT_RE),
            "structure": n.text("structure", max_len=200),
        },
    ),
}
EVENT_FIELDS: dict[str, str] = {k: v[0] for k, v in MAPPERS.items()}


def map_event(type_evenement: str, n: Node | None) -> tuple[str, dict[str, Any]] | None:
    """(Decision field, sub-record) of an event; None for events without data (DERADIATION...)."""
    entry = MAPPERS.get(type_evenement)
    if entry is None:
        return None
    field, mapper = entry
    if n is None:
        return None
    sub = mapper(n)
    if field == "label":
        cat = sub.get("categorie")
        if cat in HEALTH_CATEGORIES:
            field = "labelSante"
        elif cat in VIOLENCE_CATEGORIES:
            field = "labelViolences"
    return field, sub


def build_decision(
    ctx: Ctx,
    *,
    event_id: str,
    num_unique: str | None,
    type_evenement: str,
    provenance: dict[str, Any],
    data: Node | None,
    data_path: str,
) -> dict[str, Any]:
    """A Decision record; problems (a missing data block...) go to ctx."""
    record: dict[str, Any] = {
        "eventId": event_id,
        "numUnique": num_unique,
        "typeEvenement": type_evenement,
        "provenance": provenance,
    }
    for field in {*EVENT_FIELDS.values(), "labelSante", "labelViolences"}:
        record[field] = None
    if type_evenement in MAPPERS and data is None:
        ctx.add(data_path, f"missing (data of a {type_evenement} event)")
    mapped = map_event(type_evenement, data)
    if mapped is not None:
        record[mapped[0]] = mapped[1]
    return record
