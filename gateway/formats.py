"""The one registry of input formats: name, normaliser, content type, file extensions.

Everything that lists formats derives from `INPUT_FORMATS`: the raw topics (`gateway.topics`), the
normalisers (`gateway.normalise`), the file-drop connector's extensions, `gateway normalise
--format`, the sources of the actors file and the demo. A leaf module (no imports of the gateway):
the normaliser is named as `"module:function"` and imported only when used.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BY_NAME", "FORMATS", "INPUT_FORMATS", "InputFormat", "by_short_name", "unique_extensions"]


@dataclass(frozen=True, slots=True)
class InputFormat:
    name: str  # raw topics are <prefix>.raw.<name>.<source>
    normaliser: str  # "module:function", (bytes, received_at) -> list[Outcome]
    content_type: str
    extensions: tuple[str, ...]  # file suffixes of this format (an ambiguous one is not a default)
    short: str  # the prefix of sample file names (samples/bad/<short>-...)
    description: str
    max_bytes: int  # larger inputs are rejected before parsing ("too large")


MIB = 1024 * 1024

INPUT_FORMATS: tuple[InputFormat, ...] = (
    InputFormat(
        "sne-xml",
        "gateway.normalise.sne_xml:normalise_sne_xml",
        "application/xml",
        (".xml",),
        "sne",
        "SNE interfaceNuu XML export of one application",
        5 * MIB,  # one application (the hardened XML parser's own limit)
    ),
    InputFormat(
        "cdc-json",
        "gateway.normalise.cdc_json:normalise_cdc_json",
        "application/json",
        (".json", ".jsonl"),
        "cdc",
        "Debezium change events of a landlord ERP's tables",
        16 * MIB,  # a Debezium batch
    ),
    InputFormat(
        "siao-json",
        "gateway.normalise.siao_json:normalise_siao_json",
        "application/json",
        (".json", ".jsonl"),
        "siao",
        "SIAO orientations and priority labels",
        8 * MIB,
    ),
    InputFormat(
        "cal-csv",
        "gateway.normalise.cal_csv:normalise_cal_csv",
        "text/csv",
        (".csv",),
        "cal",
        "CAL (attribution commission) decisions, one per line",
        4 * MIB,  # one CAL's decisions: a few hundred lines, ~100 bytes each
    ),
    InputFormat(
        "comed-json",
        "gateway.normalise.comed_json:normalise_comed_json",
        "application/json",
        (".json",),
        "comed",
        "COMED (DALO mediation commission) decisions",
        8 * MIB,
    ),
)

FORMATS: tuple[str, ...] = tuple(f.name for f in INPUT_FORMATS)
BY_NAME: dict[str, InputFormat] = {f.name: f for f in INPUT_FORMATS}


def unique_extensions() -> dict[str, str]:
    """Suffix -> format, for the suffixes that exactly one format claims (`.json` is ambiguous)."""
    claims: dict[str, list[str]] = {}
    for f in INPUT_FORMATS:
        for ext in f.extensions:
            claims.setdefault(ext, []).append(f.name)
    return {ext: names[0] for ext, names in claims.items() if len(names) == 1}


def by_short_name(file_name: str) -> str | None:
    """The format whose short name prefixes `file_name` (`cdc-evenements.jsonl` -> cdc-json)."""
    return next((f.name for f in INPUT_FORMATS if file_name.startswith(f.short + "-")), None)
