"""Every topic the gateway creates has explicit retention settings (docs/retention.md): compacted
with a 7-day compaction lag and tombstone retention when keyed by numéro unique, else a time
retention; the ACL plan lets the worker running the retention flow purge the raw topics."""

from __future__ import annotations

from pathlib import Path

from gateway.flows.admin import DAY_MS, TopicSpec, ingest_topics
from gateway.flows.cotation import cotation_topics
from gateway.flows.retention import retention_topics
from gateway.flows.route import route_topics
from gateway.flows.signals import signals_topics
from gateway.policy import load_policy
from gateway.security.acl import plan
from gateway.settings import GatewaySettings

WEEK = str(7 * DAY_MS)
DOC = Path(__file__).resolve().parents[3] / "docs" / "retention.md"


def _all(settings: GatewaySettings) -> list[TopicSpec]:
    policy = load_policy()
    return [
        *ingest_topics(settings),
        *route_topics(settings, policy),
        *signals_topics(settings),
        *cotation_topics(settings),
        *retention_topics(settings),
    ]


def test_every_declared_topic_has_an_explicit_retention_and_one_declaration() -> None:
    settings = GatewaySettings(topic_prefix="x", partitions=3)
    specs = _all(settings)
    by_name: dict[str, dict[str, str]] = {}
    for spec in specs:
        configs = spec.all_configs()
        assert by_name.setdefault(spec.name, configs) == configs, f"{spec.name} declared twice, differently"
        policy = configs["cleanup.policy"]
        if "compact" in policy:
            assert configs["min.compaction.lag.ms"] == WEEK, spec.name
            assert configs["delete.retention.ms"] == WEEK, spec.name
        if "delete" in policy:
            assert int(configs["retention.ms"]) > 0, spec.name
    keyed = [n for n in by_name if ".canonical." in n or (".actor." in n and not n.endswith(".dlq"))]
    assert keyed
    for name in keyed:
        assert "compact" in by_name[name]["cleanup.policy"], name
    assert by_name["x.audit.disclosures"]["retention.ms"] == str(400 * DAY_MS)
    assert {by_name[f"x.retention.{k}"]["retention.ms"] for k in ("control", "status")} == {WEEK}
    assert by_name["x.retention.receipts"]["retention.ms"] == str(30 * DAY_MS)


def test_the_retention_page_lists_every_family_of_topics() -> None:
    text = DOC.read_text(encoding="utf-8")
    for family in (
        ".raw.",
        ".dlq",
        ".canonical.demande",
        ".canonical.decision",
        ".canonical.cotation",
        ".canonical.adequation",
        ".canonical.signal",
        ".actor.",
        ".audit.disclosures",
        ".feedback.",
        ".signals.logement",
        ".signals.tick",
        ".report.attributions",
        ".retention.control",
        ".retention.status",
        ".retention.receipts",
        "-changelog",
    ):
        assert family in text, family


def test_the_worker_running_the_retention_flow_may_purge_raw_topics_and_reconcile_configs() -> None:
    policy = load_policy()
    acls = plan(policy.actors, policy.sources, "gp", "app")
    deletes = {(a.principal, a.name, a.pattern) for a in acls if a.operation == "DELETE"}
    assert deletes == {
        ("User:app.retention", "gp.raw.", "PREFIXED"),
        ("User:app.ingest", "gp.raw.", "PREFIXED"),
    }
    alters = {a.principal for a in acls if a.operation == "ALTER_CONFIGS"}
    assert alters == {f"User:app.{w}" for w in ("ingest", "route", "signals", "retention", "sne")}
