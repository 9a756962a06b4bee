"""The access policy file and the actors file: pydantic models, loading, validation, versioning.

A policy is refused as a whole with every problem listed (ConfigError with Problem paths). It is
fail closed: every leaf of the canonical schemas must have a class, and a class that a role has no
grant for is withheld from that role.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from gateway.codec.avro import load_schemas
from gateway.errors import ConfigError, Problem
from gateway.policy.fields import CANONICAL_SCHEMAS, classify_leaves, leaf_paths

__all__ = [
    "DEFAULT_ACTORS_FILE",
    "DEFAULT_POLICY_FILE",
    "Actor",
    "ActorsFile",
    "Condition",
    "ConditionalGrant",
    "Policy",
    "PolicyFile",
    "PolicyStore",
    "ProtectedHouseholds",
    "Role",
    "ScopeKind",
    "Source",
    "TrustedRelation",
    "load_policy",
]

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "policy"
DEFAULT_POLICY_FILE = DATA_DIR / "default-policy.yaml"
DEFAULT_ACTORS_FILE = DATA_DIR / "demo-actors.yaml"

ScopeKind = Literal["territory", "reservations", "siao", "commission", "own_application", "everything"]
Condition = Literal["designated_by_actor", "own_contingent", "labelled_by_actor"]
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,63}$")
_COMMUNE = re.compile(r"^(\d{5}|2[AB]\d{3})$")
_DEPT = re.compile(r"^(\d{2}|2[AB]|97\d)$")
_LONG_DIGITS = re.compile(r"\d{9}")
_GUICHET = re.compile(r"^G[0-9A-Z]{4}$")
_NUM_UNIQUE = re.compile(r"^[0-9A-Z]{18}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionalGrant(_Strict):
    """A class granted only when every given condition holds."""

    when: Condition | None = None
    event_types: list[str] | None = Field(None, description="fr.gp.TypeEvenement symbols (Decision only).")

    @model_validator(mode="after")
    def _one_condition(self) -> ConditionalGrant:
        if self.when is None and self.event_types is None:
            raise ValueError("a conditional grant needs `when` or `event_types`")
        if self.event_types is not None:
            known = set(load_schemas().enum_symbols("fr.gp.TypeEvenement"))
            bad = sorted(set(self.event_types) - known)
            if bad:
                raise ValueError(f"unknown event types {bad}")
        return self


class Role(_Strict):
    scope: ScopeKind
    grants: dict[str, bool | ConditionalGrant] = Field(default_factory=dict)
    nominative: bool = Field(True, description="False: never nominative (no audit, pseudonymised key).")
    withhold_paths: dict[str, list[str]] = Field(default_factory=dict)
    derive: list[str] = Field(default_factory=list)
    description: str = ""


class ProtectedHouseholds(_Strict):
    withhold_classes: list[str] = Field(default_factory=lambda: ["contact"])
    withhold_paths: dict[str, list[str]] = Field(default_factory=dict)
    exempt_roles: list[str] = Field(default_factory=lambda: ["bailleur", "etat", "commission", "demandeur"])


class PolicyFile(_Strict):
    version: str = Field(min_length=1)
    description: str = ""
    actors_file: str | None = None
    classes: list[str]
    fields: dict[str, dict[str, str]]
    roles: dict[str, Role]
    protected_households: ProtectedHouseholds = Field(default_factory=ProtectedHouseholds)
    pseudonymisation_secret: SecretStr = Field(
        SecretStr("change-me"), description="Key of the HMAC that pseudonymises numéros uniques."
    )


class Actor(_Strict):
    id: str
    role: str
    name: str
    communes: list[str] = Field(default_factory=list)
    departements: list[str] = Field(default_factory=list)
    reservations: dict[str, int] = Field(default_factory=dict, description="commune -> dwellings")
    contingent: str | None = Field(None, description="fr.gp.TypeReservataire of a réservataire.")
    numUnique: str | None = None  # noqa: N815 - the canonical field name
    guichets: list[str] = Field(
        default_factory=list,
        description="Guichet codes (Gxxxx) of its registration counters: an event entered or caused at"
        " one of them (provenance.saisie / origine) is this organisation's.",
    )

    @model_validator(mode="after")
    def _shape(self) -> Actor:
        problems = []
        if not _ID.match(self.id):
            problems.append("id must be a SIREN, a guichet code or a short code")
        problems += [f"commune {c!r} is not an INSEE code" for c in self.communes if not _COMMUNE.match(c)]
        problems += [f"département {d!r} is unknown" for d in self.departements if not _DEPT.match(d)]
        problems += [
            f"commune {c!r} is not an INSEE code" for c in self.reservations if not _COMMUNE.match(c)
        ]
        if self.numUnique is not None and not _NUM_UNIQUE.match(self.numUnique):
            problems.append("numUnique must have 18 characters")
        if self.numUnique is not None and _LONG_DIGITS.search(self.id):
            # the id names the actor's topic and principal: it must not carry the numéro unique
            problems.append("the id of an applicant must be opaque (no run of 9 or more digits)")
        problems += [f"guichet {g!r} is not a guichet code" for g in self.guichets if not _GUICHET.match(g)]
        if self.contingent is not None and self.contingent not in load_schemas().enum_symbols(
            "fr.gp.TypeReservataire"
        ):
            problems.append("contingent is not a TypeReservataire symbol")
        if problems:
            raise ValueError("; ".join(problems))
        return self


_SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")


class Source(_Strict):
    """A producer of raw events (an ERP, an SPTA, the SIAO's tool, a commission secretariat): a Kafka
    principal that writes only `<prefix>.raw.<format>.<id>` for the formats it declares, and may enter
    events (`saisie`) only for the organisations it speaks for."""

    id: str = Field(description="Principal name and raw-topic suffix: lower-case letters, digits, '-'.")
    name: str = ""
    formats: list[str] = Field(description="Input formats it sends (gateway.formats.FORMATS).")
    speaks_for: list[str] = Field(description="Actor ids it may enter events for (saisie).")

    @model_validator(mode="after")
    def _shape(self) -> Source:
        from gateway.formats import FORMATS  # noqa: PLC0415 - the registry of input formats (a leaf)

        problems = []
        if not _SOURCE_ID.match(self.id):
            problems.append("id must be 2-40 lower-case letters, digits or '-'")
        problems += [f"format {f!r} is unknown" for f in self.formats if f not in FORMATS]
        if not self.formats:
            problems.append("a source declares at least one format")
        if not self.speaks_for:
            problems.append("a source speaks for at least one actor")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class TrustedRelation(_Strict):
    """`entering` (the organisation that enters an event) may name `named` (a commission, a SIAO, a
    réservataire…) and so give it scope, although their territories do not overlap."""

    entering: str
    named: str


class ActorsFile(_Strict):
    actors: list[Actor]
    sources: list[Source] = Field(default_factory=list)
    trusted: list[TrustedRelation] = Field(default_factory=list)


def _pydantic_problems(exc: ValidationError, where: str) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        out.append(Problem(f"{where}:{loc}" if loc else where, err["msg"], err["type"]))
    return out


def _read_yaml(path: Path, problems: list[Problem]) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, RecursionError) as exc:
        problems.append(Problem(str(path), f"unreadable: {type(exc).__name__}"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problems.append(Problem(where, "not valid YAML"))
    return None


@dataclass(frozen=True, eq=False)
class Policy:
    """A validated, compiled policy: the file, its actors, each leaf's class and the version."""

    file: PolicyFile
    actors: Mapping[str, Actor]
    leaf_classes: Mapping[str, Mapping[str, str]]  # schema -> leaf path -> class
    version: str
    source: str = ""
    sources: Mapping[str, Source] = field(default_factory=dict)
    trusted: frozenset[tuple[str, str]] = frozenset()  # (entering, named)
    _cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def roles(self) -> Mapping[str, Role]:
        return self.file.roles

    @cached_property
    def class_paths(self) -> dict[str, dict[str, frozenset[str]]]:
        """schema -> class -> its leaf paths."""
        out: dict[str, dict[str, set[str]]] = {}
        for schema, leaves in self.leaf_classes.items():
            per: dict[str, set[str]] = {}
            for path, cls in leaves.items():
                per.setdefault(cls, set()).add(path)
            out[schema] = per
        return {s: {c: frozenset(p) for c, p in per.items()} for s, per in out.items()}

    def expand_paths(self, schema: str, prefixes: list[str]) -> frozenset[str]:
        """Leaf paths under any of `prefixes` (`[]` optional)."""
        norm = [p.replace("[]", "") for p in prefixes]
        out = set()
        for leaf in self.leaf_classes[schema]:
            bare = leaf.replace("[]", "")
            if any(bare == p or bare.startswith(p + ".") for p in norm):
                out.add(leaf)
        return frozenset(out)

    @property
    def secret(self) -> bytes:
        return self.file.pseudonymisation_secret.get_secret_value().encode()

    @cached_property
    def guichet_owner(self) -> dict[str, str]:
        """Guichet code -> the actor whose registration counter it is."""
        return {g: a.id for a in self.actors.values() for g in a.guichets}

    def organisation(self, code: str | None) -> str | None:
        """The actor an organisation code of a record names (its id, or one of its guichet codes)."""
        if not code:
            return None
        return code if code in self.actors else self.guichet_owner.get(code)

    def may_enter(self, source_id: str) -> frozenset[str]:
        """The `provenance.saisie` codes an input of this source may carry: the source itself, the
        organisations it speaks for and their guichets (empty for an undeclared source)."""
        key = ("may_enter", source_id)
        found = self._cache.get(key)
        if found is None:
            src = self.sources.get(source_id)
            codes: set[str] = set()
            if src is not None:
                codes = {src.id, *src.speaks_for}
                codes.update(g for a in src.speaks_for if a in self.actors for g in self.actors[a].guichets)
            found = self._cache[key] = frozenset(codes)
        return frozenset(found)


def _check_paths(where: str, by_schema: Mapping[str, list[str]], problems: list[Problem]) -> None:
    for schema, paths in by_schema.items():
        if schema not in CANONICAL_SCHEMAS:
            problems.append(Problem(f"{where}.{schema}", "not a canonical schema"))
            continue
        known = {p.replace("[]", "") for p in leaf_paths(schema)}
        prefixes = {k.rsplit(".", i)[0] for k in known for i in range(k.count(".") + 1)}
        for p in paths:
            if p.replace("[]", "") not in prefixes:
                problems.append(Problem(f"{where}.{schema}.{p}", "names no field of the schema"))


def _semantic_problems(
    pf: PolicyFile, actors: list[Actor]
) -> tuple[dict[str, dict[str, str]], list[Problem]]:
    from gateway.policy.derive import DERIVATIONS  # noqa: PLC0415 - avoids an import cycle

    problems: list[Problem] = []
    classes = set(pf.classes)
    leaf_classes: dict[str, dict[str, str]] = {}
    for schema in CANONICAL_SCHEMAS:
        mapping = pf.fields.get(schema)
        if mapping is None:
            problems.append(Problem(f"fields.{schema}", "missing: every canonical schema needs its classes"))
            continue
        leaves, probs = classify_leaves(schema, mapping, f"fields.{schema}")
        problems += probs
        problems += [
            Problem(f"fields.{schema}.{k}", f"unknown class {v!r}")
            for k, v in mapping.items()
            if v not in classes
        ]
        leaf_classes[schema] = leaves
    problems += [
        Problem(f"fields.{s}", "not a canonical schema") for s in pf.fields if s not in CANONICAL_SCHEMAS
    ]
    for name, role in pf.roles.items():
        where = f"roles.{name}"
        problems += [Problem(f"{where}.grants.{c}", "unknown class") for c in role.grants if c not in classes]
        problems += [
            Problem(f"{where}.derive.{d}", "unknown derivation") for d in role.derive if d not in DERIVATIONS
        ]
        _check_paths(f"{where}.withhold_paths", role.withhold_paths, problems)
    ph = pf.protected_households
    where = "protected_households"
    problems += [
        Problem(f"{where}.withhold_classes", f"unknown class {c!r}")
        for c in ph.withhold_classes
        if c not in classes
    ]
    problems += [
        Problem(f"{where}.exempt_roles", f"unknown role {r!r}") for r in ph.exempt_roles if r not in pf.roles
    ]
    _check_paths("protected_households.withhold_paths", ph.withhold_paths, problems)
    seen: set[str] = set()
    for i, actor in enumerate(actors):
        where = f"actors[{i}]({actor.id})"
        if actor.id in seen:
            problems.append(Problem(where, "duplicate actor id"))
        seen.add(actor.id)
        actor_role = pf.roles.get(actor.role)
        if actor_role is None:
            problems.append(Problem(where, f"unknown role {actor.role!r}"))
            continue
        if actor_role.scope == "territory" and not (actor.communes or actor.departements):
            problems.append(Problem(where, "a territorial role needs communes or départements"))
        if actor_role.scope == "reservations" and not actor.reservations:
            problems.append(Problem(where, "a réservataire needs reservations by commune"))
        if actor_role.scope == "own_application" and actor.numUnique is None:
            problems.append(Problem(where, "a demandeur needs its numUnique"))
    return leaf_classes, problems


def load_policy(
    path: Path | None = None, actors_path: Path | None = None, *, secret: SecretStr | None = None
) -> Policy:
    """Load, validate and compile a policy; ConfigError listing every problem when it is wrong.

    `secret` (GATEWAY_PSEUDONYMISATION_SECRET) replaces the file's pseudonymisation secret, so that
    production keys stay out of policy files kept in version control.
    """
    path = path or DEFAULT_POLICY_FILE
    problems: list[Problem] = []
    raw_policy = _read_yaml(path, problems)
    pf: PolicyFile | None = None
    if raw_policy is not None:
        try:
            pf = PolicyFile.model_validate(raw_policy)
        except ValidationError as exc:
            problems += _pydantic_problems(exc, path.name)
    if actors_path is None:
        rel = pf.actors_file if pf is not None else None
        actors_path = (path.parent / rel) if rel else None
    actors: list[Actor] = []
    sources: list[Source] = []
    trusted: list[TrustedRelation] = []
    raw_actors_bytes = b""
    if actors_path is not None:
        raw_actors = _read_yaml(actors_path, problems)
        raw_actors_bytes = actors_path.read_bytes() if raw_actors is not None else b""
        if raw_actors is not None:
            try:
                parsed = ActorsFile.model_validate(raw_actors)
                actors, sources, trusted = parsed.actors, parsed.sources, parsed.trusted
            except ValidationError as exc:
                problems += _pydantic_problems(exc, actors_path.name)
    if pf is None:
        raise ConfigError(f"policy {path} refused", problems)
    if secret is not None and secret.get_secret_value():
        pf = pf.model_copy(update={"pseudonymisation_secret": secret})
    leaf_classes, semantic = _semantic_problems(pf, actors)
    problems += semantic
    problems += _source_problems(actors, sources, trusted)
    if problems:
        raise ConfigError(f"policy {path} refused ({len(problems)} problems)", problems)
    digest = hashlib.sha256(path.read_bytes() + b"\0" + raw_actors_bytes).hexdigest()[:12]
    return Policy(
        file=pf,
        actors={a.id: a for a in actors},
        leaf_classes=leaf_classes,
        version=f"{pf.version}+{digest}",
        source=str(path),
        sources={s.id: s for s in sources},
        trusted=frozenset((t.entering, t.named) for t in trusted),
    )


def _source_problems(
    actors: list[Actor], sources: list[Source], trusted: list[TrustedRelation]
) -> list[Problem]:
    known = {a.id for a in actors}
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, src in enumerate(sources):
        where = f"sources[{i}]({src.id})"
        if src.id in seen or src.id in known:
            problems.append(Problem(where, "duplicate id (sources and actors share one namespace)"))
        seen.add(src.id)
        problems += [
            Problem(where, f"speaks for unknown actor {a!r}") for a in src.speaks_for if a not in known
        ]
    owners: dict[str, str] = {}
    for actor in actors:
        for g in actor.guichets:
            if owners.setdefault(g, actor.id) != actor.id:
                problems.append(Problem(f"actors({actor.id})", f"guichet {g} is also {owners[g]}'s"))
    for i, rel in enumerate(trusted):
        problems += [
            Problem(f"trusted[{i}]", f"unknown actor {a!r}")
            for a in (rel.entering, rel.named)
            if a not in known
        ]
    return problems


class PolicyStore:
    """The running policy. `reload()` swaps in a new one only when it is valid as a whole."""

    def __init__(
        self,
        path: Path | None = None,
        actors_path: Path | None = None,
        *,
        secret: SecretStr | None = None,
        check_key: bool = False,
    ) -> None:
        """`check_key` (the running worker): a weak pseudonymisation key is refused outside the
        bundled demo policy, and tolerated with a warning in it (gateway.policy.secret)."""
        self.path = path
        self.actors_path = actors_path
        self.secret = secret
        self.check_key = check_key
        self._lock = threading.Lock()
        self._policy = load_policy(path, actors_path, secret=secret)
        if check_key:
            _check_key(self._policy)
        self.last_error: ConfigError | None = None

    @property
    def policy(self) -> Policy:
        return self._policy

    def reload(self) -> Policy:
        """Load the files again; on error keep the running policy and raise the ConfigError."""
        try:
            new = load_policy(self.path, self.actors_path, secret=self.secret)
            if self.check_key:
                _check_key(new)
        except ConfigError as exc:
            self.last_error = exc
            raise
        with self._lock:
            self._policy = new
            self.last_error = None
        return new


def _check_key(policy: Policy) -> None:
    """The running policy's pseudonymisation key (gateway.policy.secret): refused when weak outside
    the bundled demo policy, tolerated with a warning in it."""
    from gateway.policy.secret import check_pseudonymisation_key  # noqa: PLC0415

    check_pseudonymisation_key(policy.source, policy.secret, DEFAULT_POLICY_FILE)
