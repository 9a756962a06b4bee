"""HTML of the console pages, rendered on the server from plain data. Every dynamic value goes
through `h()` (HTML escaping); chart data travel as JSON in `<script type="application/json">`
blocks read by the bundled console.js (no inline script: the Content-Security-Policy forbids it)."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["chart", "h", "layout", "login_page", "table"]

_NAV = (
    ("/console/", "Vue d'ensemble"),
    ("/console/groups", "Groupes de consommateurs"),
    ("/console/dlq", "Lettres mortes"),
    ("/console/audit", "Audit"),
    ("/console/policy", "Politique et santé"),
)

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1e1e1e;background:#f6f6f6}
header{background:#000091;color:#fff;padding:.6em 1em;display:flex;gap:1.2em;align-items:center}
header a{color:#fff;text-decoration:none}header a.on{text-decoration:underline}
header form{margin-left:auto}main{padding:1em 1.5em}
table{border-collapse:collapse;background:#fff;margin:.5em 0 1.5em}
td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left;font-size:.92em}
th{background:#eee}.OK{color:#18753c;font-weight:bold}.WARN{color:#b34000;font-weight:bold}
.ERR{color:#ce0500;font-weight:bold}.UNKNOWN{color:#666}
.chart{background:#fff;height:300px;margin:.5em 0 1.5em}
.note{color:#555;font-size:.9em}.error{color:#ce0500}
"""


def h(value: object) -> str:
    return html.escape(str(value), quote=True)


def layout(title: str, body: str, *, user: str | None = None, csrf: str | None = None, path: str = "") -> str:
    nav = ""
    if user is not None:
        links = "".join(
            f'<a href="{href}"{" class=on" if href == path else ""}>{h(label)}</a>' for href, label in _NAV
        )
        logout = (
            '<form method="post" action="/console/logout">'
            f'<input type="hidden" name="csrf" value="{h(csrf)}">'
            f"{h(user)} <button>Se déconnecter</button></form>"
        )
        nav = f"<header><strong>gp-gateway</strong>{links}{logout}</header>"
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{h(title)} · gp-gateway</title><style>{_STYLE}</style>"
        '<script src="/console/static/plotly.min.js" defer></script>'
        '<script src="/console/static/console.js" defer></script>'
        f"</head><body>{nav}<main><h1>{h(title)}</h1>{body}</main></body></html>"
    )


def login_page(error: str | None = None, *, next_path: str = "/console/") -> str:
    msg = f'<p class="error">{h(error)}</p>' if error else ""
    body = (
        f'{msg}<form method="post" action="/console/login">'
        f'<input type="hidden" name="next" value="{h(next_path)}">'
        '<p><label>Identifiant <input name="name" autocomplete="username" required></label></p>'
        '<p><label>Mot de passe <input name="password" type="password" autocomplete="current-password"'
        " required></label></p><p><button>Se connecter</button></p></form>"
    )
    return layout("Connexion", body)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{h(c)}</th>" for c in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{h(classes[i])}"' if i < len(classes) and classes[i] else ""
        body.append(
            "<tr>" + "".join(f"<td{cls if j == 0 else ''}>{h(c)}</td>" for j, c in enumerate(row)) + "</tr>"
        )
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}" class="note">aucune donnée</td></tr>')
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def chart(chart_id: str, title: str, series: Mapping[str, list[tuple[float, float]]], *, ylabel: str) -> str:
    """A time-series chart: the data as JSON, drawn by console.js with the bundled Plotly."""
    data: dict[str, Any] = {
        "title": title,
        "ylabel": ylabel,
        "series": [
            {"name": name, "x": [t * 1000 for t, _ in pts], "y": [v for _, v in pts]}
            for name, pts in sorted(series.items())
        ],
    }
    payload = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e")
    return (
        f'<div class="chart" id="{h(chart_id)}" data-chart="{h(chart_id)}-data"></div>'
        f'<script type="application/json" id="{h(chart_id)}-data">{payload}</script>'
    )
