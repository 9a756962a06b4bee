"""Reading SNE answers (pure): numéro unique, listeAnomalie, listeDoublons, DALO and radiation lists.

An answer that is not what the service returns raises UnparseableAnswer, which carries the raw bytes
so the egress flow dead-letters the input with the answer attached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from gateway.errors import Problem, RejectedMessage
from lxml import etree

from connectors.sne.mtom import SoapFault, parse_response_root
from connectors.sne.nuu import q

__all__ = [
    "Answer",
    "DaloItem",
    "RadiationItem",
    "SneFaultError",
    "UnparseableAnswer",
    "parse_answer",
]

RAW_ANSWER_HEADER = "gp.sne.raw_answer"
_MAX_RAW = 256 * 1024


class UnparseableAnswer(RejectedMessage):
    """The SNE answered something the connector cannot read: dead-letter with the raw answer."""

    def __init__(self, reason: str, raw: bytes, content_type: str = "") -> None:
        super().__init__("unparseable SNE answer", [Problem("sne.answer", reason)])
        self.raw_answer = raw
        self.extra_headers: tuple[tuple[str, bytes], ...] = (
            (RAW_ANSWER_HEADER, raw[:_MAX_RAW]),
            ("gp.sne.raw_answer_content_type", content_type.encode()),
        )


_FAULT_CODES = frozenset({"Sender", "Receiver", "VersionMismatch", "MustUnderstand", "DataEncodingUnknown"})


class SneFaultError(RejectedMessage):
    """The SNE answered a SOAP fault: the request itself was refused (never retried as is).

    The fault's reason text is the SNE's own and may quote the refused values: it is kept in
    `reason` (and in the raw answer header), never in the problem list, logs or messages."""

    def __init__(self, code: str, reason: str, raw: bytes) -> None:
        shown = code if code in _FAULT_CODES else "unknown code"
        super().__init__("SNE SOAP fault", [Problem("soap:Fault", f"SOAP fault ({shown})", shown)])
        self.code = code
        self.reason = reason
        self.extra_headers: tuple[tuple[str, bytes], ...] = ((RAW_ANSWER_HEADER, raw[:_MAX_RAW]),)


@dataclass(frozen=True, slots=True)
class DaloItem:
    num_unique: str
    statut: str
    date_decision: date | None
    typologie: str | None
    commission: str | None


@dataclass(frozen=True, slots=True)
class RadiationItem:
    num_unique: str
    motif: str
    sous_motif: str | None
    date_radiation: date | None
    # the attribution data of a RADATT (arrêté of 17 Sept 2012), as the SNE sent them
    attribution: etree._Element | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Answer:
    service: str
    num_unique: str | None = None
    anomalies: tuple[tuple[str, str], ...] = ()
    doublons: tuple[str, ...] = ()
    dalo: tuple[DaloItem, ...] = ()
    radiations: tuple[RadiationItem, ...] = ()
    payload: etree._Element | None = field(default=None, compare=False)

    @property
    def accepted(self) -> bool:
        return not self.anomalies


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _first(env: etree._Element, tag: str) -> etree._Element | None:
    return next(iter(env.iter(q(tag))), None)


def parse_answer(service: str, content_type: str, body: bytes) -> Answer:
    """Answer of `service`; SneFaultError for a SOAP fault, UnparseableAnswer for anything unreadable."""
    try:
        env = parse_response_root(content_type, body)
    except SoapFault as exc:
        raise SneFaultError(exc.code, exc.reason, body) from exc
    except ValueError as exc:
        raise UnparseableAnswer(str(exc), body, content_type) from exc
    try:
        return _read(service, env)
    except (ValueError, AttributeError) as exc:
        raise UnparseableAnswer(f"unexpected answer content ({exc})", body, content_type) from exc


def _read(service: str, env: etree._Element) -> Answer:
    if service == "doublons":
        liste = _first(env, "listeDoublons")
        if liste is None:
            raise ValueError("no listeDoublons")
        nums = tuple((d.findtext(q("numUnique")) or "").strip() for d in liste.findall(q("doublon")))
        return Answer(service, doublons=tuple(n for n in nums if n), payload=liste)
    if service == "nouveauxDaloDepuisLe":
        liste = _first(env, "listeNouveauxDalo")
        if liste is None:
            raise ValueError("no listeNouveauxDalo")
        items = []
        for d in liste.findall(q("demandeDalo")):
            dalo = d.find(q("dalo"))
            statut = dalo.find(q("statutDalo")) if dalo is not None else None
            if dalo is None or statut is None:
                raise ValueError("demandeDalo without dalo/statutDalo")
            typo = dalo.find(q("typologieLogementDalo"))
            items.append(
                DaloItem(
                    (d.findtext(q("numUnique")) or "").strip(),
                    statut.get("code", ""),
                    _date(dalo.findtext(q("dateDecisionDalo"))),
                    typo.get("code") if typo is not None else None,
                    (dalo.findtext(q("commission")) or "").strip() or None,
                )
            )
        return Answer(service, dalo=tuple(items), payload=liste)
    if service == "demandesRadieesDepuisLe":
        liste = _first(env, "listeDemandesRadiees")
        if liste is None:
            raise ValueError("no listeDemandesRadiees")
        rads = []
        for d in liste.findall(q("demandeRadiee")):
            rad = d.find(q("radiation"))
            motif = rad.find(q("motifRadiation")) if rad is not None else None
            if rad is None or motif is None:
                raise ValueError("demandeRadiee without radiation/motifRadiation")
            sm = rad.find(q("sousMotifRadiation"))
            rads.append(
                RadiationItem(
                    (d.findtext(q("numUnique")) or "").strip(),
                    motif.get("code", ""),
                    sm.get("code") if sm is not None else None,
                    _date(rad.findtext(q("dateRadiation"))),
                    rad.find(q("attribution")),
                )
            )
        return Answer(service, radiations=tuple(rads), payload=liste)
    nuu = _first(env, "interfaceNuu")
    if nuu is None:
        raise ValueError("no interfaceNuu in the answer")
    dl = nuu.find(f"{q('demande')}/{q('demandeLogement')}")
    if dl is None:
        raise ValueError("no demande/demandeLogement in the answer")
    anomalies = []
    liste = dl.find(q("listeAnomalie"))
    if liste is not None:
        for a in liste:
            code = a.get("code")
            if not code:
                raise ValueError("anomaly without code")
            text = (a[0].text or "").strip() if len(a) else (a.text or "").strip()
            anomalies.append((code, text))
    num = (dl.findtext(q("numUnique")) or "").strip() or None
    if not anomalies and service == "numUnique" and num is None:
        raise ValueError("accepted answer without numUnique")
    return Answer(service, num_unique=num, anomalies=tuple(anomalies), payload=nuu)
