"""`cdc-json`: change events of a landlord ERP database in the Debezium envelope.

Two tables (documented for ERP teams in docs/normalise.md):
- `demande`: one row per application; a few key columns and `document`, the demand in the SNE
  vocabulary (the interfaceNuu `demandeLogement` body as JSON) -> fr.gp.Demande;
- `evenement`: one row per processing event; `type_evenement` and `donnees`, the event data with
  the canonical field names -> fr.gp.Decision.
op c/u/r -> operation CREATION/MODIFICATION/LECTURE; d -> SUPPRESSION (built from `before`).
A Debezium tombstone (JSON null) yields nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.errors import Problem
from gateway.model.canonical import DECISION, DEMANDE, CanonicalRecord
from gateway.normalise.common import Ctx, Node, event_id, length, provenance, unique
from gateway.normalise.demande import map_demande
from gateway.normalise.events import ORG_RE, build_decision
from gateway.normalise.jsondocs import read_json_parts
from gateway.normalise.outcome import INTERNAL_ERROR, Outcome, Rejection

__all__ = ["OPERATIONS", "TABLES", "normalise_cdc_json"]

SOURCE = "cdc-json"
OPERATIONS = {"c": "CREATION", "u": "MODIFICATION", "r": "LECTURE", "d": "SUPPRESSION"}
TABLES = ("demande", "evenement")
# columns of the `demande` table -> SNE names inside the demand document
DEMANDE_COLUMNS = {
    "num_unique": "numUnique",
    "num_guichet": "numGuichet",
    "date_creation_demande": "dateCreationDemande",
    "date_dernier_renouvellement": "dateDernierRenouvellement",
}


def normalise_cdc_json(data: bytes, received_at: datetime) -> list[Outcome]:
    out: list[Outcome] = []
    for part in read_json_parts(data):
        if part.problem is not None:
            out.append(Rejection((part.problem,), part.locator, part.fragment))
            continue
        if part.value is None:  # tombstone
            continue
        ctx = Ctx()
        try:  # one part's internal error rejects that part only
            record = _one(ctx, part.value, received_at)
        except RecursionError:
            ctx.add("$", "too deeply nested")
            record = None
        except Exception as exc:  # noqa: BLE001 - the contract: bad input never escapes
            ctx.add("$", INTERNAL_ERROR, type(exc).__name__)
            record = None
        if not ctx.ok or record is None:
            problems = unique(ctx.problems) or [Problem("$", "not a change event")]
            out.append(Rejection(tuple(problems), part.locator, part.fragment))
        else:
            out.append(record)
    return out


def _json_column(n: Node, name: str) -> Node | None:
    """A JSON column (io.debezium.data.Json arrives as text; also accept an object)."""
    raw = n.raw(name)
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            n.ctx.add(n.p(name), "malformed JSON")
            return None
        if not isinstance(raw, Mapping):
            n.ctx.add(n.p(name), "not a JSON object", type(raw).__name__)
            return None
        return Node(n.ctx, raw, n.p(name), sep=n.sep)
    return n.child(name, required=True)


def _one(ctx: Ctx, value: Any, received_at: datetime) -> CanonicalRecord | None:
    if not isinstance(value, Mapping):
        ctx.add("$", "not a Debezium change event", type(value).__name__)
        return None
    env = Node(ctx, value, "", sep=".")
    if "payload" in value:  # JsonConverter with schemas.enable=true
        payload = env.child("payload", required=True)
        if payload is None:
            return None
    else:
        payload = env
    op = payload.text("op", required=True, max_len=1)
    if op is None:
        return None
    if op not in OPERATIONS:
        ctx.add(payload.p("op"), "unknown Debezium op (c, u, r or d)", length(op))
        return None
    source = payload.child("source", required=True)
    if source is None:
        return None
    table = source.text("table", required=True, max_len=64)
    connector = source.text("name", max_len=128) or ""
    source_ts = source.timestamp("ts_ms")
    row = payload.child("before" if op == "d" else "after", required=True)
    if row is None or table is None:
        return None
    when = source_ts or received_at
    if table == "demande":
        return _demande(ctx, row, op, when)
    if table == "evenement":
        return _evenement(ctx, row, op=op, when=when, connector=connector, source_ts=source_ts)
    ctx.add(source.p("table"), f"unknown table (expected {' or '.join(TABLES)})", length(table))
    return None


def _demande(ctx: Ctx, row: Node, op: str, when: datetime) -> CanonicalRecord | None:
    reference = row.text("id", required=True, max_len=64)
    date_maj = row.timestamp("date_maj") or when
    document = _json_column(row, "document")
    if document is None:
        return None
    dl = dict(document.data)
    for column, name in DEMANDE_COLUMNS.items():
        if row.raw(column) is not None:
            dl[name] = row.raw(column)
    record = map_demande(Node(ctx, dl, document.path, sep="/"))
    renames = {f"{document.path}/{name}": row.p(column) for column, name in DEMANDE_COLUMNS.items()}
    ctx.problems[:] = [Problem(renames.get(p.path, p.path), p.reason, p.value) for p in ctx.problems]
    guichet = record["numGuichet"] or ""
    origine = row.text("origine", pattern=ORG_RE) or guichet
    record["provenance"] = provenance(
        origine=origine,
        saisie=row.text("saisie_par", pattern=ORG_RE) or origine,
        date_evenement=date_maj,
        date_saisie=date_maj,
        systeme=SOURCE,
        reference=reference,
        operation=OPERATIONS[op],
    )
    return CanonicalRecord.of(DEMANDE, record) if ctx.ok else None


def _evenement(
    ctx: Ctx, row: Node, *, op: str, when: datetime, connector: str, source_ts: datetime | None
) -> CanonicalRecord | None:
    reference = row.text("id", required=True, max_len=64)
    num = row.text("num_unique", required=True, pattern=r"[0-9A-Z]{18}")
    kind = row.code("type_evenement", "TypeEvenement", "TypeEvenement", required=True)
    origine = row.text("origine", required=True, pattern=ORG_RE)
    date_evenement = row.timestamp("date_evenement", required=True)
    date_saisie = row.timestamp("date_saisie") or when
    donnees = _json_column(row, "donnees") if row.has("donnees") else None
    if kind is None or origine is None or date_evenement is None:
        return None
    prov = provenance(
        origine=origine,
        saisie=row.text("saisie_par", pattern=ORG_RE) or origine,
        date_evenement=date_evenement,
        date_saisie=date_saisie,
        systeme=SOURCE,
        reference=reference,
        operation=OPERATIONS[op],
    )
    eid = event_id(SOURCE, connector, "evenement", reference, op, source_ts or date_saisie)
    record = build_decision(
        ctx,
        event_id=eid,
        num_unique=num,
        type_evenement=kind,
        provenance=prov,
        data=donnees,
        data_path=row.p("donnees"),
    )
    return CanonicalRecord.of(DECISION, record) if ctx.ok else None
