"""`gateway policy explain|test|diff|views|check`: operator tools for the access policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from gateway.cli.inputs import path_option
from gateway.policy.model import Policy, load_policy

__all__ = ["policy"]

_POLICY_OPT = path_option(
    "--policy", "policy_path", "Policy file (default: GATEWAY_POLICY_FILE, else the bundled default policy)."
)
_ACTORS_OPT = path_option("--actors", "actors_path", "Actors file (default: the policy's actors_file).")


def _load(policy_path: Path | None, actors_path: Path | None) -> Policy:
    from gateway.settings import GatewaySettings  # noqa: PLC0415 - env read only when needed

    settings = GatewaySettings()
    return load_policy(
        policy_path or settings.policy_file, actors_path, secret=settings.pseudonymisation_secret
    )


@click.group("policy")
def policy() -> None:
    """Inspect, test and compare access policies (R441-2-6 as data)."""


@policy.command("check")
@_POLICY_OPT
@_ACTORS_OPT
def check(policy_path: Path | None, actors_path: Path | None) -> None:
    """Validate a policy and its actors (every problem listed; exit 2 when refused)."""
    loaded = _load(policy_path, actors_path)
    click.echo(
        f"policy {loaded.version}: {len(loaded.actors)} actors, {len(loaded.roles)} roles,"
        f" {len(loaded.sources)} sources, {len(loaded.trusted)} trusted relations, OK"
    )


@policy.command("explain")
@click.option("--actor", "actor_id", required=True, help="Actor id (SIREN, guichet code or code).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_POLICY_OPT
@_ACTORS_OPT
def explain(actor_id: str, as_json: bool, policy_path: Path | None, actors_path: Path | None) -> None:
    """What an actor receives: territory, scope rule, classes and fields granted, view fingerprints."""
    from gateway.policy.explain import explain_actor  # noqa: PLC0415
    from gateway.policy.router import Router  # noqa: PLC0415

    loaded = _load(policy_path, actors_path)
    info = explain_actor(Router(loaded), actor_id)
    if info is None:
        raise click.ClickException(
            f"actor {actor_id} is unknown to policy {loaded.version}: it receives nothing"
        )
    if as_json:
        click.echo(json.dumps(info.__dict__, indent=2, ensure_ascii=False))
        return
    a = info.actor
    click.echo(f"actor       {a['id']}  {a['name']}")
    click.echo(f"role        {a['role']}   (scope rule: {info.scope}; nominative: {info.nominative})")
    territory = [f"communes {','.join(a['communes'])}" if a.get("communes") else ""]
    territory.append(f"départements {','.join(a['departements'])}" if a.get("departements") else "")
    territory.append(f"reservations in {','.join(a['reservations'])}" if a.get("reservations") else "")
    territory.append(f"application {a['numUnique']}" if a.get("numUnique") else "")
    click.echo(f"territory   {'; '.join(t for t in territory if t) or '(by link, see scope rule)'}")
    click.echo(f"policy      {loaded.version}")
    click.echo("classes granted:")
    for cls, how in info.grants.items():
        click.echo(f"  {cls:20} {how}")
    click.echo(f"classes withheld: {', '.join(info.withheld_classes) or '-'}")
    click.echo(f"protected households: {info.protected_rule}")
    if info.derived:
        click.echo(f"derived fields: {', '.join(info.derived)}")
    click.echo("views (schema, conditions -> view, fingerprint, fields, of which withholdable):")
    for v in info.views:
        cond = "+".join(v["conditions"]) or "-"
        click.echo(
            f"  {v['schema']:15} {cond:30} "
            f"{v['view']}  {v['fingerprint']}  {len(v['fields'])} fields, {len(v['nullable'])} withholdable"
        )


@policy.command("views")
@click.option("--write", "write_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Also write each view schema as <dir>/<view name>.avsc.")  # fmt: skip
@_POLICY_OPT
@_ACTORS_OPT
def views(write_dir: Path | None, policy_path: Path | None, actors_path: Path | None) -> None:
    """Every view schema the policy can produce, with its fingerprint and who gets it."""
    from gateway.policy.explain import all_views  # noqa: PLC0415
    from gateway.policy.router import Router  # noqa: PLC0415

    loaded = _load(policy_path, actors_path)
    infos = all_views(Router(loaded))
    seen: dict[str, list[str]] = {}
    by_name: dict[str, Any] = {}
    for info in infos:
        label = info.role + ("+" + "+".join(info.conditions) if info.conditions else "")
        seen.setdefault(info.view.name, []).append(label)
        by_name[info.view.name] = info.view
    click.echo(f"policy {loaded.version}: {len(by_name)} views")
    for name, view in sorted(by_name.items()):
        click.echo(f"{name}  {view.fingerprint_hex}  {len(view.paths):3} fields  {', '.join(view.classes)}")
        click.echo(f"    for: {'; '.join(sorted(set(seen[name])))}")
    if write_dir is not None:
        write_dir.mkdir(parents=True, exist_ok=True)
        for name, view in by_name.items():
            (write_dir / f"{name}.avsc").write_text(json.dumps(view.avro, indent=2, ensure_ascii=False))
        click.echo(f"wrote {len(by_name)} schemas to {write_dir}")


@policy.command("test")
@click.argument("cases_path", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_POLICY_OPT
@_ACTORS_OPT
def test(cases_path: Path, policy_path: Path | None, actors_path: Path | None) -> None:
    """Run declarative cases (input + actor -> expected output or not_delivered); exit 1 on any failure."""
    from gateway.policy.cases import load_cases, run_cases  # noqa: PLC0415
    from gateway.policy.router import Router  # noqa: PLC0415

    loaded = _load(policy_path, actors_path)
    results = run_cases(load_cases(cases_path), Router(loaded))
    failed = [r for r in results if not r.ok]
    for r in results:
        click.echo(f"{'ok  ' if r.ok else 'FAIL'} [{r.actor}] {r.name}")
        for f in r.failures:
            click.echo(f"       - {f}")
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed (policy {loaded.version})")
    if failed:
        raise SystemExit(1)


@policy.command("diff")
@click.argument("old", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.argument("new", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@path_option("--actors", "actors_path", "Actors file for both (default: each policy's actors_file).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--traffic", is_flag=True,
              help="Dry-run both policies on the canonical topics of the broker (settings).")  # fmt: skip
def diff(old: Path, new: Path, actors_path: Path | None, as_json: bool, traffic: bool) -> None:
    """Which actors gain or lose which fields between two policies (--traffic: on real records)."""
    from gateway.policy.explain import diff_policies  # noqa: PLC0415

    before, after = load_policy(old, actors_path), load_policy(new, actors_path)
    if traffic:
        _dry_run(before, after, as_json)
        return
    changes = diff_policies(before, after)
    if as_json:
        click.echo(json.dumps(changes, indent=2, ensure_ascii=False))
        return
    click.echo(f"{before.version} -> {after.version}: {len(changes)} actor(s) affected")
    for entry in changes:
        actor = after.actors.get(entry["actor"]) or before.actors.get(entry["actor"])
        role = actor.role if actor is not None else "?"
        click.echo(f"{entry['actor']} ({role}){' ' + entry['change'] if 'change' in entry else ''}")
        for schema, change in entry.get("fields", {}).items():
            for p in change["gained"]:
                click.echo(f"  + {schema} {p}")
            for p in change["lost"]:
                click.echo(f"  - {schema} {p}")


def _dry_run(before: Policy, after: Policy, as_json: bool) -> None:
    from gateway.cli.audit import read_topic  # noqa: PLC0415
    from gateway.codec.avro import load_schemas  # noqa: PLC0415
    from gateway.codec.framing import decoder_for  # noqa: PLC0415
    from gateway.errors import RejectedMessage  # noqa: PLC0415
    from gateway.policy.explain import dry_run  # noqa: PLC0415
    from gateway.policy.router import Router  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415
    from gateway.topics import canonical_topic  # noqa: PLC0415

    settings = GatewaySettings()
    decoder = decoder_for(settings.schema_registry_url, load_schemas().by_fingerprint())
    raw = []
    for kind in ("demande", "decision"):
        raw += list(read_topic(settings.bootstrap_servers, canonical_topic(kind, settings.topic_prefix)))
    raw.sort(key=lambda r: (r.timestamp, r.topic, r.partition, r.offset))
    records = []
    skipped = 0
    for r in raw:
        if not r.value:
            continue  # a tombstone (an erasure, or compaction): no record to route
        try:
            codec, record = decoder.decode(r.value)
        except RejectedMessage:
            skipped += 1
            continue
        source = [(k, v) for k, v in (r.headers or []) if k == "gp.source" and v]  # who entered it
        records.append((codec.name, r.key, record, source))
    stats = dry_run(Router(before), Router(after), records)
    changed = {
        a: s
        for a, s in sorted(stats.items())
        if s.gained_records or s.lost_records or s.fields_gained or s.fields_lost
    }
    if as_json:
        out = {
            a: {**s.__dict__, "fields_gained": sorted(s.fields_gained), "fields_lost": sorted(s.fields_lost)}
            for a, s in changed.items()
        }
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(
        f"dry run on {len(records)} canonical records ({skipped} undecodable skipped): "
        f"{before.version} -> {after.version}, {len(changed)} actor(s) affected"
    )
    for actor_id, s in changed.items():
        click.echo(
            f"{actor_id}: records {s.before} -> {s.after} "
            f"(+{s.gained_records} new, -{s.lost_records} no longer sent)"
        )
        for p in sorted(s.fields_gained):
            click.echo(f"  + {p}")
        for p in sorted(s.fields_lost):
            click.echo(f"  - {p}")
