"""The console's pages after login: overview, consumer groups, dead letters (and replay), audit
lookup, policy and health. Each handler gets the request and the checked session (gateway.console.app
wraps them); they read plain data from the Console and render it with gateway.console.pages."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.console import sources
from gateway.console.history import increases, per_minute
from gateway.console.pages import chart, h, layout, table
from gateway.console.sessions import Session
from gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from gateway.console.app import Console

__all__ = ["audit", "dead_letters", "groups", "overview", "policy", "replay"]

log = logging.getLogger("gateway.console")
Series = dict[str, list[tuple[float, float]]]


def console_of(request: web.Request) -> Console:
    c: Console = request.app["console"]
    return c


def html(session: Session | None, path: str, title: str, body: str, status: int = 200) -> web.Response:
    text = layout(
        title, body, user=session.name if session else None, csrf=session.csrf if session else None, path=path
    )
    return web.Response(text=text, content_type="text/html", status=status)


def _sum_by_label(
    points: dict[str, list[tuple[float, float]]],
    prefix: str,
    label_of: Callable[[str], str],
    transform: Callable[[list[tuple[float, float]]], list[tuple[float, float]]],
) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, dict[float, float]] = {}
    for name, pts in points.items():
        if name.startswith(prefix):
            merged = out.setdefault(label_of(name), {})
            for t, v in transform(pts):
                merged[t] = merged.get(t, 0.0) + v
    return {label: sorted(m.items()) for label, m in out.items()}


async def overview(request: web.Request, session: Session) -> web.Response:
    c = console_of(request)
    hours = max(1, min(int(request.query.get("hours", "6") or 6), 48))
    since = c.clock() - hours * 3600
    names = [n for n in c.history.names() if n.startswith(("in/", "out/", "dlq/", "sne/"))]
    pts = await asyncio.to_thread(c.history.series, names, since)

    def source(n: str) -> str:
        return n.split("/", 2)[2]

    def last_part(n: str) -> str:
        return n.rsplit(".", 1)[-1].strip("[]")

    def sne_label(n: str) -> str:
        return n.split("/", 2)[1].removeprefix("gp_sne_") + " " + n.split("/", 2)[2]

    def charted(
        keep: Callable[[str], bool], prefix: str, label: Callable[[str], str]
    ) -> tuple[Series, Series]:
        chosen = {k: v for k, v in pts.items() if keep(k)}
        return _sum_by_label(chosen, prefix, label, per_minute), _sum_by_label(
            chosen, prefix, label, increases
        )

    ingest = (lambda k: k.startswith("in/ingest/")), (lambda k: k.startswith("dlq/ingest/"))
    inputs, inputs_total = charted(ingest[0], "in/ingest/", lambda n: "entrées " + source(n))
    dead, dead_total = charted(ingest[1], "dlq/ingest/", lambda n: "lettres mortes " + source(n))
    per_source = {**inputs, **dead}
    canonical, _ = charted(lambda k: ".canonical." in k, "out/", last_part)
    by_role, _ = charted(lambda k: ".actor." in k, "out/", last_part)
    sne, _ = charted(lambda k: k.startswith("sne/"), "sne/", sne_label)
    totals = [
        (label, int(sum(v for _, v in series)))
        for label, series in sorted({**inputs_total, **dead_total}.items())
    ]
    counts: dict[str, int] = {}
    for s in c.statuses.values():
        counts[s.status] = counts.get(s.status, 0) + 1
    body = (
        f'<p class="note">Dernière collecte : {h(_when(c.last_ok))}'
        f"{' — ' + h(c.last_error) if c.last_error else ''}. Fenêtre : {hours} h "
        "(<a href='?hours=1'>1 h</a> · <a href='?hours=6'>6 h</a> · <a href='?hours=24'>24 h</a>"
        " · <a href='?hours=48'>48 h</a>).</p>"
        "<h2>Groupes de consommateurs</h2>"
        + table(["statut", "groupes"], sorted(counts.items()), classes=sorted(counts))
        + "<h2>Entrées et lettres mortes par source</h2>"
        + table(["série", f"enregistrements sur {hours} h"], totals)
        + chart(
            "par-source", "Entrées et lettres mortes par minute", per_source, ylabel="enregistrements / min"
        )
        + chart("canonique", "Sorties canoniques par minute", canonical, ylabel="enregistrements / min")
        + chart("par-role", "Sorties vers les acteurs, par rôle", by_role, ylabel="enregistrements / min")
        + (
            chart("sne", "Appels SNE", sne, ylabel="par minute")
            if sne
            else "<p class='note'>Aucune métrique SNE collectée.</p>"
        )
    )
    return html(session, "/console/", "Vue d'ensemble", body)


def _when(ts: float | None) -> str:
    return "jamais" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def groups(request: web.Request, session: Session) -> web.Response:
    c = console_of(request)
    order = {"ERR": 0, "WARN": 1, "UNKNOWN": 2, "OK": 3}
    items = sorted(c.statuses.items(), key=lambda kv: (order.get(kv[1].status, 9), kv[0]))
    rows = [(s.status, g, s.lag, _when(s.last_commit_ts), s.reason) for g, s in items]
    body = (
        "<p class='note'>Statut jugé sur la tendance du retard et des validations d'offsets (à la manière de "
        "Burrow) ; retard = enregistrements qu'un consommateur read_committed recevrait encore.</p>"
        + table(
            ["statut", "groupe", "retard", "dernière validation", "raison"],
            rows,
            classes=[r[0] for r in rows],
        )
    )
    return html(session, "/console/groups", "Groupes de consommateurs", body)


def _may_replay(c: Console, session: Session, topic: str) -> bool:
    account = c.accounts.get(session.name)
    return account is not None and any(fnmatch.fnmatchcase(topic, p) for p in account.replay)


async def dead_letters(request: web.Request, session: Session, notice: str = "") -> web.Response:
    c = console_of(request)
    summaries = await asyncio.to_thread(c.dead_letters)
    parts = [f"<p class='note'>{h(notice)}</p>" if notice else ""]
    parts.append(
        table(
            ["topic", "lettres mortes", "première", "dernière", "classes d'erreur"],
            [
                (
                    s.topic,
                    f"{s.count}{'+' if s.truncated else ''}",
                    s.first or "",
                    s.last or "",
                    ", ".join(f"{k} × {v}" for k, v in s.classes.most_common()),
                )
                for s in summaries
            ],
        )
    )
    for s in summaries:
        if not s.count:
            continue
        parts.append(f"<h2>{h(s.topic)}</h2>")
        parts.append(
            table(["chemin", "raison", "nombre"], [(p, r, n) for (p, r), n in s.problems.most_common(50)])
        )
        if _may_replay(c, session, s.topic):
            parts.append(
                '<form method="post" action="/console/dlq/replay">'
                f'<input type="hidden" name="csrf" value="{h(session.csrf)}">'
                f'<input type="hidden" name="topic" value="{h(s.topic)}">'
                f"<button>Rejouer les {s.count} lettres mortes de {h(s.topic)}</button></form>"
            )
    parts.append("<p class='note'>Le contenu des lettres mortes n'est jamais affiché.</p>")
    return html(session, "/console/dlq", "Lettres mortes", "".join(parts))


async def replay(request: web.Request, session: Session) -> web.Response:
    c = console_of(request)
    topic = str((await request.post()).get("topic") or "")
    known = {s.topic for s in await asyncio.to_thread(c.dead_letters)}
    if topic not in known or not _may_replay(c, session, topic):
        return html(
            session, "/console/dlq", "Rejeu refusé", "<p>Ce compte ne peut pas rejouer ce topic.</p>", 403
        )
    count = await asyncio.to_thread(sources.replay_topic, c.settings, topic)
    log.info("console: %s replayed %d dead letters of %s", session.name, count, topic)
    c.forget_dead_letters()
    notice = f"{count} lettre(s) morte(s) rejouée(s) depuis {topic}."
    return await dead_letters(request, session, notice=notice)


async def audit(request: web.Request, session: Session) -> web.Response:
    c = console_of(request)
    numero = (request.query.get("numero") or "").strip().upper()
    form = (
        '<form method="get"><label>Numéro unique <input name="numero" pattern="[0-9A-Z]{18}" '
        f'value="{h(numero)}" required></label> <button>Chercher</button></form>'
    )
    if not numero:
        return html(session, "/console/audit", "Audit : qui a reçu quoi", form)
    if len(numero) != 18 or not numero.isalnum():
        return html(
            session,
            "/console/audit",
            "Audit : qui a reçu quoi",
            form + "<p class='error'>Un numéro unique a 18 caractères.</p>",
            400,
        )
    rows = await asyncio.to_thread(_audit_rows, c.settings, numero)
    log.info("console: audit lookup by %s", session.name)  # the number itself is not logged
    body = form + (
        table(["date", "acteur", "schéma", "règle", "classes", "politique"], rows)
        if rows
        else f"<p>Aucune communication enregistrée pour {h(numero)}.</p>"
    )
    return html(session, "/console/audit", "Audit : qui a reçu quoi", body)


def _audit_rows(settings: GatewaySettings, numero: str) -> list[tuple[str, ...]]:
    from gateway.console.audit import read_audit  # noqa: PLC0415
    from gateway.topics import audit_topic  # noqa: PLC0415

    out: list[tuple[str, ...]] = []
    for e in read_audit(settings, audit_topic(settings.topic_prefix)):
        if e.get("numUnique") == numero:
            when = e["time"].isoformat() if isinstance(e.get("time"), datetime) else str(e.get("time"))
            out.append(
                (
                    when,
                    e["actor"],
                    str(e["schema"]).rsplit(".", 1)[-1],
                    e["rule"],
                    ", ".join(e["classes"]),
                    e["policyVersion"],
                )
            )
    return out


async def policy(request: web.Request, session: Session) -> web.Response:
    c = console_of(request)
    info = await asyncio.to_thread(_policy_info, c.settings)
    body = (
        f"<p>Politique en vigueur : <strong>{h(info['version'])}</strong> ({h(info['views'])} vues).</p>"
        + table(["rôle", "vue", "empreinte"], info["rows"])
        + "<h2>Santé</h2>"
        + table(["service", "état"], info["health"])
    )
    return html(session, "/console/policy", "Politique et santé", body)


def _policy_info(settings: GatewaySettings) -> dict[str, Any]:
    from gateway.broker.local import broker_answers  # noqa: PLC0415
    from gateway.policy.explain import all_views  # noqa: PLC0415
    from gateway.policy.model import load_policy  # noqa: PLC0415
    from gateway.policy.router import Router  # noqa: PLC0415

    policy = load_policy(settings.policy_file, secret=settings.pseudonymisation_secret)
    views = all_views(Router(policy))
    rows = sorted({(v.role, v.view.name, v.view.fingerprint_hex) for v in views})
    health = [("Kafka", "répond" if broker_answers(settings.bootstrap_servers, 2.0) else "injoignable")]
    if settings.schema_registry_url:
        health.append(
            ("registre de schémas", "répond" if _http_ok(settings.schema_registry_url) else "injoignable")
        )
    return {"version": policy.version, "views": len(views), "rows": rows, "health": health}


def _http_ok(url: str) -> bool:
    import urllib.request  # noqa: PLC0415

    if not url.startswith(("http://", "https://")):
        return False
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/subjects", timeout=3):  # noqa: S310 - checked above
            return True
    except OSError:
        return False
