"""A self-contained HTML page of the attribution report: per territory, each obligated actor's share
as a bar against the 25 % line (inline SVG, no script, nothing fetched from elsewhere)."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from gateway.reporting.attributions import DALO_25, Row

__all__ = ["to_html"]

TARGET = 0.25
_W, _BAR, _GAP, _LABEL = 420, 16, 8, 300


def _share(row: Row) -> tuple[str, float | None, str]:
    """(what, share, detail) checked for the row's obligation."""
    if row.obligation == DALO_25:  # DALO households, or failing that priority ones (DALO included)
        d = row.attributions
        share = row.prioritaires / d if d else None
        detail = f"{row.prioritaires} DALO or prioritaires, {row.dalo} DALO / {d}"
        return "DALO ou prioritaires", share, detail
    d = row.hors_qpv
    share = row.premier_quartile_hors_qpv / d if d else None
    return "1er quartile hors QPV", share, f"{row.premier_quartile_hors_qpv} / {d} hors QPV"


def _chart(rows: list[Row]) -> str:
    height = len(rows) * (_BAR + _GAP) + 24
    x25 = _LABEL + _W * TARGET
    parts = [f'<svg width="{_LABEL + _W + 160}" height="{height}" role="img">']
    for i, row in enumerate(rows):
        y = i * (_BAR + _GAP) + 4
        what, share, detail = _share(row)
        label = escape(f"{row.role} {row.acteur} — {what}")
        parts.append(f'<text x="0" y="{y + _BAR - 3}" font-size="12">{label}</text>')
        if share is None:
            parts.append(f'<text x="{_LABEL}" y="{y + _BAR - 3}" font-size="12">no attribution</text>')
            continue
        colour = "#2e7d32" if share >= TARGET else "#c62828"
        parts.append(f'<rect x="{_LABEL}" y="{y}" width="{_W * share:.1f}" height="{_BAR}" fill="{colour}"/>')
        text = escape(f"{share:.1%} ({detail})")
        parts.append(f'<text x="{_LABEL + _W + 6}" y="{y + _BAR - 3}" font-size="11">{text}</text>')
    parts.append(
        f'<line x1="{x25}" x2="{x25}" y1="0" y2="{height - 16}" stroke="#000" stroke-dasharray="4 3"/>'
    )
    parts.append(f'<text x="{x25 - 12}" y="{height - 2}" font-size="11">25 %</text></svg>')
    return "".join(parts)


def to_html(report: Iterable[Row], year: int) -> str:
    by_territory: dict[str, list[Row]] = {}
    for row in report:
        by_territory.setdefault(row.territoire, []).append(row)
    body = [f"<h1>Attributions {year}: the 25 % obligations (L441-1)</h1>"]
    for territory, rows in sorted(by_territory.items()):
        body.append(f"<h2>Territoire {escape(territory)}</h2>{_chart(rows)}")
    if not by_territory:
        body.append("<p>No attribution this year.</p>")
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>Attributions {year}</title></head>"
        '<body style="font-family: sans-serif">' + "".join(body) + "</body></html>\n"
    )
