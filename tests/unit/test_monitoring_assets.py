"""The shipped alert rules and Grafana dashboard query only metrics the gateway exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from gateway.console.accounts import Accounts
from gateway.console.app import Console
from gateway.console.history import History
from gateway.monitoring.metrics import Metrics
from gateway.settings import GatewaySettings
from prometheus_client import CollectorRegistry

DOCKER = Path(__file__).resolve().parents[2] / "docker"
PROMETHEUS_OWN = {"up"}  # series Prometheus makes itself
PROMQL_WORDS = {
    "sum", "by", "rate", "increase", "delta", "histogram_quantile", "and", "or", "unless", "le", "without",
    "avg", "max", "min", "count", "on", "ignoring", "group_left", "group_right", "bool", "offset",
}  # fmt: skip


def _exported(registry: CollectorRegistry) -> set[str]:
    names: set[str] = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def _queries() -> list[str]:
    rules = yaml.safe_load((DOCKER / "prometheus" / "alerts.yml").read_text())
    out = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((DOCKER / "grafana" / "gp-gateway.json").read_text())
    out += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return out


def _metric_names(expr: str) -> set[str]:
    no_strings = re.sub(r'"[^"]*"', '""', expr)
    no_labels = re.sub(r"\{[^}]*\}", "", no_strings)
    no_ranges = re.sub(r"\[[^\]]*\]", "", no_labels)
    no_groupings = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", no_ranges)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", no_groupings))
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhd]?", w)}


def test_every_query_names_an_exported_metric(tmp_path: Path) -> None:
    console = Console(GatewaySettings(), Accounts(tmp_path / "none.yaml"), History(tmp_path / "h.sqlite"), [])
    exported = _exported(Metrics().registry) | _exported(console.registry) | PROMETHEUS_OWN
    queries = _queries()
    assert len(queries) >= 10
    used = set()
    for expr in queries:
        names = _metric_names(expr)
        assert names, expr
        unknown = names - exported
        assert not unknown, (expr, unknown)
        used |= names
    assert {"kafka_consumergroup_lag", "gp_records_dead_lettered_total", "gp_records_in_total"} <= used


def test_the_checker_catches_an_unknown_metric() -> None:
    assert _metric_names('sum by (source) (rate(gp_not_a_metric_total{flow="x"}[5m])) > 0') == {
        "gp_not_a_metric_total"
    }
