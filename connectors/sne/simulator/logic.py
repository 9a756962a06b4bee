"""What the simulated SNE does with one parsed request (no HTTP here, unit-testable)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from lxml import etree

from connectors.sne.mtom import ParsedRequest, SoapFault, build_response, safe_parser
from connectors.sne.nuu import NUU_NS, VERSION_INTERFACE, q
from connectors.sne.rules import ANOMALY_TEXTS, Anomaly, mandatory_anomalies, type_fichier_of, xsd_problems
from connectors.sne.simulator.state import Registry, departement_of, identity_key

__all__ = ["UNEXPECTED", "handle"]

UNEXPECTED = "Une erreur inattendue est survenue lors du traitement de la demande."


def _el(parent: etree._Element | None, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = (
        etree.Element(q(tag), attrib=attrs or None)
        if parent is None
        else etree.SubElement(parent, q(tag), attrs)
    )
    if text is not None:
        el.text = text
    return el


def _answer_nuu(
    type_fichier: str, num: str | None, guichet: str | None, created: str | None, anomalies: list[Anomaly]
) -> etree._Element:
    root = etree.Element(q("interfaceNuu"), nsmap={"ns2": NUU_NS}, versionInterface=VERSION_INTERFACE)
    entete = _el(root, "entete")
    if type_fichier:
        _el(entete, "typeFichier", type_fichier)
    _el(entete, "dateFichier", datetime.now(UTC).isoformat(timespec="seconds"))
    dl = _el(_el(root, "demande"), "demandeLogement")
    if num:
        _el(dl, "numUnique", num)
    if guichet:
        _el(dl, "numGuichet", guichet)
    if created:
        _el(dl, "dateCreationDemande", created)
    if anomalies:
        liste = _el(dl, "listeAnomalie")
        for a in anomalies:
            _el(_el(liste, "anomalie", code=a.code), "libelle", a.message)
    return root


def _an(code: str, path: str = "") -> Anomaly:
    return Anomaly(code, path, ANOMALY_TEXTS[code])


def _text(el: etree._Element | None, *path: str) -> str:
    node = el
    for p in path:
        node = node.find(q(p)) if node is not None else None
    return (node.text or "").strip() if node is not None else ""


def _parse_file(xml: bytes | None) -> etree._Element:
    if not xml:
        raise SoapFault("Sender", "fichierDemande is empty")
    try:
        return etree.fromstring(xml, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise SoapFault("Receiver", UNEXPECTED) from exc


def _identity(dl: etree._Element) -> str | None:
    dem = dl.find(f"{q('personnePhysique')}/{q('demandeur')}")
    if dem is None:
        return None
    return identity_key(_text(dem, "nom"), _text(dem, "prenom"), _text(dem, "dateNaissance"))


def _since(value: str | None) -> datetime:
    try:
        when = datetime.fromisoformat((value or "").strip())
    except ValueError as exc:
        raise SoapFault("Sender", "date parameter must be aaaa-mm-jjTHH:MM:SS.s+hh:mm") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def handle(req: ParsedRequest, registry: Registry) -> tuple[str, bytes]:
    """Content type and body of the answer; SoapFault for requests the SNE refuses as a whole."""
    registry.count_call(req.service)
    if req.service == "numUnique":
        return build_response(req.service, _file(req, registry))
    if req.service == "doublons":
        root = _parse_file(req.xml)
        dl = root.find(f"{q('demande')}/{q('demandeLogement')}")
        if dl is None or dl.find(q("personnePhysique")) is None:
            raise SoapFault("Receiver", UNEXPECTED)  # as the real SNE does for legal persons
        liste = etree.Element(q("listeDoublons"), nsmap={"ns2": NUU_NS})
        ident = _identity(dl)
        for d in registry.find_identity(ident) if ident else []:
            item = _el(liste, "doublon")
            _el(item, "numUnique", d.num_unique)
            if d.date_creation:
                _el(item, "dateCreationDemande", d.date_creation)
            if d.num_guichet:
                _el(item, "numGuichet", d.num_guichet)
        return build_response(req.service, liste)
    if req.service == "demandeLogement":
        num = req.scalar or ""
        stored = registry.get(num)
        xml = registry.xml(num) if stored else None
        if stored is None or xml is None:
            return build_response(req.service, _answer_nuu("", num, None, None, [_an("CTRL_DEM_0020")]))
        return build_response(req.service, etree.fromstring(xml, safe_parser()))
    if req.service == "nouveauxDaloDepuisLe":
        liste = etree.Element(q("listeNouveauxDalo"), nsmap={"ns2": NUU_NS})
        for num, statut, date_decision, typologie, commission in registry.dalo_since(_since(req.scalar)):
            item = _el(liste, "demandeDalo")
            _el(item, "numUnique", num)
            dalo = _el(item, "dalo")
            _el(dalo, "statutDalo", code=statut)
            if date_decision:
                _el(dalo, "dateDecisionDalo", date_decision)
            if typologie:
                _el(dalo, "typologieLogementDalo", code=typologie)
            if commission:
                _el(dalo, "commission", commission)
        return build_response(req.service, liste)
    if req.service == "demandesRadieesDepuisLe":
        liste = etree.Element(q("listeDemandesRadiees"), nsmap={"ns2": NUU_NS})
        for d in registry.radiated_since(_since(req.scalar)):
            item = _el(liste, "demandeRadiee")
            _el(item, "numUnique", d.num_unique)
            rad = _el(item, "radiation")
            _el(rad, "motifRadiation", code=d.motif_radiation or "")
            if d.sous_motif:
                _el(rad, "sousMotifRadiation", code=d.sous_motif)
            _el(rad, "dateRadiation", d.date_radiation or date.today().isoformat())
            attribution = _stored_attribution(registry, d.num_unique)
            if attribution is not None:  # polled radiations carry the attribution data
                rad.append(attribution)
        return build_response(req.service, liste)
    raise SoapFault("Sender", f"operation {req.service} not supported")


def _file(req: ParsedRequest, registry: Registry) -> etree._Element:
    root = _parse_file(req.xml)
    tf = type_fichier_of(root)
    dl = root.find(f"{q('demande')}/{q('demandeLogement')}")
    guichet = _text(dl, "numGuichet") or None
    anomalies = mandatory_anomalies(root)
    if anomalies:
        return _answer_nuu(tf, _text(dl, "numUnique") or None, guichet, None, anomalies)
    if xsd_problems(root):
        raise SoapFault("Receiver", UNEXPECTED)
    assert dl is not None  # noqa: S101 - checked by the mandatory rules
    created = _text(dl, "dateCreationDemande") or None
    if tf in ("CRE", "CRS"):
        ident = _identity(dl)
        if ident:
            active = [d for d in registry.find_identity(ident) if d.statut == "ACTIVE"]
            if active:
                return _answer_nuu(
                    tf,
                    active[0].num_unique,
                    guichet,
                    active[0].date_creation,
                    [_an("CTRL_DEM_0030", "demandeur")],
                )
        commune = dl.find(
            f"{q('logementRecherche')}/{q('listeLocalisationSouhaite')}/{q('localisationSouhaite')}/{q('commune')}"
        )
        dept = departement_of(commune.get("code", "00000") if commune is not None else "00000")
        day = date.fromisoformat(created or date.today().isoformat())
        num = registry.create(
            dept=dept,
            yymm=f"{day:%y%m}",
            identity=ident,
            guichet=guichet or "",
            date_creation=day.isoformat(),
            xml=_with_num(root, None),
        )
        registry.update(num, _with_num(root, num), renewed=False)
        return _answer_nuu(tf, num, guichet, day.isoformat(), [])
    num = _text(dl, "numUnique")
    stored = registry.get(num)
    if stored is None:
        return _answer_nuu(tf, num, guichet, None, [_an("CTRL_DEM_0020", "numUnique")])
    if tf in ("MOD", "REN"):
        if stored.statut == "RADIEE":
            return _answer_nuu(tf, num, guichet, stored.date_creation, [_an("CTRL_DEM_0021")])
        registry.update(num, _with_num(root, num), renewed=tf == "REN")
        return _answer_nuu(tf, num, guichet, stored.date_creation, [])
    if tf == "RAD":
        rad = dl.find(q("radiation"))
        motif_el = rad.find(q("motifRadiation")) if rad is not None else None
        motif = motif_el.get("code", "") if motif_el is not None else ""
        sous = rad.find(q("sousMotifRadiation")) if rad is not None else None
        sous_motif = sous.get("code") if sous is not None else None
        when = _text(rad, "dateRadiation")
        if motif == "":
            if stored.statut != "RADIEE":
                return _answer_nuu(tf, num, guichet, stored.date_creation, [_an("CTRL_DEM_0022")])
            registry.reactivate(num)
        elif stored.statut == "RADIEE":
            same = stored.motif_radiation == motif and stored.date_radiation == when
            if not same:  # the same radiation sent twice is acknowledged again (idempotent)
                return _answer_nuu(tf, num, guichet, stored.date_creation, [_an("CTRL_DEM_0021")])
        else:
            registry.radiate(num, motif, sous_motif, when)
            registry.update(num, _with_num(root, num), renewed=False)  # keeps the attribution data
        return _answer_nuu(tf, num, guichet, stored.date_creation, [])
    return _answer_nuu(tf, num or None, guichet, created, [])


def _stored_attribution(registry: Registry, num: str) -> etree._Element | None:
    xml = registry.xml(num)
    if not xml:
        return None
    stored = etree.fromstring(xml, safe_parser())
    return stored.find(f"{q('demande')}/{q('demandeLogement')}/{q('radiation')}/{q('attribution')}")


def _with_num(root: etree._Element, num: str | None) -> bytes:
    """The file as stored: with its numéro unique set."""
    copy = etree.fromstring(etree.tostring(root), safe_parser())
    dl = copy.find(f"{q('demande')}/{q('demandeLogement')}")
    if num and dl is not None:
        el = dl.find(q("numUnique"))
        if el is None:
            el = etree.Element(q("numUnique"))
            dl.insert(0, el)
        el.text = num
    return bytes(etree.tostring(copy, encoding="UTF-8"))
