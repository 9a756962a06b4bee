"""The console's web application (aiohttp, the web stack faust already brings) and its collector.

Every page under /console/ needs a session: an anonymous request is redirected (303) to the login
page. `/health` and `/metrics` stay open for probes and Prometheus. Actions (logout, replay) are
POSTs that carry the session's CSRF token. The audit lookup is refused (403) to any role but
`auditeur`; a replay to an account whose `replay` patterns do not match the topic.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from gateway.console import sources
from gateway.console.accounts import Accounts
from gateway.console.groups import GroupSample, GroupStatus, evaluate
from gateway.console.history import History, increases, per_minute
from gateway.console.pages import chart, h, layout, login_page, table
from gateway.console.sessions import LoginLimiter, Session, Sessions
from gateway.settings import GatewaySettings

__all__ = ["Console", "build_app"]

log = logging.getLogger("gateway.console")
COOKIE = "gp_console"
_STATIC = {"console.js": "application/javascript"}
Clock = Callable[[], float]


@cache
def _plotly_js() -> bytes:
    from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]  # noqa: PLC0415 - 4 MB, on first use

    return str(get_plotlyjs()).encode()


def _static(name: str) -> bytes:
    from importlib.resources import files  # noqa: PLC0415

    return (files("gateway") / "data" / "console" / name).read_bytes()


@dataclass
class Console:
    settings: GatewaySettings
    accounts: Accounts
    history: History
    scrape_urls: list[str]
    interval_s: float = 60.0
    window: int = 10
    clock: Clock = time.time
    sessions: Sessions = field(default_factory=Sessions)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    last_ok: float | None = None
    last_error: str | None = None
    statuses: dict[str, GroupStatus] = field(default_factory=dict)
    _dlq_cache: tuple[float, list[sources.DeadLetterSummary]] | None = None

    def __post_init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.collections = Counter(
            "gp_console_collections", "Collections of the console.", ["result"], registry=self.registry
        )
        self.group_status = Gauge(
            "gp_console_groups", "Consumer groups by Burrow-like status.", ["status"], registry=self.registry
        )
        saved = self.history.get_state("groups")
        if saved:
            for g, s in json.loads(saved).items():
                self.statuses[g] = GroupStatus(s["status"], s["reason"], s["lag"], s["last_commit_ts"])

    # -- collection ---------------------------------------------------------------------------
    def collect_once(self) -> None:
        """One sample of everything (blocking: run it in a thread)."""
        now = self.clock()
        text, failed = sources.scrape(self.scrape_urls)
        values = sources.series_from_metrics(text) if text else {}
        groups = sources.group_offsets(self.settings)
        for group, (committed, lag) in groups.items():
            values[f"group/{group}/committed"] = float(committed)
            values[f"group/{group}/lag"] = float(lag)
        previous = self.history.latest_ts()
        if previous is not None and previous < now:
            # a series seen for the first time started from 0 at the previous sample (a counter is
            # only exported once incremented): without this its first records would not be charted
            known = set(self.history.names())
            self.history.record(previous, {k: 0.0 for k in values if k not in known})
        self.history.record(now, values)
        self._judge(groups, now)
        self.last_ok = now
        self.last_error = f"{len(failed)} metrics endpoint(s) did not answer" if failed else None

    def _judge(self, groups: dict[str, tuple[int, int]], now: float) -> None:
        since = now - self.window * self.interval_s
        last_commits: dict[str, float] = json.loads(self.history.get_state("last_commit") or "{}")
        for group in groups:
            pts = self.history.series([f"group/{group}/committed", f"group/{group}/lag"], since)
            committed, lags = pts[f"group/{group}/committed"], pts[f"group/{group}/lag"]
            samples = [
                GroupSample(t, int(c), int(lag)) for (t, c), (_, lag) in zip(committed, lags, strict=False)
            ]
            moved = len(samples) >= 2 and samples[-1].committed != samples[-2].committed
            first_idle = group not in last_commits and bool(samples) and samples[-1].lag == 0
            if moved or first_idle:
                last_commits[group] = samples[-1].ts
            self.statuses[group] = evaluate(samples, last_commits.get(group), now)
        self.history.put_state("last_commit", json.dumps(last_commits))
        self.history.put_state(
            "groups",
            json.dumps({g: _status_dict(s) for g, s in self.statuses.items()}),
        )
        for status in ("OK", "WARN", "ERR", "UNKNOWN"):
            self.group_status.labels(status=status).set(
                sum(1 for s in self.statuses.values() if s.status == status)
            )

    async def run_collector(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.collect_once)
                self.collections.labels(result="ok").inc()
            except Exception as exc:  # noqa: BLE001 - the console keeps serving; /health says why
                self.collections.labels(result="failed").inc()
                self.last_error = f"collection failed: {type(exc).__name__}"
                log.warning("console collection failed: %s", type(exc).__name__)
            await asyncio.sleep(self.interval_s)

    def dead_letters(self) -> list[sources.DeadLetterSummary]:
        now = self.clock()
        if self._dlq_cache is None or now - self._dlq_cache[0] > 30:
            self._dlq_cache = (now, sources.read_dead_letters(self.settings))
        return self._dlq_cache[1]


def _status_dict(s: GroupStatus) -> dict[str, Any]:
    return {"status": s.status, "reason": s.reason, "lag": s.lag, "last_commit_ts": s.last_commit_ts}


# -- web ----------------------------------------------------------------------------------------
Handler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]
Series = dict[str, list[tuple[float, float]]]


def build_app(console: Console) -> web.Application:
    app = web.Application(middlewares=[_headers])
    app["console"] = console

    def page(
        handler: Handler, *, role: str | None = None
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            session = console.sessions.get(request.cookies.get(COOKIE), console.clock())
            if session is None:
                raise web.HTTPSeeOther(f"/console/login?next={request.path}")
            if role is not None and session.role != role:
                return _html(
                    session,
                    request.path,
                    "Accès refusé",
                    "<p>Cette page est réservée au rôle auditeur.</p>",
                    403,
                )
            if request.method == "POST":
                form = await request.post()
                if not console.sessions.csrf_ok(session, str(form.get("csrf") or "")):
                    return web.Response(status=403, text="CSRF token missing or wrong\n")
            return await handler(request, session)

        return wrapped

    app.router.add_get("/", _root)
    app.router.add_get("/health", _health)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/console/static/{name}", _static_file)
    app.router.add_get("/console/login", _login_form)
    app.router.add_post("/console/login", _login)
    app.router.add_post("/console/logout", page(_logout))
    app.router.add_get("/console/", page(_overview))
    app.router.add_get("/console/groups", page(_groups))
    app.router.add_get("/console/dlq", page(_dlq))
    app.router.add_post("/console/dlq/replay", page(_replay))
    app.router.add_get("/console/audit", page(_audit, role="auditeur"))
    app.router.add_get("/console/policy", page(_policy))
    return app


@web.middleware
async def _headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
        " frame-ancestors 'none'; form-action 'self'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.path.startswith("/console/") and not request.path.startswith("/console/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


async def _root(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/console/")


def _console(request: web.Request) -> Console:
    c: Console = request.app["console"]
    return c


def _html(session: Session | None, path: str, title: str, body: str, status: int = 200) -> web.Response:
    text = layout(
        title, body, user=session.name if session else None, csrf=session.csrf if session else None, path=path
    )
    return web.Response(text=text, content_type="text/html", status=status)


async def _health(request: web.Request) -> web.Response:
    c = _console(request)
    now = c.clock()
    if c.last_ok is None:
        return web.Response(status=503, text="starting: no collection yet\n")
    if now - c.last_ok > 3 * c.interval_s + 30:
        return web.Response(status=500, text=f"no successful collection for {int(now - c.last_ok)} s\n")
    return web.Response(status=204)


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(_console(request).registry)
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def _static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name == "plotly.min.js":
        body = await asyncio.to_thread(_plotly_js)
        ctype = "application/javascript"
    elif name in _STATIC:
        body, ctype = _static(name), _STATIC[name]
    else:
        raise web.HTTPNotFound()
    return web.Response(body=body, content_type=ctype, headers={"Cache-Control": "public, max-age=86400"})


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/console/") and "//" not in value and "\\" not in value:
        return value
    return "/console/"


async def _login_form(request: web.Request) -> web.Response:
    return web.Response(
        text=login_page(next_path=_safe_next(request.query.get("next"))), content_type="text/html"
    )


async def _login(request: web.Request) -> web.Response:
    c = _console(request)
    form = await request.post()
    name, password = str(form.get("name") or "")[:64], str(form.get("password") or "")[:1024]
    keys = (f"addr:{request.remote}", f"name:{name}")
    now = c.clock()
    if c.limiter.blocked(keys, now):
        return web.Response(
            text=login_page("Trop de tentatives : réessayez plus tard."), content_type="text/html", status=429
        )
    account = await asyncio.to_thread(c.accounts.verify, name, password)
    if account is None:
        c.limiter.failed(keys, now)
        return web.Response(
            text=login_page("Identifiant ou mot de passe incorrect."), content_type="text/html", status=401
        )
    c.limiter.succeeded(keys)
    session = c.sessions.create(account.name, account.role, now)
    response = web.HTTPSeeOther(_safe_next(str(form.get("next") or "")))
    response.set_cookie(
        COOKIE, session.token, httponly=True, samesite="Strict", secure=request.secure, path="/"
    )
    raise response


async def _logout(request: web.Request, session: Session) -> web.Response:
    _console(request).sessions.drop(session.token)
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(COOKIE, path="/")
    raise response


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


async def _overview(request: web.Request, session: Session) -> web.Response:
    c = _console(request)
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
    return _html(session, "/console/", "Vue d'ensemble", body)


def _when(ts: float | None) -> str:
    return "jamais" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def _groups(request: web.Request, session: Session) -> web.Response:
    c = _console(request)
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
    return _html(session, "/console/groups", "Groupes de consommateurs", body)


def _may_replay(c: Console, session: Session, topic: str) -> bool:
    account = c.accounts.get(session.name)
    return account is not None and any(fnmatch.fnmatchcase(topic, p) for p in account.replay)


async def _dlq(request: web.Request, session: Session, notice: str = "") -> web.Response:
    c = _console(request)
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
    return _html(session, "/console/dlq", "Lettres mortes", "".join(parts))


async def _replay(request: web.Request, session: Session) -> web.Response:
    c = _console(request)
    topic = str((await request.post()).get("topic") or "")
    known = {s.topic for s in await asyncio.to_thread(c.dead_letters)}
    if topic not in known or not _may_replay(c, session, topic):
        return _html(
            session, "/console/dlq", "Rejeu refusé", "<p>Ce compte ne peut pas rejouer ce topic.</p>", 403
        )
    count = await asyncio.to_thread(sources.replay_topic, c.settings, topic)
    log.info("console: %s replayed %d dead letters of %s", session.name, count, topic)
    c._dlq_cache = None
    return await _dlq(request, session, notice=f"{count} lettre(s) morte(s) rejouée(s) depuis {topic}.")


async def _audit(request: web.Request, session: Session) -> web.Response:
    c = _console(request)
    numero = (request.query.get("numero") or "").strip().upper()
    form = (
        '<form method="get"><label>Numéro unique <input name="numero" pattern="[0-9A-Z]{18}" '
        f'value="{h(numero)}" required></label> <button>Chercher</button></form>'
    )
    if not numero:
        return _html(session, "/console/audit", "Audit : qui a reçu quoi", form)
    if len(numero) != 18 or not numero.isalnum():
        return _html(
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
    return _html(session, "/console/audit", "Audit : qui a reçu quoi", body)


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


async def _policy(request: web.Request, session: Session) -> web.Response:
    c = _console(request)
    info = await asyncio.to_thread(_policy_info, c.settings)
    body = (
        f"<p>Politique en vigueur : <strong>{h(info['version'])}</strong> ({h(info['views'])} vues).</p>"
        + table(["rôle", "vue", "empreinte"], info["rows"])
        + "<h2>Santé</h2>"
        + table(["service", "état"], info["health"])
    )
    return _html(session, "/console/policy", "Politique et santé", body)


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
