"""The sink runtime without a broker: groups, hooks declared on the interface, /health, sinks file."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner
from gateway.cli.run import run as run_command
from gateway.connectors import CheckResult, ConnectorConfig, Sink, SinkOutput, SinkRecord
from gateway.errors import ConfigError, Problem, RejectedMessage
from gateway.flows.egress import SinkHealth, process_envelopes
from gateway.flows.sinks import load_sinks_file
from gateway.model.envelope import Envelope
from gateway.monitoring.metrics import Metrics
from gateway.monitoring.sink_web import SinkWeb
from gateway.registry import _check_interface
from gateway.retry import RetryPolicy
from gateway.testing.actor_stream import actor_stream
from gateway.topics import actor_group_prefix, sink_group


class _Config(ConnectorConfig):
    pass


class RefusingSink(Sink):
    """Refuses every record. Delivery: at-least-once."""

    name: ClassVar[str] = "refusing"
    Config: ClassVar[type[ConnectorConfig]] = _Config
    guarantee = "at-least-once"

    def check(self) -> CheckResult:
        return CheckResult(ok=True)

    async def write(self, batch: Sequence[SinkRecord]) -> Sequence[SinkOutput]:
        raise RejectedMessage("refused", [Problem("http.status", "refused", "400")])

    async def flush(self) -> None:
        return None

    def outputs_for_rejection(
        self, record: SinkRecord, error: BaseException, attempts: int
    ) -> Sequence[SinkOutput]:
        return [SinkOutput("feedback", None, record.key.encode())]


def test_the_group_of_a_sink_is_under_the_actors_group_prefix() -> None:
    assert actor_group_prefix("824541148", "gp-gateway") == "gp-gateway.actor.824541148."
    assert sink_group("webhook", "824541148", "gp-gateway") == "gp-gateway.actor.824541148.sink.webhook"
    assert sink_group("webhook", "824541148", "gp").startswith(actor_group_prefix("824541148", "gp"))


def test_the_rejection_hook_declared_on_sink_is_called() -> None:
    from gateway.flows.sinks import view_codecs  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415

    _, records = actor_stream()
    envs = [Envelope(r.value, r.key, r.headers, "gp.actor.x", 0, i) for i, r in enumerate(records[:3])]
    result = asyncio.run(
        process_envelopes(
            RefusingSink(), envs, retry=RetryPolicy(1, 0, 0), codecs=view_codecs(GatewaySettings())
        )
    )
    assert len(result.dead) == 3
    assert {d.topic for d in result.dead} == {"gp.actor.x.dlq"}
    assert [o.topic for o in result.outputs] == ["feedback"] * 3


def test_a_sink_that_is_not_a_sink_is_named_with_what_it_misses() -> None:
    class Bare:
        name = "bare"

        async def write(self, batch: object) -> list[object]:
            return []

    with pytest.raises(ConfigError, match=r"not a gateway.Sink \(missing .*tick"):
        _check_interface("bare", Bare())


def test_health_says_what_is_wrong() -> None:
    health = SinkHealth()

    async def main() -> tuple[int, int, str]:
        web = SinkWeb(Metrics(), lambda: [health.problem] if health.problem else [], lambda: True)
        port = await web.start()
        url = f"http://127.0.0.1:{port}/health"

        def get() -> tuple[int, str]:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    return resp.status, resp.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        ok, _ = await asyncio.to_thread(get)
        health.failing("sink webhook: RetriableError: receiver answered HTTP 503 (attempt 3)")
        bad, text = await asyncio.to_thread(get)
        await web.stop()
        return ok, bad, text

    ok, bad, text = asyncio.run(main())
    assert ok == 204
    assert bad == 500
    assert "HTTP 503" in text


def test_a_sinks_file_reports_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "sinks.yaml"
    path.write_text(
        "sinks:\n"
        "  - {connector: file, actor: '200000002', config: {format: xlsx}}\n"
        "  - {connector: webhook, actor: '200000002', config: {url: 'ftp://x', secret: whsec_AAAA}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_sinks_file(path)
    paths = [p.path for p in info.value.problems]
    assert any(p.startswith("sinks[0].") for p in paths)
    assert any(p.startswith("sinks[1].") for p in paths)


def test_egress_is_not_a_flow_and_says_how_to_run_a_sink() -> None:
    out = CliRunner().invoke(run_command, ["--flows", "ingest,egress"])
    assert out.exit_code == 2
    assert "gateway connectors run NAME --actor ACTOR" in out.output


class CanonicalSink(RefusingSink):
    """Reads canonical topics, as the SNE connector. Delivery: at-least-once."""

    name: ClassVar[str] = "registry-like"
    reads = "canonical"


def test_who_reads_what_as_whom() -> None:
    from gateway.flows.sinks import SinkOptions, _plan  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415

    settings = GatewaySettings()
    with pytest.raises(ConfigError, match="cannot erase"):  # RefusingSink does not declare `erases`
        _plan(RefusingSink(), settings, SinkOptions(actor="200000002"))
    allowed = SinkOptions(actor="200000002", allow_no_erasure=True)
    principal, topics, group, label = _plan(RefusingSink(), settings, allowed)
    assert (principal, topics, group) == (
        "200000002",
        ["gp.actor.200000002"],
        "gp-gateway.actor.200000002.sink.refusing",  # under the app id: <app id>.actor.<id>.
    )
    assert label == "bailleur"
    with pytest.raises(ConfigError, match="--actor ACTOR is required"):
        _plan(RefusingSink(), settings, SinkOptions())
    principal, topics, group, _ = _plan(CanonicalSink(), settings, SinkOptions())
    assert principal == "gp-gateway.registry-like"  # its own gateway principal: <app id>.<name>
    assert topics == ["gp.canonical.demande", "gp.canonical.decision"]
    assert group == f"{settings.app_id}.registry-like"
    with pytest.raises(ConfigError, match="takes no --actor"):
        _plan(CanonicalSink(), settings, SinkOptions(actor="200000002"))
