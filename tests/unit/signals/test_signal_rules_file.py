"""The rules file: the shipped one loads with its warning; a bad one is refused with every problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from gateway.cli import cli
from gateway.errors import ConfigError
from gateway.signals.rules import DEFAULT_RULES, SIGNAL_TYPES, load_rules

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
# the signals samples, one file per source that enters them (docs/signals.md)
SIGNAL_SAMPLES = [
    f"cdc-json:{SAMPLES / 'cdc-json' / name}"
    for name in ("erp-nantes-suivi.jsonl", "erp-rennes-suivi.jsonl", "cia-rennes-saisines.jsonl")
]


def test_shipped_rules_load_with_the_brief_example_and_warn_for_unset_departements() -> None:
    rules = load_rules()
    assert rules.delai("85", "85194", "T2") == (24, "littoral")  # Vendée coast
    assert rules.delai("85", "85191", "T2") == (15, None)  # elsewhere in Vendée
    assert rules.delai("44", "44109", "T2") is None  # NON_FIXE: no signal
    assert rules.delai("13", "13055", "T2") is None  # not in the file: no signal
    assert rules.warnings and "35, 44" in rules.warnings[0]
    assert set(rules.enabled) == set(SIGNAL_TYPES)


def test_a_bad_rules_file_lists_every_problem(tmp_path: Path) -> None:
    raw = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    raw["signaux"].append("DELAI_TROP_COURT")
    raw["departements"]["99"] = {"delai_anormal": {"mois": 12}}
    raw["departements"]["85"]["delai_anormal"]["groupes"].append(
        {"nom": "ile", "mois": 30, "communes": ["85113", "44109"]}
    )
    raw["departements"]["85"]["delai_anormal"]["mois"] = -3
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_rules(path)
    text = str(err.value)
    assert "DELAI_TROP_COURT" in text  # unknown signal type
    assert "unknown département '99'" in text
    assert "greater than or equal to 0" in text  # negative delay
    raw["departements"]["85"]["delai_anormal"]["mois"] = 15
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as err2:
        load_rules(path)
    text = str(err2.value)
    assert "'85113' is in two groups" in text
    assert "'44109' is not in département 85" in text
    assert "DELAI_TROP_COURT" in text and "'99'" in text


def test_signals_check_command(tmp_path: Path) -> None:
    ok = CliRunner().invoke(cli, ["signals", "check"])
    assert ok.exit_code == 0 and "OK" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: x\nemetteur: G1\nsignaux: [NOPE]\n", encoding="utf-8")
    refused = CliRunner().invoke(cli, ["signals", "check", "--rules", str(bad)])
    assert refused.exit_code != 0


def test_replay_prints_one_json_line_per_signal_and_nothing_else() -> None:
    result = CliRunner().invoke(cli, ["signals", "replay", *SIGNAL_SAMPLES])
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {line["schema"] for line in lines} == {"fr.gp.Signal"}
    assert {line["record"]["typeSignal"] for line in lines} == set(
        SIGNAL_TYPES
    )  # every type from the samples
    assert all(line["key"] == line["record"]["numUnique"] for line in lines)
    flagged = [line for line in lines if line["record"]["typeSignal"] == "ATTRIBUE_NON_LOGE"]
    assert [line["key"] for line in flagged] == ["044251000000000202"]
    assert "signal(s) at 2026-10-20" in result.stderr  # default clock: the last event's date


def test_replay_clock_and_rules_options(tmp_path: Path) -> None:
    raw = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    raw["signaux"] = ["REFUS_OFFRE"]
    rules = tmp_path / "refus.yaml"
    rules.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["signals", "replay", "--rules", str(rules), "--now", "2026-06-01", *SIGNAL_SAMPLES]
    )
    assert result.exit_code == 0, result.stderr
    types = [json.loads(line)["record"]["typeSignal"] for line in result.stdout.splitlines()]
    assert types == ["REFUS_OFFRE", "REFUS_OFFRE"]
    bad = CliRunner().invoke(cli, ["signals", "replay", "nope:file"])
    assert bad.exit_code != 0
