"""`gateway policy` commands, run as the CLI runs them (the shipped cases run here, in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from gateway.cli import cli
from gateway.policy.model import DATA_DIR, DEFAULT_ACTORS_FILE, DEFAULT_POLICY_FILE

CASES = DATA_DIR / "default-cases.yaml"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_shipped_cases_cover_every_role_and_pass() -> None:
    code, out = _run("policy", "test", str(CASES))
    assert code == 0, out
    assert "0 failed" in out
    cases = yaml.safe_load(CASES.read_text(encoding="utf-8"))["cases"]
    actors = {a["id"]: a["role"] for a in yaml.safe_load(DEFAULT_ACTORS_FILE.read_text())["actors"]}
    roles = set(yaml.safe_load(DEFAULT_POLICY_FILE.read_text())["roles"])
    assert {actors[c["actor"]] for c in cases if c["actor"] in actors} == roles


def test_a_failing_case_exits_1_and_names_the_case_and_path(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        yaml.safe_dump(
            {
                "cases": [
                    {
                        "name": "wrong on purpose",
                        "actor": "243500139",
                        "input": {"schema": "fr.gp.Demande", "sample": "demande"},
                        "expect": {"present": ["handicap.etat"], "fields": {"demandeur.nom": "SOMEONE"}},
                    },
                    {
                        "name": "right",
                        "actor": "200000002",
                        "input": {"schema": "fr.gp.Demande", "sample": "demande"},
                        "expect": "not_delivered",
                    },
                ]
            }
        )
    )
    code, out = _run("policy", "test", str(cases))
    assert code == 1
    assert "FAIL [243500139] wrong on purpose" in out
    assert "handicap.etat: expected present" in out
    assert "demandeur.nom: expected 'SOMEONE', got a different value (str)" in out
    assert "DEMO" not in out.split("demandeur.nom")[1]  # the actual name is never printed
    assert "1 passed, 1 failed" in out


def test_explain_lists_grants_territory_and_views() -> None:
    code, out = _run("policy", "explain", "--actor", "243500139")
    assert code == 0, out
    assert "collectivite" in out and "communes 35238" in out
    assert "sante_handicap" in out.split("classes withheld:")[1]
    assert "fr.gp.view.Demande_" in out
    code, out = _run("policy", "explain", "--actor", "nobody")
    assert code == 1 and "receives nothing" in out


def test_diff_shows_who_gains_and_loses_fields(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    data["roles"]["collectivite"]["grants"]["sante_handicap"] = True
    del data["roles"]["siao"]["grants"]["contact"]
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump(data), encoding="utf-8")
    code, out = _run(
        "policy", "diff", str(DEFAULT_POLICY_FILE), str(new), "--actors", str(DEFAULT_ACTORS_FILE)
    )
    assert code == 0, out
    assert "243500139 (collectivite)" in out and "+ fr.gp.Demande handicap.etat (yes)" in out
    assert "300000035 (siao)" in out and "- fr.gp.Demande demandeur.mel" in out
    assert "200000001" not in out  # the bailleur does not change


def test_views_lists_and_writes_view_schemas(tmp_path: Path) -> None:
    code, out = _run("policy", "views", "--write", str(tmp_path))
    assert code == 0, out
    written = sorted(tmp_path.glob("fr.gp.view.*.avsc"))
    assert written and f"wrote {len(written)} schemas" in out


@pytest.mark.parametrize("bad", ["version: [", "version: '1'\n"])
def test_check_refuses_a_bad_policy_with_exit_2(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(bad, encoding="utf-8")
    from gateway.cli import main  # noqa: PLC0415

    with pytest.raises(SystemExit) as exc:
        main(["policy", "check", "--policy", str(path)])
    assert exc.value.code == 2


def test_a_case_with_bad_sample_arguments_fails_without_a_traceback(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    case = {
        "name": "bad args",
        "actor": "243500139",
        "input": {"schema": "fr.gp.Decision", "sample": "decision", "args": {"nosuch": 1}},
        "expect": "not_delivered",
    }
    cases.write_text(yaml.safe_dump({"cases": [case]}), encoding="utf-8")
    code, out = _run("policy", "test", str(cases))
    assert code == 1 and "bad case input or history (TypeError)" in out


def test_demo_and_schema_list_hooks() -> None:
    from gateway.policy.demo import route_report_topics, view_rows  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415

    rows = view_rows()
    assert rows and all(name.startswith("fr.gp.view.") and len(fp) == 16 for name, fp in rows)
    topics = route_report_topics(GatewaySettings(topic_prefix="demo"))
    assert "demo.actor.243500139" in topics and topics[-1] == "demo.audit.disclosures"


def test_dry_run_of_a_policy_change_on_traffic(tmp_path: Path) -> None:
    from gateway.policy import Router, load_policy  # noqa: PLC0415
    from gateway.policy.explain import dry_run  # noqa: PLC0415
    from gateway.policy.samples import sample_decision, sample_demande  # noqa: PLC0415

    data = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    data["roles"]["collectivite"]["grants"]["sante_handicap"] = True
    actors = yaml.safe_load(DEFAULT_ACTORS_FILE.read_text(encoding="utf-8"))
    for a in actors["actors"]:
        if a["id"] == "243500139":
            a["communes"] = ["35238", "35288"]
    (tmp_path / "demo-actors.yaml").write_text(yaml.safe_dump(actors), encoding="utf-8")
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    old, new = Router(load_policy()), Router(load_policy(tmp_path / "policy.yaml"))
    n1, n2 = "035260100000000001", "035260100000000002"
    traffic = [
        ("fr.gp.Demande", n1.encode(), sample_demande(n1, ("35238",))),
        ("fr.gp.Demande", n2.encode(), sample_demande(n2, ("35288",))),
        ("fr.gp.Decision", n2.encode(), sample_decision("DECISION_CAL", n2)),
    ]
    stats = dry_run(old, new, traffic)
    rm = stats["243500139"]
    assert (rm.before, rm.after, rm.gained_records, rm.lost_records) == (1, 3, 2, 0)
    assert "Demande:handicap.etat" in rm.fields_gained and not rm.fields_lost
    bailleur = stats["200000001"]
    assert (bailleur.before, bailleur.after, bailleur.gained_records) == (
        3,
        3,
        0,
    ) and not bailleur.fields_gained
