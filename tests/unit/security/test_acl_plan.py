"""The ACL planner (pure): what each kind of principal may do, and what `acl check` compares."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from gateway.errors import ConfigError
from gateway.security.acl import Acl, diff, owned, plan, principal, source_raw_topics

ACTORS = {
    "B35": SimpleNamespace(role="bailleur", name="Rennes"),
    "GEST": SimpleNamespace(role="gestionnaire", name="Gestionnaire"),
    "ETAT": SimpleNamespace(role="etat", name="DDETS"),
    "COLL": SimpleNamespace(role="collectivite", name="Rennes Métropole"),
}
SOURCES = {"erp-a": SimpleNamespace(name="ERP A", formats=["cdc-json", "cal-csv"], speaks_for=["B35"])}


def _of(acls: list[Acl], who: str) -> set[tuple[str, str, str, str]]:
    return {(a.resource_type, a.pattern, a.name, a.operation) for a in acls if a.principal == f"User:{who}"}


def test_an_actor_reads_its_own_topic_literally_and_uses_its_own_group_prefix() -> None:
    acls = plan(ACTORS, SOURCES, "gp", "app")
    assert _of(acls, "B35") == {
        ("TOPIC", "LITERAL", "gp.actor.B35", "READ"),
        ("TOPIC", "LITERAL", "gp.feedback.B35", "READ"),
        ("GROUP", "PREFIXED", "app.actor.B35.", "READ"),
        # its own sinks' dead letters (records of its own view): nobody else's
        ("TOPIC", "LITERAL", "gp.actor.B35.dlq", "WRITE"),
        ("TOPIC", "LITERAL", "gp.actor.B35.dlq", "READ"),
    }


def test_only_etat_and_gestionnaire_read_the_audit_topic() -> None:
    acls = plan(ACTORS, SOURCES, "gp", "app")
    readers = {a.principal for a in acls if a.name == "gp.audit.disclosures"}
    assert {"User:GEST", "User:ETAT"} <= readers
    assert "User:COLL" not in readers and "User:B35" not in readers
    assert all(p.startswith(("User:GEST", "User:ETAT", "User:app.")) for p in readers)


def test_a_source_writes_only_its_declared_raw_topics() -> None:
    acls = plan(ACTORS, SOURCES, "gp", "app")
    assert _of(acls, "erp-a") == {
        ("TOPIC", "LITERAL", "gp.raw.cdc-json.erp-a", "WRITE"),
        ("TOPIC", "LITERAL", "gp.raw.cal-csv.erp-a", "WRITE"),
        ("TRANSACTIONAL_ID", "PREFIXED", "app.source.erp-a.", "WRITE"),
    }
    assert source_raw_topics(SOURCES, "gp") == ["gp.raw.cal-csv.erp-a", "gp.raw.cdc-json.erp-a"]


def test_canonical_changelog_and_dead_letters_are_for_gateway_principals_only() -> None:
    acls = plan(ACTORS, SOURCES, "gp", "app")
    broad = [a for a in acls if a.pattern == "PREFIXED" and a.resource_type == "TOPIC"]
    assert {a.principal for a in broad} == {
        f"User:app.{w}" for w in ("ingest", "route", "signals", "retention", "sne", "console")
    }
    console = _of(acls, "app.console")
    assert not any(op == "CREATE" for *_, op in console)
    # it writes only to raw topics, to replay dead letters an operator chose
    assert {(t, n) for t, _, n, op in console if op == "WRITE"} == {("TOPIC", "gp.raw.")}
    assert all(op in ("READ", "DESCRIBE", "DESCRIBE_CONFIGS") for t, _, n, op in console if n != "gp.raw.")
    assert _of(acls, "app.admin") == set()  # a super user: no ACL can scope it


def test_drift_is_computed_on_our_resources_only() -> None:
    planned = plan(ACTORS, SOURCES, "gp", "app")
    by_hand = Acl("TOPIC", "LITERAL", "gp.canonical.demande", "User:B35", "READ")
    other_prefix = Acl("TOPIC", "LITERAL", "gp2.actor.B35", "User:B35", "READ")
    other_app_group = Acl("GROUP", "LITERAL", "otherapp", "User:B35", "READ")
    actual = [*planned[1:], by_hand, other_prefix, other_app_group]
    d = diff(planned, actual, "gp", "app")
    assert d.missing == (planned[0],)
    assert d.extra == (by_hand,)
    assert not owned(other_prefix, "gp", "app") and owned(by_hand, "gp", "app")
    assert diff(planned, planned, "gp", "app").clean


def test_an_unknown_principal_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown principal 'nobody'"):
        principal("nobody", ACTORS, SOURCES, "app")
    assert principal("erp-a", ACTORS, SOURCES, "app").kind == "source"
    assert principal("app.route", ACTORS, SOURCES, "app").kind == "gateway"


def test_every_store_that_erases_may_write_its_receipt_and_no_actor_may() -> None:
    from gateway.topics import retention_topic  # noqa: PLC0415

    acls = plan(ACTORS, SOURCES, "gp", "app")
    receipts = retention_topic("receipts", "gp")

    def writes(who: str) -> bool:
        return any(
            a.operation == "WRITE" and a.resource_type == "TOPIC"
            and (a.name == receipts if a.pattern == "LITERAL" else receipts.startswith(a.name))
            for a in acls if a.principal == f"User:{who}"
        )  # fmt: skip

    # route, signals, the cotation loop (run by the route / signals worker) and the SNE connector
    assert all(writes(f"app.{w}") for w in ("route", "signals", "sne", "retention"))
    assert not any(writes(a) for a in ACTORS) and not writes("app.console")
