"""Round trip SNE XML -> canonical -> SNE XML (issue 17): every element and value is kept (order within
a list, versionInterface and the header as written, booleans as booleans, amounts equal in value), on
every bundled sample, on the export-shaped fixtures and on generated documents.

Documented rules of the comparison (CONFORMANCE.md): an empty list and an absent list are the same
information; an absent `etranger` reads as false; listeMotifDemande is a set (the canonical record
keeps it in code-list order); children of an xs:all block may come in any order; numbers compare by value; a code repeated in a list of codes
(listeModeleLogement, listeTypeLogement, communes) is one code."""

# ruff: noqa: E501  (XML documents written as f-strings)
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from connectors.sne.nuu import as_read, to_bytes
from connectors.sne.rules import mandatory_anomalies, xsd_problems
from gateway.model.canonical import CanonicalRecord
from gateway.normalise import normalise as _normalise
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

ROOT = Path(__file__).resolve().parents[4]


def normalise(fmt: str, data: bytes) -> list[CanonicalRecord]:
    out = _normalise(fmt, data)
    assert all(isinstance(o, CanonicalRecord) for o in out), out
    return [o for o in out if isinstance(o, CanonicalRecord)]


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "exports"
FILES = sorted((ROOT / "samples" / "sne-xml").glob("*.xml")) + sorted(FIXTURES.glob("*.xml"))
NUMBERS = {
    "montant", "montantMoins1", "montantMoins2", "montantMensuelLoyer", "loyerMaximum", "loyer",
    "surface", "nombreHabitant", "nombre", "anneeMoins1", "anneeMoins2",
}  # fmt: skip
SETS = {"listeMotifDemande"}


def _local(el: Any) -> str:
    return str(etree.QName(el).localname)


def comparable(el: Any) -> Any:
    """A tree as comparable data (see the module docstring), or None for an element that carries
    nothing (an empty list)."""
    name = _local(el)
    if name == "etranger" and (el.text or "").strip() == "false":
        return None  # xs:boolean, false when absent: the canonical record cannot tell the two apart
    children = [c for c in (comparable(c) for c in el if isinstance(c.tag, str)) if c is not None]
    text = (el.text or "").strip()
    if name in NUMBERS and text:
        text = str(Decimal(text).normalize())
    attrs = tuple(sorted((str(k), str(v)) for k, v in el.attrib.items()))
    if not children and not text and not attrs and name.startswith("liste"):
        return None
    ordered = name.startswith("liste") and name not in SETS
    return (name, attrs, text, tuple(children) if ordered else tuple(sorted(children, key=repr)))


def round_trip(data: bytes) -> tuple[Any, Any, bytes]:
    first = normalise("sne-xml", data)
    demande = first[0]
    assert demande.schema == "fr.gp.Demande", [getattr(o, "problems", o) for o in first]
    rad = [o.record["radiation"] for o in first[1:] if o.record.get("typeEvenement") == "RADIATION"]
    back = as_read(demande.schema, demande.record, radiation=rad[0] if rad else None)
    return comparable(etree.fromstring(data)), comparable(back), to_bytes(back)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_sample_survives_the_round_trip(path: Path) -> None:
    original, back, data = round_trip(path.read_bytes())
    assert back == original
    again = normalise("sne-xml", data)[0].record  # and the rebuilt file reads as the same application
    first = normalise("sne-xml", path.read_bytes())[0].record
    for r in (again, first):
        r["provenance"] = dict(r["provenance"], referenceSource=None)  # a digest of the bytes
    assert again == first


def test_export_shapes_keep_header_booleans_and_dependants_resources() -> None:
    _, _, data = round_trip((FIXTURES / "extrait-0200-sans-typefichier.xml").read_bytes())
    root = etree.fromstring(data)
    ns = {"n": "http://nuu.application.i2/"}
    assert root.get("versionInterface") == "02.00"
    assert root.find("n:entete/n:typeFichier", ns) is None
    assert root.findtext("n:entete/n:dateFichier", namespaces=ns) == "2018-03-15T09:41:27.3+01:00"
    dl = root.find("n:demande/n:demandeLogement", ns)
    assert dl is not None
    assert dl.findtext("n:personnePhysique/n:logementActuel/n:proprietaire", namespaces=ns) == "false"
    codes = [
        e.get("code")
        for e in dl.findall("n:personnePhysique/n:demandeur/n:listeRessourceRecue//n:ressource", ns)
    ]
    assert codes == ["SAL", "PINV", "AF"]  # the health resource stays in the middle
    pac = dl.findall("n:personnePhysique/n:demandeur/n:listeRessourceRecuePersACharge//n:ressource", ns)
    assert [e.get("code") for e in pac] == ["AEEH", "BE"]
    assert xsd_problems(root) == [] and mandatory_anomalies(root) == []


# ------------------------------------------------------------------ generated documents
_TEXT = (
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzéèçàôï -'", min_size=1, max_size=12)
    .map(str.strip)
    .filter(bool)
    # a text starting like a spreadsheet formula is neutralised by the normaliser (docs/normalise.md)
    .filter(lambda t: not t.startswith(("=", "+", "-", "@")))
)
_AMOUNT = st.decimals(min_value=0, max_value=99999, places=2).map(lambda d: format(d, "f"))
_AMOUNT_TEXT = st.one_of(
    _AMOUNT, st.integers(0, 9999).map(str), _AMOUNT.map(lambda s: s.rstrip("0").rstrip("."))
)
_RECUE = st.sampled_from(
    ["SAL", "RET", "CHO", "PAR", "PINV", "AF", "AAH", "AEEH", "AJPP", "RSA", "AMV", "PAJE", "BE", "AUT"]
)
_COMMUNE = st.one_of(
    st.from_regex(r"[0-9]{5}", fullmatch=True), st.from_regex(r"2[AB][0-9]{3}", fullmatch=True)
)


def _details(draw: Any, liste: str, codes: Any, n: int) -> str:
    items = "".join(
        f'<detailRessource><ressource code="{draw(codes)}"/><montant>{draw(_AMOUNT_TEXT).rstrip(".") or "0"}</montant></detailRessource>'
        for _ in range(draw(st.integers(0, n)))
    )
    return f"<{liste}>{items}</{liste}>"


@st.composite
def documents(draw: Any) -> bytes:
    version = draw(st.sampled_from(["02.00", "02.01"]))
    numbered = draw(st.booleans())
    typed = version == "02.01" or draw(st.booleans())
    tf = "MOD" if numbered else "CRE"
    offset = draw(st.sampled_from(["+01:00", "+02:00", "Z", "-03:00"]))
    entete = (f"<typeFichier>{tf}</typeFichier>" if typed else "") + (
        f"<dateFichier>2026-0{draw(st.integers(1, 9))}-1{draw(st.integers(0, 9))}T10:0{draw(st.integers(0, 9))}:00{offset}</dateFichier>"
    )
    resources = "".join(
        [
            _details(draw, "listeRessourceRecue", _RECUE, 5) if draw(st.booleans()) else "",
            _details(draw, "listeRessourceVersee", st.just("PAV"), 2) if draw(st.booleans()) else "",
            _details(draw, "listeRessourceRecuePersACharge", _RECUE, 4) if draw(st.booleans()) else "",
            _details(draw, "listeRessourceVerseePersACharge", st.just("PAV"), 2)
            if draw(st.booleans())
            else "",
        ]
    )
    charges = "".join(
        f"<personneACharge><nom>{draw(_TEXT)}</nom><prenom>{draw(_TEXT)}</prenom>"
        f'<sexe code="{draw(st.sampled_from("MF"))}"/><lienParente code="{draw(st.sampled_from("PEA"))}"/></personneACharge>'
        for _ in range(draw(st.integers(0, 3)))
    )
    logement = ""
    if draw(st.booleans()):
        modeles = "".join(
            f'<modeleLogement code="{m}"/>'
            for m in draw(st.lists(st.sampled_from(["HLM", "LP", "SD", "HOT"]), max_size=3, unique=True))
        )
        prop = draw(st.sampled_from(["true", "false"]))
        logement = (
            f"<logementActuel><listeModeleLogement>{modeles}</listeModeleLogement>"
            f"<montantMensuelLoyer>{draw(_AMOUNT_TEXT)}</montantMensuelLoyer><proprietaire>{prop}</proprietaire></logementActuel>"
        )
    types = "".join(
        f'<typeLogement code="{t}"/>'
        for t in draw(
            st.lists(st.sampled_from(["C", "T1", "T2", "T3", "T6P"]), min_size=1, max_size=4, unique=True)
        )
    )
    communes = "".join(
        f'<localisationSouhaite><commune code="{c}"/></localisationSouhaite>'
        for c in draw(st.lists(_COMMUNE, min_size=1, max_size=4, unique=True))
    )
    motifs = "".join(
        f'<motifDemande code="{m}"/>'
        for m in sorted(draw(st.sets(st.sampled_from(["01", "06", "07", "09", "13", "23"]), max_size=3)))
    )
    num = "<numUnique>1110318016982G1104</numUnique>" if numbered else ""
    return (
        f'<interfaceNuu xmlns="http://nuu.application.i2/" versionInterface="{version}"><entete>{entete}</entete>'
        f"<demande><demandeLogement>{num}<numGuichet>G3501</numGuichet><dateCreationDemande>2026-01-15</dateCreationDemande>"
        f"<personnePhysique><demandeur><nom>{draw(_TEXT)}</nom><prenom>{draw(_TEXT)}</prenom>{resources}</demandeur>"
        f"<listeCotitulaire/><listePersonneACharge>{charges}</listePersonneACharge><listePersonneEnGarde/>{logement}</personnePhysique>"
        f"<logementRecherche><demandeElargie>{draw(st.sampled_from(['true', 'false']))}</demandeElargie>"
        f"<listeTypeLogement>{types}</listeTypeLogement><listeLocalisationSouhaite>{communes}</listeLocalisationSouhaite></logementRecherche>"
        f"<listeMotifDemande>{motifs}</listeMotifDemande></demandeLogement></demande></interfaceNuu>"
    ).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_generated_documents_survive_the_round_trip(data: bytes) -> None:
    root = etree.fromstring(data)
    assert xsd_problems(root) == []  # the generator writes valid files
    original, back, _ = round_trip(data)
    assert back == original


_ = (UTC, datetime)
