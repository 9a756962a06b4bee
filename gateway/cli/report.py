"""`gateway report attributions`: the 25 % obligations of L441-1 from attribution data, offline."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gateway.cli.inputs import path_option, read_inputs

__all__ = ["report"]

DATA = Path(__file__).resolve().parents[1] / "data" / "reporting"


@click.group("report")
def report() -> None:
    """Reports computed from canonical records."""


@report.command("attributions")
@click.option("--year", type=int, required=True, help="Year of the leases.")
@click.option("--territory", default=None, help="Only this territory (EPCI SIREN, else département).")
@path_option(
    "--territories",
    "territories_path",
    "EPCI, their communes and first-quartile thresholds (YAML).",
    default=DATA / "territoires-exemple.yaml",
)
@path_option("--qpv", "qpv_path", "Dwellings in QPV (CSV `rpls;qpv`).", default=DATA / "qpv-exemple.csv")
@path_option(
    "--html", "html_path", "Also write a self-contained HTML page: each actor's share against the 25 % line."
)
@click.argument("inputs", nargs=-1, required=True)
def attributions(  # noqa: PLR0917 - click passes one argument per option
    year: int,
    territory: str | None,
    territories_path: Path,
    qpv_path: Path,
    html_path: Path | None,
    inputs: tuple[str, ...],
) -> None:
    """CSV (`;`) of attributions per obligated actor and obligation, from FORMAT:FILE inputs."""
    from gateway.reporting.attributions import facts, rows, to_csv  # noqa: PLC0415
    from gateway.reporting.config import ReportingConfig, load_qpv, load_territories  # noqa: PLC0415

    config = ReportingConfig(load_territories(territories_path), load_qpv(qpv_path))
    demandes, decisions, rejected = read_inputs(inputs)
    report_rows = rows(facts(demandes, decisions, config), year, territory)
    click.echo(to_csv(report_rows), nl=False)
    if html_path is not None:
        from gateway.reporting.html import to_html  # noqa: PLC0415

        html_path.write_text(to_html(report_rows, year), encoding="utf-8")
    if rejected:
        sys.exit(2)
