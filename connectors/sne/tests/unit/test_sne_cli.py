"""`gateway sne send|check` against the simulator, and the GATEWAY_SNE_* configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from connectors.sne.testing import demande
from gateway.cli.sne import sne, sne_config
from gateway.codec.avro import to_jsonable
from gateway.errors import ConfigError, RejectedMessage

SAMPLES = Path(__file__).resolve().parents[4] / "samples"


def _args(simulator: Any) -> list[str]:
    url = f"https://127.0.0.1:{simulator.port}/services/DemandeLogementImplService/"
    return ["--certs", str(simulator.certs), "--guichet", "G3501", "--url", url]


def test_send_an_xml_sample(simulator: Any) -> None:
    sample = SAMPLES / "sne-xml" / "demande-cre-famille-rennes.xml"
    result = CliRunner().invoke(sne, ["send", str(sample), *_args(simulator)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["status"] == "ACCEPTED" and len(answer["numUnique"]) == 18
    assert answer["file"].startswith("DEMG3501-")


def test_send_a_canonical_json_demand(simulator: Any, tmp_path: Path) -> None:
    path = tmp_path / "demande.json"
    path.write_text(json.dumps(to_jsonable(demande())), encoding="utf-8")
    result = CliRunner().invoke(sne, ["send", str(path), *_args(simulator)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [feedback] = json.loads(result.output)
    assert feedback["topic"] == "gp.feedback.200000001" and feedback["key"] == "ERP-0001"
    assert (
        feedback["value"]["status"] == "ACCEPTED" and feedback["value"]["numUnique"] == "035260100000000001"
    )


def test_send_refuses_what_the_sne_would_refuse(simulator: Any) -> None:
    bad = SAMPLES / "bad" / "sne-champs-obligatoires-manquants.xml"
    with pytest.raises(RejectedMessage) as info:
        CliRunner().invoke(sne, ["send", str(bad), *_args(simulator)], catch_exceptions=False)
    assert {"CTRL_DEM_0002", "CTRL_DEM_0004"} <= {p.value for p in info.value.problems}
    assert simulator.server.registry.calls() == {}


def test_check_without_traffic(simulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(sne, ["check", *_args(simulator)], catch_exceptions=False)
    assert result.exit_code == 0 and result.output.startswith("ok:")
    assert simulator.server.registry.calls() == {}


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GATEWAY_SNE_GUICHET", "G4401")
    monkeypatch.setenv("GATEWAY_SNE_CLIENT_CERT", str(tmp_path / "c.pem"))
    monkeypatch.setenv("GATEWAY_SNE_CLIENT_KEY", str(tmp_path / "c.key"))
    monkeypatch.setenv("GATEWAY_SNE_MODE", "daily")
    cfg = sne_config({"guichet": None})
    assert (cfg.guichet, cfg.mode) == ("G4401", "daily")
    assert sne_config({"guichet": "G3501"}).guichet == "G3501"  # options win over the environment
    monkeypatch.setenv("GATEWAY_SNE_URL", "http://plain.example")
    monkeypatch.setenv("GATEWAY_SNE_RATE_LIMIT_PER_SECOND", "-1")
    with pytest.raises(ConfigError) as info:
        sne_config({})
    assert {p.path for p in info.value.problems} == {"url", "rate_limit_per_second"}


def test_send_of_json_nested_too_deep_is_rejected_not_a_traceback(simulator: Any, tmp_path: Path) -> None:
    from gateway.cli import main  # noqa: PLC0415

    path = tmp_path / "deep.json"
    path.write_bytes(b'{"numUnique": ' + b"[" * 100_000)
    with pytest.raises(SystemExit) as info:
        main(["sne", "send", str(path), *_args(simulator)])
    assert info.value.code == 2


def test_run_waits_for_kafka_then_gives_up_cleanly(sne_certs: Path, tmp_path: Path) -> None:
    """No broker: one clear line per try with a growing delay, then exit 1 at --max-wait, no traceback."""
    from gateway.broker import free_port  # noqa: PLC0415

    bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = {
        "GATEWAY_BOOTSTRAP_SERVERS": bootstrap,
        "GATEWAY_STATE_DIR": str(tmp_path),
        "GATEWAY_KAFKA_ALLOW_PLAINTEXT": "true",  # no broker at all: the credentials are not the point
    }
    args = ["run", "--certs", str(sne_certs), "--guichet", "G3501", "--no-poll", "--max-wait", "2"]
    result = CliRunner().invoke(sne, args, env=env)
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.exception
    lines = result.stderr.splitlines()
    tries = [line for line in lines if line.startswith(f"Kafka is not reachable at {bootstrap}; retrying in")]
    assert [t.split("retrying in ")[1].split()[0] for t in tries] == ["1s", "2s"]
    assert lines[-1].startswith(f"gateway sne run: no Kafka broker answers at {bootstrap}")
    assert "Traceback" not in result.output
