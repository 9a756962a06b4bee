"""A realistic actor stream for tests and benchmarks: the bundled samples routed by the default policy,
as the route flow publishes them on `<prefix>.actor.<id>` (encoded view, key, headers)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, replace

from gateway.codec.avro import decode_single_object
from gateway.connectors import SinkRecord
from gateway.policy.model import load_policy
from gateway.policy.router import Router
from gateway.policy.scope import ScopeState
from gateway.testing.samples import canonical_samples

__all__ = ["ActorRecord", "actor_stream", "busiest_actor", "sink_records"]


@dataclass(frozen=True, slots=True)
class ActorRecord:
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    view: str  # the view schema's name

    def with_id(self, suffix: str) -> ActorRecord:
        """A copy with another `ce_id` (and key), for streams longer than the samples."""
        heads = tuple((k, v + suffix.encode() if k == "ce_id" else v) for k, v in self.headers)
        key = (self.key or b"") + suffix.encode()
        return replace(self, headers=heads, key=key)


@functools.cache
def _routed() -> dict[str, tuple[ActorRecord, ...]]:
    policy = load_policy()
    router = Router(policy)
    states: dict[bytes | None, ScopeState | None] = {}
    out: dict[str, list[ActorRecord]] = {}
    for schema, record in canonical_samples():
        key = str(record.get("numUnique") or "").encode() or None
        result = router.route(schema, key, record, states.get(key))
        states[key] = result.state
        for d in result.deliveries:
            for actor in d.actors:
                out.setdefault(actor, []).append(ActorRecord(d.key, d.value, d.headers, d.view.name))
    unique: dict[str, tuple[ActorRecord, ...]] = {}
    for actor, records in out.items():  # one record per ce_id (a test counts deliveries by id)
        by_id = {dict(r.headers).get("ce_id"): r for r in records}
        unique[actor] = tuple(by_id.values())
    return unique


def busiest_actor() -> str:
    """The nominative actor of the default policy that receives the most sample records."""
    routed = _routed()
    roles = {a.id: a.role for a in load_policy().actors.values()}
    nominative = [a for a in sorted(routed) if roles.get(a) != "statistique"]
    return max(nominative, key=lambda a: len(routed[a]))


def actor_stream(actor: str | None = None, count: int | None = None) -> tuple[str, list[ActorRecord]]:
    """(actor id, its records): the samples' records, repeated with fresh ids up to `count`."""
    actor = actor or busiest_actor()
    base = list(_routed()[actor])
    if count is None:
        return actor, base
    return actor, [base[i % len(base)].with_id(f"#{i}") for i in range(count)]


def sink_records(
    actor: str | None = None, *, topic: str = "gp.actor.contract", count: int | None = None
) -> Iterator[SinkRecord]:
    """The records a sink receives for `actor` (decoded views), at offsets 0, 1, ... of `topic`."""
    from gateway.codec.avro import load_schemas  # noqa: PLC0415

    actor, records = actor_stream(actor, count)
    router = Router(load_policy())
    codecs = dict(load_schemas().by_fingerprint())
    from gateway.policy.explain import all_views  # noqa: PLC0415

    for info in all_views(router):
        codecs[info.view.codec.fingerprint] = info.view.codec
    for offset, r in enumerate(records):
        codec, value = decode_single_object(r.value, codecs)
        yield SinkRecord(
            schema=codec.name,
            key=(r.key or b"").decode(),
            record=value,
            headers=r.headers,
            topic=topic,
            partition=0,
            offset=offset,
            writer_schema=codec.parsed,
        )
