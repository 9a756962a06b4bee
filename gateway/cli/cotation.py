"""`gateway cotation score|check`: the cotation grid engine, offline.

`score` prints one JSON line per application the grid covers: `{"key", "total", "criteria":
[{"id", "points", "reason"}…]}`; reasons name fields, never values. Problems go to stderr.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from gateway.cli.inputs import path_option, read_inputs
from gateway.errors import ConfigError, Problem

__all__ = ["cotation"]


def _policy(policy_path: Path | None) -> Any:
    from gateway.policy.model import load_policy  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415 - env read only when needed

    settings = GatewaySettings()
    return load_policy(policy_path or settings.policy_file, secret=settings.pseudonymisation_secret)


_GRID = path_option("--grid", "grid_path", "Cotation grid (YAML).", required=True)
_POLICY = path_option(
    "--policy",
    "policy_path",
    "Policy that classifies what criteria read (default: GATEWAY_POLICY_FILE, else the bundled one).",
)

_NOW = click.option("--now", "now_s", default=None, help="Evaluation date YYYY-MM-DD (default: today, UTC).")


def _day(now_s: str | None) -> date:
    """The --now date (default: today, UTC)."""
    try:
        return date.fromisoformat(now_s) if now_s else datetime.now(UTC).date()
    except ValueError:
        raise ConfigError("bad --now", [Problem("--now", "expected a date YYYY-MM-DD")]) from None


@click.group("cotation")
def cotation() -> None:
    """Cotation grids (loi ELAN): check a grid, score applications offline."""


@cotation.command("check")
@_GRID
@_POLICY
def check(grid_path: Path, policy_path: Path | None) -> None:
    """Load a grid: every problem listed (exit 2), else its criteria and the class of each."""
    from gateway.cotation.grid import load_grid  # noqa: PLC0415

    policy = _policy(policy_path)
    grid = load_grid(grid_path, policy)
    click.echo(f"grid {grid.id} {grid.version or ''}: {len(grid.criteria)} criteria, OK")
    for c in grid.criteria:
        click.echo(f"  {c.id:24s} {c.group:16s} {c.label}")
    # What the total reveals (docs/cotation.md): per role, the criteria it cannot see, whose points
    # are the difference between the total and the points it sees.
    total_class = policy.leaf_classes.get("fr.gp.Cotation", {}).get("total")
    for name, role in policy.roles.items():
        if total_class not in role.grants or role.grants[total_class] is False:
            continue
        hidden = [c.id for c in grid.criteria if role.grants.get(c.group) is not True]  # conditional too
        if hidden:
            click.echo(f"  role {name}: total − visible points = points of {', '.join(hidden)}")


@cotation.command("score")
@_GRID
@_POLICY
@_NOW
@click.argument("inputs", nargs=-1, required=True)
def score(grid_path: Path, policy_path: Path | None, now_s: str | None, inputs: tuple[str, ...]) -> None:
    """Score the applications of FORMAT:FILE inputs (normalised in the order given)."""
    from gateway.cotation.batch import score_all  # noqa: PLC0415
    from gateway.cotation.grid import load_grid  # noqa: PLC0415

    now = _day(now_s)
    grid = load_grid(grid_path, _policy(policy_path))
    demandes, decisions, rejected = read_inputs(inputs)
    for rec in score_all(grid, demandes, decisions, now):
        criteria = [
            {"id": c["id"], "points": c["points"], "reason": c["raison"]}
            for group in rec["criteres"].values()
            for c in group
        ]
        order = {c.id: i for i, c in enumerate(grid.criteria)}
        criteria.sort(key=lambda c: order[c["id"]])
        click.echo(
            json.dumps(
                {"key": rec["numUnique"], "total": rec["total"], "criteria": criteria}, ensure_ascii=False
            )
        )
    if rejected:
        sys.exit(2)


@cotation.command("adequacy")
@path_option("--rules", "rules_path", "Rules (YAML).", required=True)
@_NOW
@click.argument("inputs", nargs=-1, required=True)
def adequacy(rules_path: Path, now_s: str | None, inputs: tuple[str, ...]) -> None:
    """Adequacy and solvency of each designation of FORMAT:FILE inputs: one JSON line each
    (`{"key", "designation", "resultat", "details"}`), against the application's latest Demande."""
    from gateway.cotation.adequacy import assess, load_rules  # noqa: PLC0415

    now = _day(now_s)
    rules = load_rules(rules_path)
    demandes, decisions, rejected = read_inputs(inputs)
    for d in decisions:
        designation = d.get("designation")
        if not designation:
            continue
        demande = demandes.get(d["numUnique"])
        if demande is None:
            line: dict[str, Any] = {"key": d["numUnique"], "designation": d["eventId"], "resultat": "INCONNU"}
            line["details"] = [
                {"id": "*", "resultat": "INCONNU", "explication": "no Demande of the application"}
            ]
        else:
            overall, verdicts = assess(rules, demande, designation["logement"], now)
            line = {"key": d["numUnique"], "designation": d["eventId"], "resultat": overall}
            line["details"] = [
                {"id": v.id, "resultat": v.result, "valeur": v.value, "borne": v.bound, "seuil": v.threshold,
                 "explication": v.why}
                for v in verdicts
            ]  # fmt: skip
        click.echo(json.dumps(line, ensure_ascii=False))
    if rejected:
        sys.exit(2)


def demo_lines(samples: Path, now: date | None = None) -> list[str]:
    """What `gateway demo` prints of the cotation and the 25 % figures of its sample files (offline,
    from the same files it drops): the example grid on every sample application (its `communes`
    filter lifted), and the attribution report of the example territories."""
    import dataclasses  # noqa: PLC0415
    import io  # noqa: PLC0415
    from contextlib import redirect_stderr  # noqa: PLC0415

    from gateway.cotation.batch import score_all  # noqa: PLC0415
    from gateway.cotation.grid import load_grid  # noqa: PLC0415
    from gateway.normalise import FORMATS  # noqa: PLC0415
    from gateway.reporting.attributions import COLUMNS, facts, rows  # noqa: PLC0415
    from gateway.reporting.config import ReportingConfig, load_qpv, load_territories  # noqa: PLC0415

    data = Path(__file__).resolve().parents[1] / "data"
    specs = [f"{fmt}:{p}" for fmt in FORMATS for p in sorted((samples / fmt).glob("*")) if p.is_file()]
    with redirect_stderr(io.StringIO()):
        demandes, decisions, _ = read_inputs(specs)
    today = now or datetime.now(UTC).date()
    grid = load_grid(data / "cotation" / "grille-exemple.yaml", _policy(None))
    grid = dataclasses.replace(grid, communes=frozenset())
    out = ["", f"cotation ({grid.id} {grid.version}, {today}) of the sample applications:"]
    out.append(f"  {'numéro unique':18s} {'total':>7s} {'rang':>6s}  points by criterion")
    for rec in score_all(grid, demandes, decisions, today):
        given = [f"{c['id']} {c['points']:g}" for g in rec["criteres"].values() for c in g if c["points"]]
        rang = f"{rec['rang']}/{rec['demandesSimilaires']}" if rec["rang"] else "-"
        out.append(f"  {rec['numUnique']:18s} {rec['total']:7.1f} {rang:>6s}  {', '.join(given) or '-'}")
    config = ReportingConfig(
        load_territories(data / "reporting" / "territoires-exemple.yaml"),
        load_qpv(data / "reporting" / "qpv-exemple.csv"),
    )
    all_facts = facts(demandes, decisions, config)
    years = sorted({f.lease.year for f in all_facts})
    out += ["", "25 % obligations (gateway report attributions) of the sample attributions:"]
    out.append("  " + ";".join(COLUMNS))
    out += ["  " + ";".join(r.cells()) for y in years for r in rows(all_facts, y)]
    return out
