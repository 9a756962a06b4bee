"""The policy part of `gateway demo` and `gateway schemas list`.

`gateway.cli.demo` runs the route flow in its worker, calls `step_route` after the drain step and
reports on `route_report_topics`; `gateway.cli.schemas list` prints `view_rows`.

`step_route` waits until the audit topic is quiet, then adds a summary to the demo's notes: records
per actor topic, disclosures audited, the policy version, and who received the first application.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from gateway.codec.avro import load_schemas
from gateway.codec.framing import decoder_for
from gateway.errors import RejectedMessage
from gateway.settings import GatewaySettings
from gateway.topics import actor_topic, audit_topic

__all__ = ["route_report_topics", "step_route", "view_rows"]


def _policy(settings: GatewaySettings) -> Any:
    from gateway.policy.model import load_policy  # noqa: PLC0415

    return load_policy(settings.policy_file, secret=settings.pseudonymisation_secret)


def route_report_topics(settings: GatewaySettings) -> list[str]:
    """Every actor topic of the running policy, then the audit topic."""
    policy = _policy(settings)
    p = settings.topic_prefix
    return [*(actor_topic(a, p) for a in sorted(policy.actors)), audit_topic(p)]


def view_rows() -> list[tuple[str, str]]:
    """(view schema name, fingerprint hex) of every view the default (or configured) policy can produce."""
    from gateway.policy.explain import all_views  # noqa: PLC0415
    from gateway.policy.router import Router  # noqa: PLC0415

    views = {
        info.view.name: info.view.fingerprint_hex for info in all_views(Router(_policy(GatewaySettings())))
    }
    return sorted(views.items())


def step_route(ctx: Any) -> None:
    """Demo step (a gateway.cli.demo DemoStep): summarise what the route flow delivered and audited."""
    from gateway.testing.kafka import consume_all  # noqa: PLC0415

    settings: GatewaySettings = ctx.settings
    policy = _policy(settings)
    audit = consume_all(settings.bootstrap_servers, audit_topic(settings.topic_prefix), quiet_ms=3000)
    codec = load_schemas().codec("fr.gp.AuditEntry")
    decoder = decoder_for(settings.schema_registry_url, {codec.fingerprint: codec})
    entries = []
    for m in audit:
        try:
            entries.append(decoder.decode(m.value or b"")[1])
        except RejectedMessage:
            continue
    per_actor = Counter(e["actor"] for e in entries)
    ctx.say(f"route: {len(entries)} disclosures audited under policy {policy.version}")
    ctx.notes.append(
        "policy: disclosures per actor: "
        + ", ".join(
            f"{a} ({policy.actors[a].role}) {n}" for a, n in sorted(per_actor.items()) if a in policy.actors
        )
    )
    # an example: the smallest numéro unique audited (the audit's read order varies between runs)
    first = min((str(e["numUnique"]) for e in entries if e.get("numUnique")), default=None)
    if first:
        who = sorted({e["actor"] for e in entries if e["numUnique"] == first})
        ctx.notes.append(f"policy: `gateway audit who-received {first}` -> {', '.join(who)}")
