"""Hypothesis strategies for canonical records, built from the Avro schemas themselves."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from gateway.codec.avro import load_schemas
from hypothesis import strategies as st

__all__ = ["ACTOR_IDS", "COMMUNES", "NUMS", "records"]

COMMUNES = ["35238", "35288", "35360", "44109", "44162", "75056", "29019", "2A004"]
NUMS = ["035260100000000001", "035260100000000002", "044260100000000001"]
ACTOR_IDS = ["200000001", "200000002", "130000035", "243500139", "824541148", "300000035",
             "CIA-243500139", "300000099", "STAT-35", "999999999"]  # fmt: skip
_SPECIAL: dict[str, Any] = {
    "numUnique": st.sampled_from(NUMS),
    "logementRecherche.communes": st.lists(st.sampled_from(COMMUNES), min_size=1, max_size=3),
    "provenance.origine": st.sampled_from(ACTOR_IDS),
    "designation.designataire": st.sampled_from(ACTOR_IDS),
    "orientation.siao": st.sampled_from(ACTOR_IDS),
    "orientation.departement": st.sampled_from(["35", "44", None]),
    "avis.commission": st.sampled_from(ACTOR_IDS),
    "organismeLabellisant": st.sampled_from(ACTOR_IDS),
    "sirenBailleur": st.sampled_from([*ACTOR_IDS, None]),
}
_TEXT = st.text(alphabet="ABCDEFGHIJ0123456789 ", max_size=6)


def _primitive(t: str) -> Any:
    return {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(0, 50),
        "long": st.integers(0, 10**6),
        "float": st.floats(0, 1000, allow_nan=False),
        "double": st.floats(0, 1000, allow_nan=False),
        "string": _TEXT,
        "bytes": st.binary(max_size=4),
    }[t]


def _type(t: Any, path: str, depth: int) -> Any:
    leaf = path.rsplit(".", 1)[-1]
    for key in (path.replace("[]", ""), leaf):
        if key in _SPECIAL:
            return _SPECIAL[key]
    if isinstance(t, list):
        return st.one_of([_type(b, path, depth) for b in t])
    if isinstance(t, dict):
        logical = t.get("logicalType")
        if logical == "date":
            return st.dates(date(2020, 1, 1), date(2030, 12, 31))
        if logical == "timestamp-millis":
            return st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)).map(
                lambda d: d.replace(microsecond=0, tzinfo=UTC)
            )
        if logical == "decimal":
            return st.integers(0, 10**7).map(lambda n: Decimal(n).scaleb(-2))
        if t["type"] == "array":
            return st.lists(_type(t["items"], path + "[]", depth), max_size=2)
        return _type(t["type"], path, depth)
    if t in ("null", "boolean", "int", "long", "float", "double", "string", "bytes"):
        return _primitive(t)
    raw = load_schemas().raw(t)
    if raw["type"] == "enum":
        return st.sampled_from(raw["symbols"])
    return _record(t, path, depth + 1)


def _record(name: str, prefix: str, depth: int) -> Any:
    raw = load_schemas().raw(name)
    fields = {}
    for f in raw["fields"]:
        path = f"{prefix}.{f['name']}" if prefix else f["name"]
        fields[f["name"]] = _type(f["type"], path, depth)
    return st.fixed_dictionaries(fields)


def records(schema: str) -> Any:
    """Random valid records of a canonical schema (scope-relevant fields drawn from the demo cast)."""
    return _record(schema, "", 0)
