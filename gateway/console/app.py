"""The console's web application (aiohttp, the web stack faust already brings) and its collector.

Every page under /console/ needs a session: an anonymous request is redirected (303) to the login
page. `/health` and `/metrics` stay open for probes and Prometheus. Actions (logout, replay) are
POSTs that carry the session's CSRF token. The audit lookup is refused (403) to any role but
`auditeur`; a replay to an account whose `replay` patterns do not match the topic.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from gateway.console import sources, views
from gateway.console.accounts import Accounts
from gateway.console.groups import GroupSample, GroupStatus, evaluate
from gateway.console.history import History
from gateway.console.pages import login_page
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

    def forget_dead_letters(self) -> None:
        self._dlq_cache = None

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
                return views.html(
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
    app.router.add_get("/console/", page(views.overview))
    app.router.add_get("/console/groups", page(views.groups))
    app.router.add_get("/console/dlq", page(views.dead_letters))
    app.router.add_post("/console/dlq/replay", page(views.replay))
    app.router.add_get("/console/audit", page(views.audit, role="auditeur"))
    app.router.add_get("/console/policy", page(views.policy))
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


async def _health(request: web.Request) -> web.Response:
    c = views.console_of(request)
    now = c.clock()
    if c.last_ok is None:
        return web.Response(status=503, text="starting: no collection yet\n")
    if now - c.last_ok > 3 * c.interval_s + 30:
        return web.Response(status=500, text=f"no successful collection for {int(now - c.last_ok)} s\n")
    return web.Response(status=204)


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(views.console_of(request).registry)
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
    c = views.console_of(request)
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
    views.console_of(request).sessions.drop(session.token)
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(COOKIE, path="/")
    raise response
