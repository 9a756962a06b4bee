"""gateway.cli.inputs: the FORMAT:FILE arguments and file options the offline commands share."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from gateway.cli import cli
from gateway.cli.inputs import parse_input, read_inputs
from gateway.errors import ConfigError

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def test_a_format_file_argument_names_a_known_format_and_a_path() -> None:
    assert parse_input("sne-xml:a/b:c.xml") == ("sne-xml", Path("a/b:c.xml"))
    for bad in ("nope.xml", "xml:nope.xml", ":nope.xml"):
        with pytest.raises(ValueError, match="expected FORMAT:FILE with FORMAT one of sne-xml, "):
            parse_input(bad)


def test_read_inputs_reports_every_bad_argument_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        read_inputs(["xml:a.xml", f"sne-xml:{tmp_path / 'missing.xml'}"])
    assert [p.reason for p in info.value.problems][1] == "no such file"
    assert "FORMAT:FILE" in info.value.problems[0].reason


def test_read_inputs_keeps_the_latest_demande_of_each_application() -> None:
    demandes, decisions, rejected = read_inputs(
        [f"sne-xml:{p}" for p in sorted((SAMPLES / "sne-xml").glob("*.xml"))]
    )
    assert demandes and rejected == 0
    assert all(key == d["numUnique"] for key, d in demandes.items())
    assert isinstance(decisions, list)


def test_signals_replay_and_cotation_refuse_a_bad_input_alike() -> None:
    replay = CliRunner().invoke(cli, ["signals", "replay", "xml:nope"])
    assert replay.exit_code == 2 and "expected FORMAT:FILE with FORMAT one of" in replay.output
    helps = {
        cmd: CliRunner().invoke(cli, [*cmd.split(), "--help"]).output
        for cmd in ("report attributions", "policy diff", "schemas check", "cotation score")
    }
    assert helps["report attributions"].count("[default:") == 2  # --territories, --qpv
    assert "--actors FILE" in helps["policy diff"] and "--released DIRECTORY" in helps["schemas check"]
    assert "--grid FILE" in helps["cotation score"] and "[required]" in helps["cotation score"]
