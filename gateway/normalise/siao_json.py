"""`siao-json`: SIAO events: a household referred (ORIENTATION_SIAO) or labelled (LABEL_PRIORITAIRE).

The SIAO is the labelling body (`organismeLabellisant`). Violence categories of the label go to
`labelViolences`, health ones to `labelSante` (see gateway.normalise.events). Format in
docs/normalise.md.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from gateway.errors import Problem
from gateway.model.canonical import DECISION, CanonicalRecord
from gateway.normalise.common import Ctx, Node, event_id, length, provenance, unique
from gateway.normalise.events import ORG_RE, build_decision
from gateway.normalise.jsondocs import read_json_parts
from gateway.normalise.outcome import INTERNAL_ERROR, Outcome, Rejection

__all__ = ["SIAO_EVENTS", "json_events", "normalise_siao_json"]

SOURCE = "siao-json"
SIAO_EVENTS = {"ORIENTATION_SIAO": "orientation", "LABEL_PRIORITAIRE": "label"}

OneEvent = Callable[[Ctx, Node, datetime], dict[str, Any] | None]


def json_events(data: bytes, received_at: datetime, one: OneEvent) -> list[Outcome]:
    """Each JSON document of `data` -> one Decision (or a Rejection listing its problems)."""
    out: list[Outcome] = []
    for part in read_json_parts(data):
        if part.problem is not None:
            out.append(Rejection((part.problem,), part.locator, part.fragment))
            continue
        ctx = Ctx()
        if not isinstance(part.value, dict):
            ctx.add("$", "not a JSON object", type(part.value).__name__)
            out.append(Rejection(tuple(ctx.problems), part.locator, part.fragment))
            continue
        try:  # one part's internal error rejects that part only
            record = one(ctx, Node(ctx, part.value, "", sep="."), received_at)
        except RecursionError:
            ctx.add("$", "too deeply nested")
            record = None
        except Exception as exc:  # noqa: BLE001 - the contract: bad input never escapes
            ctx.add("$", INTERNAL_ERROR, type(exc).__name__)
            record = None
        if ctx.ok and record is not None:
            out.append(CanonicalRecord.of(DECISION, record))
        else:
            problems = unique(ctx.problems) or [Problem("$", "not an event")]
            out.append(Rejection(tuple(problems), part.locator, part.fragment))
    return out


def _siao_event(ctx: Ctx, n: Node, received_at: datetime) -> dict[str, Any] | None:
    ident = n.text("idEvenement", required=True, max_len=64)
    kind = n.text("typeEvenement", required=True, max_len=40)
    siao = n.text("siao", required=True, pattern=ORG_RE)
    num = n.text("numUnique", required=True, pattern=r"[0-9A-Z]{18}")
    when = n.timestamp("dateEvenement", required=True)
    saisie = n.text("saisiePar", pattern=ORG_RE)
    date_saisie = n.timestamp("dateSaisie") or received_at
    if kind is not None and kind not in SIAO_EVENTS:
        kinds = " or ".join(SIAO_EVENTS)
        ctx.add(n.p("typeEvenement"), f"unknown code for a SIAO event ({kinds})", length(kind))
        return None
    if kind is None or siao is None or when is None:
        return None
    field = SIAO_EVENTS[kind]
    data = n.child(field)
    if data is not None:  # the SIAO itself referred / labelled the household
        if field == "label" and not data.has("organismeLabellisant"):
            data.data = {**data.data, "organismeLabellisant": siao}
        if field == "orientation" and not data.has("siao"):
            data.data = {**data.data, "siao": siao}
    prov = provenance(
        origine=siao,
        saisie=saisie or siao,
        date_evenement=when,
        date_saisie=date_saisie,
        systeme=SOURCE,
        reference=ident,
    )
    eid = event_id(SOURCE, siao, ident)
    return build_decision(
        ctx,
        event_id=eid,
        num_unique=num,
        type_evenement=kind,
        provenance=prov,
        data=data,
        data_path=n.p(field),
    )


def normalise_siao_json(data: bytes, received_at: datetime) -> list[Outcome]:
    return json_events(data, received_at, _siao_event)
