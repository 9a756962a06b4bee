"""What the SNE refuses, checked on an interfaceNuu tree: the same pure rules run in the connector
(before sending: refuse with the SNE field named) and in the simulator (answer with CTRL_DEM anomalies).

Codes CTRL_DEM_0001..0013 and 0020..0030 are the project's own numbering (the real list is in the SNE
"Dossier Interfaces", not available); 0033 / 0034 follow the v2.1 note of the brief (sub-motif of an
irrecevabilité radiation; attribution data). Messages never carry a value, only the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from gateway.errors import Problem
from lxml import etree

from connectors.sne.nuu import NUU_NS, q

__all__ = [
    "ANOMALY_TEXTS",
    "XSD_PATH",
    "Anomaly",
    "as_problems",
    "file_problems",
    "mandatory_anomalies",
    "type_fichier_of",
    "xml_unsafe_fields",
    "xsd",
    "xsd_problems",
]

XSD_PATH = Path(__file__).resolve().parents[2] / "schemas" / "xsd" / "interfaceNuu.xsd"
_DL = "interfaceNuu/demande/demandeLogement"
# typeFichier whose file is checked for the application's mandatory blocks. A RAD is not: it reports
# a radiation of an application the SNE already holds, completed from the SNE's own copy, and must not
# depend on that copy being complete (UNCERTAIN: libsne checks every file it sends; see CONFORMANCE.md)
_FULL = ("CRE", "CRS", "MOD", "REN")
TYPES_FICHIER = ("CRE", "CRS", "MOD", "RAD", "REN", "SUP", "DIS", "RET", "COP")
# an INSEE commune code: 5 digits, or Corsica's 2A / 2B followed by 3 digits
INSEE = re.compile(r"[0-9]{5}|2[AB][0-9]{3}")

ANOMALY_TEXTS: dict[str, str] = {
    "CTRL_DEM_0001": "La version d'interface est absente ou non supportée.",
    "CTRL_DEM_0002": "Le type de fichier est absent ou inconnu.",
    "CTRL_DEM_0003": "La date du fichier est absente.",
    "CTRL_DEM_0004": "Le numéro de guichet est obligatoire.",
    "CTRL_DEM_0005": "La date de création de la demande est obligatoire.",
    "CTRL_DEM_0006": "L'indicateur de demande élargie est obligatoire.",
    "CTRL_DEM_0007": "Au moins un type de logement recherché est obligatoire.",
    "CTRL_DEM_0008": "Au moins une commune de localisation souhaitée (code INSEE) est obligatoire.",
    "CTRL_DEM_0009": "Le numéro unique est obligatoire pour ce type de fichier.",
    "CTRL_DEM_0010": "Le nom et le prénom du demandeur sont obligatoires.",
    "CTRL_DEM_0012": "Le motif de radiation est obligatoire.",
    "CTRL_DEM_0013": "La date de radiation est obligatoire.",
    "CTRL_DEM_0020": "Le numéro unique est inconnu.",
    "CTRL_DEM_0021": "La demande est déjà radiée.",
    "CTRL_DEM_0022": "La demande n'est pas radiée.",
    "CTRL_DEM_0030": "Le demandeur est déjà enregistré (doublon).",
    "CTRL_DEM_0033": "Le sous-motif est obligatoire pour une radiation pour irrecevabilité.",
    "CTRL_DEM_0034": "Les données d'attribution sont obligatoires pour une radiation pour attribution.",
}


@dataclass(frozen=True, slots=True)
class Anomaly:
    code: str
    path: str  # interfaceNuu path of the field
    message: str


def _a(code: str, path: str) -> Anomaly:
    return Anomaly(code, path, ANOMALY_TEXTS[code])


def _text(el: etree._Element | None, *path: str) -> str:
    node = el
    for p in path:
        if node is None:
            return ""
        node = node.find(q(p))
    return (node.text or "").strip() if node is not None else ""


def _find(el: etree._Element | None, *path: str) -> etree._Element | None:
    node = el
    for p in path:
        if node is None:
            return None
        node = node.find(q(p))
    return node


def type_fichier_of(root: etree._Element) -> str:
    """The file's typeFichier; an interface 02.00 file without one (a demand extract: real 02.00
    exports have no typeFichier) is read from its content: RAD with a radiation block, MOD with a
    numéro unique, else CRE (UNCERTAIN: the project's reading, see CONFORMANCE.md). "" when absent
    from a 02.01 file."""
    tf = _text(root, "entete", "typeFichier")
    if tf or root.get("versionInterface") != "02.00":
        return tf
    dl = _find(root, "demande", "demandeLogement")
    if _find(dl, "radiation") is not None:
        return "RAD"
    return "MOD" if _text(dl, "numUnique") else "CRE"


def mandatory_anomalies(root: etree._Element) -> list[Anomaly]:
    """Every mandatory-field anomaly of an interfaceNuu file (empty when complete)."""
    out: list[Anomaly] = []
    if root.tag != q("interfaceNuu"):
        return [_a("CTRL_DEM_0001", "interfaceNuu")]
    if root.get("versionInterface") not in ("02.00", "02.01"):
        out.append(_a("CTRL_DEM_0001", "interfaceNuu/@versionInterface"))
    tf = type_fichier_of(root)
    if tf not in TYPES_FICHIER:
        out.append(_a("CTRL_DEM_0002", "interfaceNuu/entete/typeFichier"))
    if not _text(root, "entete", "dateFichier"):
        out.append(_a("CTRL_DEM_0003", "interfaceNuu/entete/dateFichier"))
    dl = _find(root, "demande", "demandeLogement")
    if not _text(dl, "numGuichet"):
        out.append(_a("CTRL_DEM_0004", f"{_DL}/numGuichet"))
    # a CAL decision report, like a radiation, is checked for its own fields only
    if tf in _FULL and _find(dl, "decisionCal") is None:
        if not _text(dl, "dateCreationDemande"):
            out.append(_a("CTRL_DEM_0005", f"{_DL}/dateCreationDemande"))
        lr = _find(dl, "logementRecherche")
        if _text(lr, "demandeElargie") not in ("true", "false", "1", "0"):
            out.append(_a("CTRL_DEM_0006", f"{_DL}/logementRecherche/demandeElargie"))
        types = lr.findall(f"{q('listeTypeLogement')}/{q('typeLogement')}") if lr is not None else []
        if not [t for t in types if t.get("code")]:
            out.append(_a("CTRL_DEM_0007", f"{_DL}/logementRecherche/listeTypeLogement/typeLogement"))
        communes = (
            lr.findall(f"{q('listeLocalisationSouhaite')}/{q('localisationSouhaite')}/{q('commune')}")
            if lr is not None
            else []
        )
        if not [c for c in communes if INSEE.fullmatch(c.get("code") or "")]:
            out.append(
                _a(
                    "CTRL_DEM_0008",
                    f"{_DL}/logementRecherche/listeLocalisationSouhaite/localisationSouhaite/commune",
                )
            )
        dem = _find(dl, "personnePhysique", "demandeur")
        if _find(dl, "personneMorale") is None and (not _text(dem, "nom") or not _text(dem, "prenom")):
            out.append(_a("CTRL_DEM_0010", f"{_DL}/personnePhysique/demandeur"))
    if tf in ("MOD", "REN", "RAD", "SUP") and not _text(dl, "numUnique"):
        out.append(_a("CTRL_DEM_0009", f"{_DL}/numUnique"))
    if tf == "RAD":
        rad = _find(dl, "radiation")
        motif_el = _find(rad, "motifRadiation")
        if motif_el is None:
            out.append(_a("CTRL_DEM_0012", f"{_DL}/radiation/motifRadiation"))
        if not _text(rad, "dateRadiation"):
            out.append(_a("CTRL_DEM_0013", f"{_DL}/radiation/dateRadiation"))
        motif = motif_el.get("code") if motif_el is not None else None
        if motif == "RADIRR" and not (_find(rad, "sousMotifRadiation") is not None):
            out.append(_a("CTRL_DEM_0033", f"{_DL}/radiation/sousMotifRadiation"))
        if motif == "RADATT":
            out.extend(_attribution_anomalies(_find(rad, "attribution")))
    return out


def _attribution_anomalies(att: etree._Element | None) -> list[Anomaly]:
    base = f"{_DL}/radiation/attribution"
    if att is None:
        return [_a("CTRL_DEM_0034", base)]
    out = []
    for f in ("siren", "dateSignatureBail"):
        if not _text(att, f):
            out.append(_a("CTRL_DEM_0034", f"{base}/{f}"))
    if _find(att, "contingent") is None:
        out.append(_a("CTRL_DEM_0034", f"{base}/contingent"))
    lg = _find(att, "logement")
    has_rpls = bool(_text(lg, "rpls"))
    described = (
        lg is not None
        and all(_find(lg, f) is not None for f in ("typeLogement", "surface", "zus", "loyer"))
        and (_find(lg, "adresse") is not None or _find(lg, "commune") is not None)
    )
    if not (has_rpls or described):
        out.append(_a("CTRL_DEM_0034", f"{base}/logement/rpls"))
    return out


@cache
def xsd() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD_PATH)))


_ATTR = re.compile(r"attribute '([A-Za-z:]+)'")


def _xsd_path(root: etree._Element, xpath: str | None, message: str) -> str:
    """The element path (local names, no values) an lxml schema error points at."""
    nodes: list[Any] = []
    if xpath:
        try:
            found = root.getroottree().xpath(xpath)
            nodes = list(found) if isinstance(found, list) else []
        except etree.XPathError:
            nodes = []
    if not nodes or not isinstance(nodes[0], etree._Element):
        return "interfaceNuu"
    el: etree._Element | None = nodes[0]
    names: list[str] = []
    while el is not None:
        names.append(etree.QName(el).localname)
        el = el.getparent()
    path = "/".join(reversed(names))
    attr = _ATTR.search(message)
    return f"{path}/@{attr.group(1)}" if attr else path


# lxml's messages quote the refused value: the reason is said from the error kind instead
_KINDS = {
    "SCHEMAV_CVC_ENUMERATION_VALID": "not a code of its list",
    "SCHEMAV_CVC_PATTERN_VALID": "does not have the expected shape",
    "SCHEMAV_CVC_DATATYPE_VALID_1_2_1": "not of the expected type",
    "SCHEMAV_CVC_MININCLUSIVE_VALID": "below the minimum",
    "SCHEMAV_CVC_MAXLENGTH_VALID": "too long",
    "SCHEMAV_CVC_FRACTIONDIGITS_VALID": "too many decimals",
    "SCHEMAV_ELEMENT_CONTENT": "element not expected here (unknown, misplaced or repeated)",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_4": "a mandatory child element is missing",
    "SCHEMAV_CVC_COMPLEX_TYPE_3_2_1": "attribute not expected",
    "SCHEMAV_CVC_COMPLEX_TYPE_4": "a mandatory attribute is missing",
    "SCHEMAV_CVC_ELT_1": "not an interfaceNuu document (root element or namespace)",
}


def xsd_problems(root: etree._Element) -> list[Problem]:
    """XSD violations as Problems: element path and error kind only (lxml messages may quote values)."""
    schema = xsd()
    try:
        if schema.validate(root):
            return []
    except etree.XMLSchemaValidateError:  # e.g. unresolved entity references left in the tree
        return [Problem("interfaceNuu", "cannot be validated against interfaceNuu.xsd")]
    errors = list(schema.error_log)  # type: ignore[call-overload]  # lxml-stubs: _ErrorLog is iterable
    return [
        Problem(
            _xsd_path(root, e.path, e.message),
            f"{_KINDS.get(e.type_name, 'not valid')} "
            f"(interfaceNuu.xsd {e.type_name}{f', line {e.line}' if e.line > 0 else ''})",
        )
        for e in errors
    ]


def _line(root: etree._Element, path: str) -> int | None:
    """Line of the deepest element of `path` present in the file (the missing one's parent)."""
    node: etree._Element | None = root
    line: object = root.sourceline
    for name in path.split("/")[1:]:
        if node is None or name.startswith("@"):
            break
        node = node.find(q(name))
        if node is not None:
            line = node.sourceline
    return line if isinstance(line, int) else None


def file_problems(data: bytes) -> list[Problem]:
    """Every reason the SNE would refuse an interfaceNuu file, offline: well-formedness, the SNE's
    rules (CTRL_DEM anomalies) and the XSD. Each problem names the element path and its line, never
    a value (`gateway sne validate`)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:  # its message may quote the text: the line only
        return [Problem("interfaceNuu", f"not well-formed XML (line {exc.lineno})")]
    out = []
    for a in mandatory_anomalies(root):
        line = _line(root, a.path)
        where = f" (line {line})" if line else ""
        out.append(Problem(a.path, f"{a.code}: {a.message}{where}", a.code))
    return out + xsd_problems(root)


# characters XML 1.0 cannot carry (C0 controls but tab / LF / CR, surrogates, U+FFFE / U+FFFF)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_unsafe_fields(record: Any, path: str = "") -> list[Problem]:
    """Every text of a canonical record that XML cannot carry (e.g. a control character in a name),
    as Problems naming the canonical field path and the reason, never the value. A source format
    that accepts such characters (cdc-json) must not make the XML builder fail on them."""
    if isinstance(record, str):
        bad = _NOT_XML.search(record)
        return (
            [Problem(path or "$", f"contains a character XML cannot carry (U+{ord(bad.group()):04X})")]
            if bad
            else []
        )
    if isinstance(record, Mapping):
        return [p for k, v in record.items() for p in xml_unsafe_fields(v, f"{path}.{k}" if path else str(k))]
    if isinstance(record, list | tuple):
        return [p for i, v in enumerate(record) for p in xml_unsafe_fields(v, f"{path}[{i}]")]
    return []


def as_problems(anomalies: list[Anomaly]) -> list[Problem]:
    return [Problem(a.path, f"{a.code}: {a.message}", a.code) for a in anomalies]


_ = NUU_NS
