"""Principals and the ACLs the broker must hold, derived from the access policy. Pure.

Principals (Kafka `User:<name>`, one namespace):
- each actor of the actors file (`<actor id>`): reads only its own topic `<prefix>.actor.<id>`
  (literal) and its SNE feedback topic `<prefix>.feedback.<id>` (literal), with consumer groups
  under its own prefix `<app id>.actor.<id>.`; `etat` and `gestionnaire` actors also read the audit
  topic (access-rules §5);
- each source (`<source id>`): writes only its own raw topics `<prefix>.raw.<format>.<source>`, one
  per format it declares (literal), with transactional ids under `<app id>.source.<source>.`;
- the gateway's workers (`<app id>.<worker>`): ingest, route, signals, retention and sne read and
  write every topic of the prefix and the app's internal topics (`<app id>-*`: faust changelogs),
  create the topics they declare and bring their configs to the declared ones (CREATE and
  ALTER_CONFIGS on the prefix: no admin credential in a running worker), use the app's groups and
  transactional ids; the worker that runs the retention flow purges the raw topics up to the
  ingest's committed offsets (DELETE on `<prefix>.raw.*`; READ on the `<app id>.` groups covers
  reading those offsets): `retention`, and `ingest`, the principal a worker running the default
  flows uses; console only reads;
- `<app id>.admin`: runs `acl apply` and `actors credentials`; it must be a super user (ACL and
  SCRAM changes need ALTER on the cluster, which no prefix can scope), so it gets no ACL here.
Canonical, dead-letter, changelog and internal topics are thus readable by gateway principals only.

Only resources of this prefix and app id are planned and compared (`owned`), so several prefixes
can share a broker; ACLs of other resources are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gateway.errors import ConfigError
from gateway.topics import (
    actor_group_prefix,
    actor_topic,
    audit_topic,
    dlq_topic,
    feedback_topic,
    raw_prefix,
    source_raw_topic,
)

__all__ = [
    "AUDIT_ROLES",
    "GATEWAY_WORKERS",
    "Acl",
    "AclDiff",
    "Principal",
    "actor_group_prefix",
    "diff",
    "owned",
    "plan",
    "principal",
    "principals",
    "source_raw_topics",
    "source_txn_prefix",
]

AUDIT_ROLES = ("etat", "gestionnaire")
GATEWAY_WORKERS = ("ingest", "route", "signals", "retention", "sne", "console", "admin")
_READ_ONLY_WORKERS = ("console",)
_SUPER_WORKERS = ("admin",)
_PURGING_WORKERS = ("retention", "ingest")  # may run the retention flow (docstring)


@dataclass(frozen=True, order=True, slots=True)
class Acl:
    """One ALLOW entry: `principal` (User:name) may `operation` on `resource_type` `name`."""

    resource_type: str  # TOPIC | GROUP | TRANSACTIONAL_ID
    pattern: str  # LITERAL | PREFIXED
    name: str
    principal: str
    operation: str  # READ | WRITE | CREATE | DESCRIBE | DESCRIBE_CONFIGS
    permission: str = "ALLOW"
    host: str = "*"

    def line(self) -> str:
        kind = "" if self.pattern == "LITERAL" else "*"
        return (
            f"{self.permission:5} {self.principal:42} {self.operation:16} "
            f"{self.resource_type.lower()}:{self.name}{kind}"
        )


@dataclass(frozen=True, slots=True)
class Principal:
    name: str  # the Kafka user name (SCRAM user)
    kind: str  # actor | source | gateway
    label: str  # what it is (actor role and name, source name, worker)

    @property
    def user(self) -> str:
        return f"User:{self.name}"


@dataclass(frozen=True, slots=True)
class AclDiff:
    missing: tuple[Acl, ...]  # planned, not on the broker
    extra: tuple[Acl, ...]  # on the broker (in our resources), not planned

    @property
    def clean(self) -> bool:
        return not self.missing and not self.extra


def source_txn_prefix(source_id: str, app_id: str) -> str:
    return f"{app_id}.source.{source_id}."


def source_raw_topics(sources: Mapping[str, object], prefix: str) -> list[str]:
    """Raw topics of the declared (source, format) pairs, sorted."""
    return sorted(
        source_raw_topic(fmt, sid, prefix)
        for sid, src in sources.items()
        for fmt in getattr(src, "formats", ())
    )


def principals(actors: Mapping[str, object], sources: Mapping[str, object], app_id: str) -> list[Principal]:
    """Every principal of this app: actors, sources, gateway workers."""
    out = [
        Principal(aid, "actor", f"{getattr(a, 'role', '?')}: {getattr(a, 'name', '')}")
        for aid, a in sorted(actors.items())
    ]
    out += [Principal(sid, "source", getattr(s, "name", "") or sid) for sid, s in sorted(sources.items())]
    out += [Principal(f"{app_id}.{w}", "gateway", f"gateway worker {w}") for w in GATEWAY_WORKERS]
    return out


def principal(
    name: str, actors: Mapping[str, object], sources: Mapping[str, object], app_id: str
) -> Principal:
    """The principal `name`, or ConfigError naming it (and the actors file) when it is unknown."""
    for p in principals(actors, sources, app_id):
        if p.name == name:
            return p
    raise ConfigError(
        f"unknown principal {name!r}: not an actor or a source of the actors file, nor a gateway"
        f" worker ({', '.join(f'{app_id}.{w}' for w in GATEWAY_WORKERS)})"
    )


def _allow(user: str, rtype: str, pattern: str, name: str, ops: Sequence[str]) -> list[Acl]:
    return [Acl(rtype, pattern, name, user, op) for op in ops]


def plan(actors: Mapping[str, object], sources: Mapping[str, object], prefix: str, app_id: str) -> list[Acl]:
    """The ACL set the broker must hold for this prefix and app id (sorted, no duplicates)."""
    if not prefix or not app_id:
        raise ConfigError("the topic prefix and the app id are needed to plan ACLs")
    acls: list[Acl] = []
    for p in principals(actors, sources, app_id):
        u = p.user
        if p.kind == "actor":
            acls += _allow(u, "TOPIC", "LITERAL", actor_topic(p.name, prefix), ["READ"])
            # its sinks dead-letter what they cannot deliver (the gateway creates that topic)
            acls += _allow(u, "TOPIC", "LITERAL", dlq_topic(actor_topic(p.name, prefix)), ["WRITE", "READ"])
            acls += _allow(u, "TOPIC", "LITERAL", feedback_topic(p.name, prefix), ["READ"])
            acls += _allow(u, "GROUP", "PREFIXED", actor_group_prefix(p.name, app_id), ["READ"])
            if getattr(actors[p.name], "role", None) in AUDIT_ROLES:
                acls += _allow(u, "TOPIC", "LITERAL", audit_topic(prefix), ["READ"])
        elif p.kind == "source":
            for fmt in getattr(sources[p.name], "formats", ()):
                acls += _allow(u, "TOPIC", "LITERAL", source_raw_topic(fmt, p.name, prefix), ["WRITE"])
            acls += _allow(u, "TRANSACTIONAL_ID", "PREFIXED", source_txn_prefix(p.name, app_id), ["WRITE"])
        else:
            worker = p.name.rpartition(".")[2]
            if worker in _SUPER_WORKERS:
                continue
            if worker in _READ_ONLY_WORKERS:  # the console: reads, sees every group's offsets
                acls += _allow(u, "TOPIC", "PREFIXED", f"{prefix}.", ["READ", "DESCRIBE_CONFIGS"])
                acls += _allow(u, "GROUP", "PREFIXED", f"{app_id}.{worker}", ["READ"])
                acls += _allow(u, "GROUP", "PREFIXED", app_id, ["DESCRIBE"])
                # an operator's replay re-injects dead letters into the raw topics they came from
                acls += _allow(u, "TOPIC", "PREFIXED", raw_prefix(prefix), ["WRITE"])
                continue
            topic_ops = ["READ", "WRITE", "CREATE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"]
            acls += _allow(u, "TOPIC", "PREFIXED", f"{prefix}.", topic_ops)
            if worker in _PURGING_WORKERS:  # the retention flow's raw purge (DeleteRecords)
                acls += _allow(u, "TOPIC", "PREFIXED", raw_prefix(prefix), ["DELETE"])
            acls += _allow(u, "TOPIC", "PREFIXED", f"{app_id}-", topic_ops)  # faust internal topics
            acls += _allow(u, "GROUP", "LITERAL", app_id, ["READ"])  # the faust flows' group
            acls += _allow(u, "GROUP", "PREFIXED", f"{app_id}.", ["READ"])  # ingest, sne... groups
            acls += _allow(u, "TRANSACTIONAL_ID", "PREFIXED", f"{app_id}-", ["WRITE"])  # faust
            acls += _allow(u, "TRANSACTIONAL_ID", "PREFIXED", f"{app_id}.", ["WRITE"])  # ingest loop
    return sorted(set(acls))


def owned(acl: Acl, prefix: str, app_id: str) -> bool:
    """True when `acl` is about a resource of this prefix or app id (the only ones we manage)."""
    if acl.resource_type == "TOPIC":
        return acl.name.startswith((f"{prefix}.", f"{app_id}-"))
    if acl.resource_type in ("GROUP", "TRANSACTIONAL_ID"):
        return acl.name == app_id or acl.name.startswith((f"{app_id}.", f"{app_id}-"))
    return False


def diff(planned: Iterable[Acl], actual: Iterable[Acl], prefix: str, app_id: str) -> AclDiff:
    """What `apply` would add and remove; ACLs of other prefixes and app ids are ignored."""
    want = set(planned)
    have = {a for a in actual if owned(a, prefix, app_id)}
    return AclDiff(tuple(sorted(want - have)), tuple(sorted(have - want)))
