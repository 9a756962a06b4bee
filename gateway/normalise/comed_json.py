"""`comed-json`: decisions of the DALO mediation commission (COMED), one DECISION_DALO each.

Format in docs/normalise.md: the decision fields use the canonical names of fr.gp.DecisionDalo,
plus the decision id, the numéro unique and the secretariat's SIREN.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.normalise.common import Ctx, Node, event_id, midnight, provenance
from gateway.normalise.events import ORG_RE, build_decision
from gateway.normalise.outcome import Outcome
from gateway.normalise.siao_json import json_events

__all__ = ["normalise_comed_json"]

SOURCE = "comed-json"


def _comed_decision(ctx: Ctx, n: Node, received_at: datetime) -> dict[str, Any] | None:
    ident = n.text("idDecision", required=True, max_len=64)
    secretariat = n.text("secretariat", required=True, pattern=ORG_RE)
    num = n.text("numUnique", required=True, pattern=r"[0-9A-Z]{18}")
    saisie = n.text("saisiePar", pattern=ORG_RE)
    date_saisie = n.timestamp("dateSaisie") or received_at
    day = n.date("dateDecision")  # also checked (required) by the DECISION_DALO mapper
    if secretariat is None or day is None:  # still map the decision, to list all its problems
        build_decision(
            ctx,
            event_id="",
            num_unique=num,
            type_evenement="DECISION_DALO",
            provenance={},
            data=n,
            data_path="$",
        )
        return None
    prov = provenance(
        origine=secretariat,
        saisie=saisie or secretariat,
        date_evenement=midnight(day),
        date_saisie=date_saisie,
        systeme=SOURCE,
        reference=ident,
    )
    eid = event_id(SOURCE, secretariat, ident)
    return build_decision(
        ctx,
        event_id=eid,
        num_unique=num,
        type_evenement="DECISION_DALO",
        provenance=prov,
        data=n,
        data_path="$",
    )


def normalise_comed_json(data: bytes, received_at: datetime) -> list[Outcome]:
    return json_events(data, received_at, _comed_decision)
