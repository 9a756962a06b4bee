"""The route flow's part of an erasure (pure): to whom the `fr.gp.Effacement` goes, and what it says.

On the erasure tombstone of an application (docs/retention.md), every actor that received anything
about it gets one `fr.gp.Effacement` on its topic, keyed like what it received: the numéro unique
for a nominative view, the application's pseudonym for a pseudonymised one (a statistique recipient
never saw the numéro unique and must not learn it from its erasure). The recipients come from the
route state (`ScopeState.recipients` / `.pseudonymous`, filled by the router at each delivery), not
from the current scope: an actor that left the application's scope since still holds what it got.

Why the policy's classes do not apply: an Effacement is not a view of canonical data. It carries no
field of the household (no `fr.gp.Demande` / `fr.gp.Decision` value), only the key the recipient
already holds, two dates of the gateway's own retention clock, the time and who erased it; no role
is refused an erasure of what it was given. Nor is it an audited disclosure: it discloses nothing
(the audit entry of the erasure is written by the retention flow).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import date, datetime

from gateway.codec.avro import AvroCodec, load_schemas
from gateway.model.envelope import cloudevent_headers
from gateway.policy.derive import pseudonym
from gateway.policy.router import H_POLICY_VERSION, H_VIEW_FINGERPRINT, H_VIEW_SCHEMA, Router
from gateway.policy.scope import DEMANDE, ScopeState

__all__ = [
    "EFFACEMENT",
    "Erasure",
    "effacement_record",
    "erasure_notices",
    "legacy_recipients",
    "recipients_of",
]

EFFACEMENT = "fr.gp.Effacement"
CE_SOURCE = "gp-gateway/retention"
_CE_NAMESPACE = uuid.UUID("6c1f2b0e-3d8a-4f5c-9a7e-1b2d3c4e5f60")
ERASURE_HEADER = "gp.erasure"  # gateway.retention.protocol.ERASURE_HEADER (policy does not import it)


@dataclass(frozen=True)
class Erasure:
    """One Effacement to send: to these actors, under this key."""

    actors: tuple[str, ...]
    key: bytes
    value: bytes  # single-object framed fr.gp.Effacement
    headers: tuple[tuple[str, bytes], ...]


def recipients_of(state: ScopeState, known: Collection[str]) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    """(nominative recipients, pseudonymous recipients, how many recorded ones are no longer actors
    of the policy): every actor that received anything about the application, in `known` actors."""
    named = tuple(a for a in state.recipients if a in known)
    pseudo = tuple(a for a in state.pseudonymous if a in known)
    gone = sum(1 for a in (*state.recipients, *state.pseudonymous) if a not in known)
    return named, pseudo, gone


def legacy_recipients(state: ScopeState, num_unique: str, router: Router) -> ScopeState:
    """`state` (stored before recipients were recorded) with the recipients it most likely had: the
    actors its scope gives the application now, and the organisations linked to it (designating,
    labelling, commissions, SIAO). Best effort for states older than `ScopeState.recipients`."""
    policy = router.policy
    ids = [
        a for _, _, chunk in router.index.in_scope(DEMANDE, {"numUnique": num_unique}, state) for a in chunk
    ]
    linked = (
        *state.designataires,
        *state.labellers,
        *state.violence_labellers,
        *state.commissions,
        *state.siao_links,
    )
    ids += [router.index.resolve(org) for org in linked]
    known = [a for a in dict.fromkeys(ids) if a in policy.actors]
    named = tuple(a for a in known if policy.roles[policy.actors[a].role].nominative)
    pseudo = tuple(a for a in known if not policy.roles[policy.actors[a].role].nominative)
    return replace(state, recipients=named, pseudonymous=pseudo)


def effacement_record(
    num_unique: str, *, radiation: date, due: date, now: datetime, par: str
) -> dict[str, object]:
    """The fr.gp.Effacement of an actor topic: the key the actor holds, the dates, no store."""
    return {
        "numUnique": num_unique,
        "dateRadiation": radiation,
        "dateEffacement": due,
        "time": now,
        "par": par,
        "stores": [],
    }


def erasure_notices(
    state: ScopeState,
    num_unique: str,
    *,
    known: Collection[str],
    secret: bytes,
    radiation: date,
    due: date,
    now: datetime,
    par: str,
    request: str,
    policy_version: str,
    codec: AvroCodec | None = None,
) -> tuple[list[Erasure], int]:
    """The Effacements to send for `num_unique` (at most two: one keyed by the numéro unique, one by
    its pseudonym) and how many recorded recipients are no longer actors of the policy."""
    codec = codec or load_schemas().codec(EFFACEMENT)
    named, pseudo, gone = recipients_of(state, known)
    out = []
    for actors, subject in ((named, num_unique), (pseudo, pseudonym(num_unique, secret) or "")):
        if not actors:
            continue
        record = effacement_record(subject, radiation=radiation, due=due, now=now, par=par)
        ce_id = uuid.uuid5(_CE_NAMESPACE, f"{subject}/{request}")
        headers = (
            (H_POLICY_VERSION, policy_version.encode()),
            (H_VIEW_FINGERPRINT, codec.fingerprint_hex.encode()),
            (H_VIEW_SCHEMA, EFFACEMENT.encode()),
            (ERASURE_HEADER, request.encode()),
            *cloudevent_headers(
                source=CE_SOURCE,
                type_=EFFACEMENT,
                subject=subject,
                time=now,
                id_=str(ce_id),
                dataschema=EFFACEMENT,
            ),
        )
        out.append(Erasure(actors, subject.encode(), codec.encode_framed_checked(record), headers))
    return out, gone
