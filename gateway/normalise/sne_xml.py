"""`sne-xml`: the SNE interfaceNuu XML (versions 02.00 / 02.01) that landlord ERPs already produce.

One document = one application: a fr.gp.Demande, plus a fr.gp.Decision for a RAD file
(RADIATION, or DERADIATION when the motif code is empty) and for a REN file (RENOUVELLEMENT).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.codec.xml import element_to_tree, localname, parse_xml
from gateway.errors import Problem, RejectedMessage
from gateway.model.canonical import DECISION, DEMANDE, CanonicalRecord
from gateway.normalise.common import Ctx, Node, event_id, length, midnight, provenance, short_digest, unique
from gateway.normalise.demande import check_sne_mandatory, map_demande
from gateway.normalise.events import build_decision
from gateway.normalise.outcome import Outcome, Rejection

__all__ = ["NS", "VERSIONS", "normalise_sne_xml"]

NS = "http://nuu.application.i2/"
VERSIONS = ("02.00", "02.01")
SOURCE = "sne-xml"
OPERATIONS = {
    "CRE": "CREATION",
    "CRS": "CREATION",
    "MOD": "MODIFICATION",
    "REN": "MODIFICATION",
    "RAD": "MODIFICATION",
    "SUP": "SUPPRESSION",
    "DIS": "LECTURE",
    "RET": "LECTURE",
    "COP": "MODIFICATION",
}
# SNE-style element names of the radiation block -> canonical names read by the event mappers
RADIATION_NAMES = {"motif": "motifRadiation", "sousMotif": "sousMotifRadiation"}


def normalise_sne_xml(data: bytes, received_at: datetime) -> list[Outcome]:
    try:
        root = parse_xml(data)
        if localname(root) != "interfaceNuu" or not str(root.tag).startswith("{" + NS + "}"):
            return [
                Rejection((_p("$", "not an SNE interfaceNuu document (root element or namespace)"),), "$")
            ]
        tree = element_to_tree(root)
    except RejectedMessage as exc:
        return [Rejection(exc.problems, "$")]
    if not isinstance(tree, Mapping):
        return [Rejection((_p("$", "empty interfaceNuu document"),), "$")]
    ctx = Ctx()
    version = root.get("versionInterface")
    if version is None:
        ctx.add("interfaceNuu/@versionInterface", "missing")
    elif version not in VERSIONS:
        ctx.add("interfaceNuu/@versionInterface", "unsupported version (02.00 or 02.01)", length(version))
    top = Node(ctx, tree, "")
    entete = top.child("entete", required=True) or Node(ctx, {}, "entete")
    type_fichier = entete.code("typeFichier", "TypeFichier", "ListeTypeFichier", required=True)
    date_fichier = entete.timestamp("dateFichier", required=True)
    demande = top.child("demande", required=True)
    dl = (demande.child("demandeLogement", required=True) if demande else None) or Node(ctx, {}, "x")
    dl.path = "demandeLogement"
    record = map_demande(dl)
    reference = short_digest(data)  # the XML carries no guichet-side id: a digest of the document
    when = date_fichier or received_at
    guichet = record["numGuichet"] or ""
    record["provenance"] = provenance(
        origine=guichet,
        saisie=guichet,
        date_evenement=when,
        date_saisie=when,
        systeme=SOURCE,
        reference=reference,
        operation=OPERATIONS.get(type_fichier or "", "MODIFICATION"),
    )
    decisions = _decisions(ctx, dl, record, type_fichier, when)
    if ctx.ok:
        ctx.problems.extend(check_sne_mandatory(record))
    if not ctx.ok:
        return [Rejection(tuple(unique(ctx.problems)), "$")]
    out: list[Outcome] = [CanonicalRecord.of(DEMANDE, record)]
    out.extend(CanonicalRecord.of(DECISION, d) for d in decisions)
    return out


def _decisions(
    ctx: Ctx, dl: Node, record: dict[str, Any], type_fichier: str | None, when: datetime
) -> list[dict[str, Any]]:
    if type_fichier not in ("RAD", "REN"):
        return []
    num = record["numUnique"]
    if num is None and not dl.has("numUnique"):
        ctx.add(dl.p("numUnique"), f"missing (mandatory for a {type_fichier} file)")
    guichet = record["numGuichet"] or ""
    prov = dict(record["provenance"])
    if type_fichier == "REN":
        day = record["dateDernierRenouvellement"]
        if day is None and not dl.has("dateDernierRenouvellement"):
            ctx.add(dl.p("dateDernierRenouvellement"), "missing (mandatory for a REN file)")
        if day is not None:
            prov["dateEvenement"] = midnight(day)
        eid = event_id(SOURCE, guichet, num, "RENOUVELLEMENT", day)
        return [
            build_decision(
                ctx,
                event_id=eid,
                num_unique=num,
                type_evenement="RENOUVELLEMENT",
                provenance=prov,
                data=None,
                data_path=dl.p("dateDernierRenouvellement"),
            )
        ]
    rad = dl.child("radiation", required="missing (mandatory for a RAD file)")
    if rad is None:
        return []
    rad.names = RADIATION_NAMES
    motif_raw = rad.data.get("motifRadiation")
    day = rad.date("dateRadiation", required=True)
    if day is not None:
        prov["dateEvenement"] = midnight(day)
    deradiation = isinstance(motif_raw, str) and not motif_raw.strip()  # empty code = déradiation
    kind = "DERADIATION" if deradiation else "RADIATION"
    return [
        build_decision(
            ctx,
            event_id=event_id(SOURCE, guichet, num, kind, day),
            num_unique=num,
            type_evenement=kind,
            provenance=prov,
            data=None if deradiation else rad,
            data_path=rad.path,
        )
    ]


def _p(path: str, reason: str) -> Problem:
    return Problem(path, reason)
