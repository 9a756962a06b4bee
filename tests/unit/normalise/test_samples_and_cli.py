from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from gateway.cli import cli
from gateway.cli.schemas import schema_rows
from gateway.model.canonical import CanonicalRecord
from gateway.normalise import FORMATS, Rejection, normalise

from .helpers import SAMPLES, round_trip

BAD = {
    "sne-champs-obligatoires-manquants.xml": "sne-xml",
    "sne-pas-une-demande.xml": "sne-xml",
    "sne-entite-externe.xml": "sne-xml",
    "sne-tronque.xml": "sne-xml",
    "cal-lignes-invalides.csv": "cal-csv",
    "cdc-evenements-invalides.jsonl": "cdc-json",
    "comed-codes-inconnus.json": "comed-json",
    "siao-evenements-invalides.json": "siao-json",
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_bundled_sample_normalises_cleanly(fmt: str) -> None:
    files = sorted((SAMPLES / fmt).iterdir())
    assert len(files) >= 2, "several sample files per format"
    for path in files:
        out = normalise(fmt, path.read_bytes())
        assert out, path.name
        for o in out:
            assert isinstance(o, CanonicalRecord), (path.name, o)
            round_trip(o)


def test_every_bad_sample_is_rejected() -> None:
    assert {p.name for p in (SAMPLES / "bad").iterdir()} == set(BAD)
    for name, fmt in BAD.items():
        out = normalise(fmt, (SAMPLES / "bad" / name).read_bytes())
        assert any(isinstance(o, Rejection) for o in out), name


def test_cli_normalise_prints_records_as_json_lines() -> None:
    path = SAMPLES / "sne-xml" / "demande-rad-attribution-rennes.xml"
    result = CliRunner().invoke(cli, ["normalise", "--format", "sne-xml", str(path)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["schema"] for x in lines] == ["fr.gp.Demande", "fr.gp.Decision"]
    assert {x["key"] for x in lines} == {"035260100000000001"}
    assert lines[1]["record"]["radiation"]["attribution"]["logement"]["loyer"] == "356.80"


def test_cli_normalise_reads_stdin_and_reports_problems_on_stderr() -> None:
    data = (SAMPLES / "bad" / "cal-lignes-invalides.csv").read_bytes()
    result = CliRunner().invoke(cli, ["normalise", "--format", "cal-csv", "-"], input=data)
    assert result.exit_code == 2
    assert len(result.stdout.splitlines()) == 2
    errors = [json.loads(x) for x in result.stderr.splitlines()]
    assert {"locator": "line 4", "path": "rang", "reason": "must be at least 1", "value": None} in errors
    assert errors[-1] == {"summary": {"records": 2, "rejected": 4}}
    assert "Traceback" not in result.output


def test_cli_normalise_rejects_a_non_sne_file_clearly() -> None:
    path = SAMPLES / "bad" / "sne-pas-une-demande.xml"
    result = CliRunner().invoke(cli, ["normalise", "--format", "sne-xml", str(path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert "not an SNE interfaceNuu document" in result.stderr


def test_cli_schemas_list() -> None:
    result = CliRunner().invoke(cli, ["schemas", "list"])
    assert result.exit_code == 0
    rows = dict(schema_rows())
    assert "fr.gp.Demande" in rows and len(rows["fr.gp.Demande"]) == 16
    assert "fr.gp.Demande" in result.stdout and rows["fr.gp.Demande"] in result.stdout


def test_cli_schemas_check_passes_then_fails_on_a_breaking_change(tmp_path: Path) -> None:
    avro = Path(__file__).resolve().parents[3] / "schemas" / "avro"
    released = avro.parent / "released"
    ok = CliRunner().invoke(cli, ["schemas", "check"])
    assert ok.exit_code == 0, ok.output
    current = tmp_path / "avro"
    shutil.copytree(avro, current)
    civ = json.loads((current / "fr.gp.Civilite.avsc").read_text())
    civ["symbols"].remove("MADEMOISELLE")
    civ["sneCodes"] = ["1", "2", "INCONNU"]
    del civ["default"]  # with its default, a removed symbol would read as INCONNU: compatible
    (current / "fr.gp.Civilite.avsc").write_text(json.dumps(civ))
    result = CliRunner().invoke(
        cli, ["schemas", "check", "--released", str(released), "--current", str(current)]
    )
    assert result.exit_code == 1
    assert "fr.gp.Civilite: enum symbols removed: MADEMOISELLE" in result.stderr
