"""Canonical fr.gp.Demande / fr.gp.Decision (decoded dicts) -> interfaceNuu XML (lxml), pure functions.

Element names follow schemas/xsd/interfaceNuu.xsd. Which typeFichier a record becomes:
- Demande without numUnique -> CRE; Demande with statut RADIEE and a radiation -> RAD;
  Demande whose dateDernierRenouvellement is the day of provenance.dateEvenement -> REN; else MOD.
- Decision RADIATION -> RAD (motif, sous-motif, attribution data); DERADIATION -> RAD with an empty
  motif code (déradiation). A Decision RENOUVELLEMENT is not sent (None): the renewal's REN is sent
  from its Demande, which carries the data updated at renewal. Decision DECISION_CAL -> MOD of the
  application carrying a `decisionCal` block (UNCERTAIN reading of interface v5.2 "attribution
  decisions", see CONFORMANCE.md). Other decision types are not SNE facts.
- Records whose provenance.systemeSource is "sne" came from the SNE and are never sent back (None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from gateway.codec.avro import UNKNOWN_SYMBOL, sne_code
from lxml import etree

__all__ = [
    "NUU_NS",
    "VERSION_INTERFACE",
    "as_read",
    "build_for_record",
    "build_interface_nuu",
    "q",
    "to_bytes",
    "type_fichier_for",
    "version_of",
    "with_application",
]

NUU_NS = "http://nuu.application.i2/"
VERSION_INTERFACE = "02.01"
_NSMAP: Any = {None: NUU_NS}  # lxml-stubs do not allow the None (default) prefix

Record = Mapping[str, Any]


def q(tag: str) -> str:
    """Qualified name of an interfaceNuu element."""
    return f"{{{NUU_NS}}}{tag}"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, q(tag), attrib=attrs or None)
    if text is not None:
        el.text = text
    return el


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _opt(parent: etree._Element, tag: str, value: Any) -> None:
    if value is not None and value != "":
        _sub(parent, tag, _fmt(value))


def _coded(
    parent: etree._Element, tag: str, enum: str | None, symbol: Any, unknown: str | None = None
) -> None:
    """<tag code="..."/> with the SNE code of an enum symbol (raw value when enum is None); the
    symbol INCONNU is written with the code it stands for (`unknown`, its sibling field)."""
    if symbol is None:
        return
    if symbol == UNKNOWN_SYMBOL:
        if unknown:
            _sub(parent, tag, code=str(unknown))
        return
    code = sne_code(enum, str(symbol)) if enum else str(symbol)
    _sub(parent, tag, code=code)


def _c(parent: etree._Element, tag: str, enum: str | None, rec: Record, field: str) -> None:
    """A coded field of `rec`, with its <field>CodeInconnu sibling."""
    _coded(parent, tag, enum, rec.get(field), rec.get(f"{field}CodeInconnu"))


def _liste(
    parent: etree._Element,
    liste: str,
    item: str,
    enum: str | None,
    symbols: Sequence[Any],
    *,
    unknown: Sequence[str] = (),
) -> None:
    if not symbols:
        return
    wrapper = _sub(parent, liste)
    codes = iter(unknown)  # the INCONNU items' codes, in their order
    for s in symbols:
        _coded(wrapper, item, enum, s, next(codes, None) if s == UNKNOWN_SYMBOL else None)


def _l(  # noqa: PLR0917 - the _liste arguments, then where the values are
    parent: etree._Element, liste: str, item: str, enum: str | None, rec: Record, field: str
) -> None:
    """A list of coded values of `rec`, with its <field>CodesInconnus sibling."""
    _liste(parent, liste, item, enum, rec.get(field) or [], unknown=rec.get(f"{field}CodesInconnus") or [])


def _adresse(parent: etree._Element, tag: str, a: Record | None) -> None:
    if not a:
        return
    el = _sub(parent, tag)
    _opt(el, "etranger", a.get("etranger"))
    for f in ("numero", "voie", "complement", "codePostal"):
        _opt(el, f, a.get(f))
    if a.get("commune"):
        _sub(el, "commune", code=str(a["commune"]))
    _opt(el, "ville", a.get("ville"))
    _opt(el, "pays", a.get("pays"))


def _in_order(items: Sequence[Record], sante: Sequence[Record]) -> list[Record]:
    """listeRessourceRecue rebuilt in its source order: health items back at their `position`."""
    out = list(items)
    placed = sorted((r for r in sante if r.get("position") is not None), key=lambda r: int(r["position"]))
    for r in placed:
        out.insert(min(int(r["position"]), len(out)), r)
    out.extend(r for r in sante if r.get("position") is None)
    return out


def _details(parent: etree._Element, liste: str, items: Sequence[Record]) -> None:
    if not items:  # an empty list carries nothing: not written (the SNE accepts both)
        return
    el = _sub(parent, liste)
    for r in items:
        d = _sub(el, "detailRessource")
        code = r.get("codeCodeInconnu") if r["code"] == UNKNOWN_SYMBOL else r["code"]
        _sub(d, "ressource", code=str(code))
        _sub(d, "montant", _fmt(r["montant"]))


def _ressources(parent: etree._Element, p: Record) -> None:
    """The person's resource lists, then the dependants' (listeRessource*PersACharge)."""
    for suffix in ("", "PersACharge"):
        recues = _in_order(p.get(f"ressourcesRecues{suffix}") or [], p.get(f"ressourcesSante{suffix}") or [])
        _details(parent, f"listeRessourceRecue{suffix}", recues)
        _details(parent, f"listeRessourceVersee{suffix}", p.get(f"ressourcesVersees{suffix}") or [])


def _personne(parent: etree._Element, tag: str, p: Record) -> None:
    el = _sub(parent, tag)
    _c(el, "civilite", "Civilite", p, "civilite")
    _sub(el, "nom", p.get("nom") or "")
    _opt(el, "nomPatronymique", p.get("nomPatronymique"))
    _sub(el, "prenom", p.get("prenom") or "")
    _opt(el, "dateNaissance", p.get("dateNaissance"))
    _c(el, "nationalite", "Nationalite", p, "nationalite")
    _c(el, "situationFamiliale", "SituationFamiliale", p, "situationFamiliale")
    _c(el, "lienDemandeur", "LienDemandeur", p, "lienDemandeur")
    _opt(el, "telPortable", p.get("telPortable"))
    _opt(el, "mel", p.get("mel"))
    _adresse(el, "adressePostale", p.get("adressePostale"))
    sp = p.get("situationProfessionnelle")
    if sp:
        s = _sub(el, "situationProfessionnelle")
        _opt(s, "profession", sp.get("profession"))
        _c(s, "typeContratTravail", "TypeContratTravail", sp, "typeContratTravail")
        _opt(s, "nomEmployeurPrincipal", sp.get("nomEmployeurPrincipal"))
        _opt(s, "etranger", sp.get("etranger"))
        _opt(s, "codePostal", sp.get("codePostal"))
        if sp.get("commune"):
            _sub(s, "commune", code=str(sp["commune"]))
    rf = p.get("revenuFiscal")
    if rf:
        r = _sub(el, "revenuFiscal")
        for f in ("anneeMoins1", "montantMoins1", "anneeMoins2", "montantMoins2"):
            _opt(r, f, rf.get(f))
    _ressources(el, p)


def _personne_physique(parent: etree._Element, d: Record) -> None:
    pp = _sub(parent, "personnePhysique")
    _personne(pp, "demandeur", d["demandeur"])
    if d.get("cotitulaires"):
        liste = _sub(pp, "listeCotitulaire")
        for c in d["cotitulaires"]:
            _personne(liste, "cotitulaire", c)
    if d.get("personnesACharge"):
        liste = _sub(pp, "listePersonneACharge")
        for c in d["personnesACharge"]:
            el = _sub(liste, "personneACharge")
            _sub(el, "nom", c.get("nom") or "")
            _sub(el, "prenom", c.get("prenom") or "")
            _opt(el, "dateNaissance", c.get("dateNaissance"))
            _c(el, "sexe", "Sexe", c, "sexe")
            _c(el, "lienParente", "LienParente", c, "lienParente")
    pan = d.get("personnesANaitre")
    if pan:
        el = _sub(pp, "personneANaitre")
        _sub(el, "nombre", _fmt(pan["nombre"]))
        _opt(el, "dateNaissancePrevue", pan.get("dateNaissancePrevue"))
    if d.get("personnesEnGarde"):
        liste = _sub(pp, "listePersonneEnGarde")
        for c in d["personnesEnGarde"]:
            el = _sub(liste, "personneEnGarde")
            _opt(el, "dateNaissance", c.get("dateNaissance"))
            _c(el, "sexe", "Sexe", c, "sexe")
            _c(el, "coParentalite", "Coparentalite", c, "coParentalite")
    la = d.get("logementActuel")
    if la:
        el = _sub(pp, "logementActuel")
        _l(el, "listeModeleLogement", "modeleLogement", "ModeleLogement", la, "modelesLogement")
        _opt(el, "montantMensuelLoyer", la.get("montantMensuelLoyer"))
        _opt(el, "nombreHabitant", la.get("nombreHabitant"))
        _c(el, "categorieLogement", "CategorieLogement", la, "categorieLogement")
        _c(el, "typeLogementActuel", "TypeLogement", la, "typeLogementActuel")
        _opt(el, "surface", la.get("surface"))
        prop = la.get("estProprietaire")
        _opt(el, "proprietaire", la.get("proprietaire") if prop is None else prop)


def _logement_recherche(parent: etree._Element, lr: Record | None) -> None:
    if lr is None:
        return
    el = _sub(parent, "logementRecherche")
    _opt(el, "demandeElargie", lr.get("demandeElargie"))
    _l(el, "listeTypeLogement", "typeLogement", "TypeLogement", lr, "typesLogement")
    communes = lr.get("communes") or []
    if communes:
        liste = _sub(el, "listeLocalisationSouhaite")
        for c in communes:
            _sub(_sub(liste, "localisationSouhaite"), "commune", code=str(c))
    _c(el, "categorieLogement", "CategorieLogementRecherche", lr, "categorie")
    _opt(el, "loyerMaximum", lr.get("loyerMaximum"))


def _handicap(parent: etree._Element, h: Record | None) -> None:
    if not h:
        return
    el = _sub(parent, "complementHandicap")
    _c(el, "etatHandicap", "EtatHandicap", h, "etat")
    _c(el, "capaciteMarche", "CapaciteMarche", h, "capaciteMarche")
    _l(el, "listeNatureHandicapMoteur", "natureHandicapMoteur", None, h, "naturesMoteur")
    _l(el, "listeNatureHandicapSensoriel", "natureHandicapSensoriel", None, h, "naturesSensoriel")
    _l(el, "listeAideTechnique", "aideTechnique", "AideTechnique", h, "aidesTechniques")
    _l(el, "listeEquipement", "equipement", "Equipement", h, "equipements")


def _logement(parent: etree._Element, lg: Record) -> None:
    le = _sub(parent, "logement")
    _opt(le, "rpls", lg.get("rpls"))
    _opt(le, "referenceBailleur", lg.get("referenceBailleur"))
    _opt(le, "sirenBailleur", lg.get("sirenBailleur"))
    _adresse(le, "adresse", lg.get("adresse"))
    if lg.get("commune"):
        _sub(le, "commune", code=str(lg["commune"]))
    _c(le, "typeLogement", None, lg, "typeLogement")
    _opt(le, "surface", lg.get("surface"))
    _c(le, "zus", None, lg, "zus")
    _opt(le, "loyer", lg.get("loyer"))


def _attribution(parent: etree._Element, a: Record) -> None:
    el = _sub(parent, "attribution")
    _sub(el, "siren", str(a.get("siren") or ""))
    _opt(el, "dateSignatureBail", a.get("dateSignatureBail"))
    _c(el, "dejaLocataire", None, a, "dejaLocataire")
    _logement(el, a.get("logement") or {})
    _c(el, "accordCollectif", None, a, "accordCollectif")
    _opt(el, "daloPrioritaireUrgent", a.get("daloPrioritaireUrgent"))
    _c(el, "contingent", None, a, "contingent")
    _c(el, "contingentDesignataire", None, a, "contingentDesignataire")
    _opt(el, "relogementAnru", a.get("relogementAnru"))


def _decision_cal(parent: etree._Element, d: Record) -> None:
    """A CAL decision (R441-3) reported to the SNE in a MOD of the application (UNCERTAIN names)."""
    el = _sub(parent, "decisionCal")
    _opt(el, "dateCommission", d.get("dateCommission"))
    _opt(el, "commission", d.get("commission"))
    _c(el, "decision", None, d, "decision")
    _opt(el, "rang", d.get("rang"))
    _opt(el, "motifs", d.get("motifs"))
    pieces = d.get("piecesManquantes") or []
    if pieces:
        liste = _sub(el, "listePieceManquante")
        for piece in pieces:
            _sub(liste, "pieceManquante", str(piece))
    _opt(el, "dateLimitePieces", d.get("dateLimitePieces"))
    if d.get("logement"):
        _logement(el, d["logement"])


def _radiation(
    parent: etree._Element, r: Record | None, *, deradiation: bool = False, when: date | None = None
) -> None:
    el = _sub(parent, "radiation")
    if deradiation or r is None:
        _sub(el, "motifRadiation", code="")
        _opt(el, "dateRadiation", (r or {}).get("dateRadiation") or when)
        return
    _c(el, "motifRadiation", None, r, "motif")
    _c(el, "sousMotifRadiation", None, r, "sousMotif")
    _opt(el, "dateRadiation", r.get("dateRadiation"))
    if r.get("attribution"):
        _attribution(el, r["attribution"])


def type_fichier_for(schema: str, record: Record) -> str | None:
    """The typeFichier a canonical record becomes, or None when it is not sent to the SNE.

    Each SNE fact is sent once, from the record that carries its data: a radiation from the Decision
    RADIATION / DERADIATION (it holds the attribution data; a Demande with statut RADIEE is only the
    state after it); a creation, modification or renewal from the Demande (any data may change at
    renewal: the Demande holds them, a Decision RENOUVELLEMENT only the date), so a Decision
    RENOUVELLEMENT is not sent: one REN per renewal. Deletions and reads in a source system
    (operation SUPPRESSION / LECTURE) and records read from the SNE are not sent.
    """
    prov = record.get("provenance") or {}
    if prov.get("systemeSource") == "sne" or prov.get("operation") in ("SUPPRESSION", "LECTURE"):
        return None
    if schema.endswith("Demande"):
        if record.get("statut") == "RADIEE":
            return None
        if not record.get("numUnique"):
            return "CRE"
        renewed = record.get("dateDernierRenouvellement")
        when = prov.get("dateEvenement")
        if renewed is not None and isinstance(when, datetime) and when.astimezone(UTC).date() == renewed:
            return "REN"
        return "MOD"
    kind = record.get("typeEvenement")
    if kind == "DECISION_CAL":  # reported as a modification carrying the decision (UNCERTAIN)
        return "MOD" if record.get("decisionCal") else None
    return {"RADIATION": "RAD", "DERADIATION": "RAD"}.get(str(kind))


VERSIONS = ("02.00", "02.01")


def _root(
    type_fichier: str | None, now: datetime | str, version: str = VERSION_INTERFACE
) -> tuple[etree._Element, etree._Element]:
    root = etree.Element(q("interfaceNuu"), nsmap=_NSMAP, versionInterface=version)
    entete = _sub(root, "entete")
    if type_fichier is not None:
        _sub(entete, "typeFichier", type_fichier)
    _sub(entete, "dateFichier", now if isinstance(now, str) else _fmt(now))
    dl = _sub(_sub(root, "demande"), "demandeLogement")
    return root, dl


def version_of(record: Record) -> str:
    """The interface version the application came in (fichierSne), else the connector's: an
    application read from a 02.00 file is not silently written as 02.01."""
    fichier = record.get("fichierSne") or {}
    version = fichier.get("versionInterface")
    return str(version) if version in VERSIONS else VERSION_INTERFACE


def as_read(
    schema: str, record: Record, *, guichet: str = "", radiation: Record | None = None
) -> etree._Element:
    """The interfaceNuu file a Demande was read from, rebuilt from the canonical record with its own
    header (versionInterface, typeFichier or its absence in 02.00, dateFichier as written): the round
    trip SNE XML -> canonical -> SNE XML. Records without fichierSne get the connector's header.
    `radiation`: the radiation block of the file's Decision RADIATION (it holds the attribution data
    that the Demande, the state after the radiation, does not)."""
    if radiation is not None:
        record = {**record, "radiation": radiation}
    fichier = record.get("fichierSne") or {}
    tf = fichier.get("typeFichier") if fichier else type_fichier_for(schema, record)
    when = fichier.get("dateFichier") or datetime.now(UTC)
    shown = tf or type_fichier_for(schema, record) or "MOD"
    return build_interface_nuu(schema, record, shown, guichet=guichet, now=when, header_type=tf)


def build_interface_nuu(
    schema: str,
    record: Record,
    type_fichier: str,
    *,
    guichet: str,
    now: datetime | str,
    header_type: str | None = "",
) -> etree._Element:
    """interfaceNuu tree for a canonical record (no validation here: see rules.py). `header_type`
    (default: `type_fichier`) is what entete/typeFichier says; None writes none (02.00 extracts)."""
    root, dl = _root(type_fichier if header_type == "" else header_type, now, version_of(record))
    if schema.endswith("Demande"):
        _opt(dl, "numUnique", record.get("numUnique"))
        _opt(dl, "numGuichet", record.get("numGuichet") or guichet)
        _opt(dl, "dateCreationDemande", record.get("dateCreationDemande"))
        _opt(dl, "dateDernierRenouvellement", record.get("dateDernierRenouvellement"))
        if record.get("demandeur"):
            _personne_physique(dl, record)
        pm = record.get("personneMorale")
        if pm:
            el = _sub(dl, "personneMorale")
            _sub(el, "raisonSociale", pm.get("raisonSociale") or "")
            _opt(el, "siret", pm.get("siret"))
        _logement_recherche(dl, record.get("logementRecherche"))
        motifs = [sne_code("MotifDemande", m) for m in record.get("motifs") or []]
        motifs += [sne_code("MotifSante", m) for m in record.get("motifsSante") or [] if m != UNKNOWN_SYMBOL]
        motifs += record.get("motifsSanteCodesInconnus") or []
        if record.get("violencesFamiliales"):
            motifs.append("06")
        _liste(dl, "listeMotifDemande", "motifDemande", None, sorted(set(motifs)))
        _handicap(dl, record.get("handicap"))
        dalo = record.get("dalo")
        if dalo:
            el = _sub(dl, "dalo")
            _c(el, "statutDalo", None, dalo, "statut")
            _opt(el, "dateDecisionDalo", dalo.get("dateDecision"))
            _c(el, "typologieLogementDalo", None, dalo, "typologie")
        if type_fichier == "RAD":
            _radiation(dl, record.get("radiation"))
        return root
    # Decision
    _opt(dl, "numUnique", record.get("numUnique"))
    _opt(dl, "numGuichet", guichet)
    kind = record.get("typeEvenement")
    if kind in ("RADIATION", "DERADIATION"):
        when = (record.get("provenance") or {}).get("dateEvenement")
        day = when.astimezone(UTC).date() if isinstance(when, datetime) else None
        _radiation(dl, record.get("radiation"), deradiation=kind == "DERADIATION", when=day)
    elif kind == "DECISION_CAL" and record.get("decisionCal"):
        _decision_cal(dl, record["decisionCal"])
    return root


def build_for_record(
    schema: str, record: Record, *, guichet: str, now: datetime
) -> tuple[str, etree._Element] | None:
    tf = type_fichier_for(schema, record)
    if tf is None:
        return None
    return tf, build_interface_nuu(schema, record, tf, guichet=guichet, now=now)


_OWN = ("numUnique", "numGuichet", "radiation", "decisionCal", "listeAnomalie", "dateDernierRenouvellement")


def _clone(el: etree._Element) -> etree._Element:
    """Deep copy into the nuu namespace without the source's prefixes (answers use ns2:)."""
    attrib = {str(k): str(v) for k, v in el.attrib.items()}
    new = etree.Element(q(etree.QName(el).localname), attrib=attrib)
    new.text = el.text
    for child in el:
        if isinstance(child.tag, str):
            new.append(_clone(child))
    return new


def with_application(file_root: etree._Element, application: etree._Element) -> etree._Element:
    """`file_root` (a RAD / REN built from a decision) completed with the application blocks of
    `application` (an interfaceNuu, e.g. the SNE's demandeLogement answer). The file keeps its own
    entete, numUnique, numGuichet, radiation and renewal date."""
    out = _clone(file_root)
    out_dl = out.find(f"{q('demande')}/{q('demandeLogement')}")
    app_dl = application.find(f"{q('demande')}/{q('demandeLogement')}")
    if out_dl is None or app_dl is None:
        return out
    for child in app_dl:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        if name in _OWN or out_dl.find(q(name)) is not None:
            continue
        out_dl.append(_clone(child))
    return out


def to_bytes(root: etree._Element) -> bytes:
    """7-bit serialisation (non-ASCII characters as character references), as the text/xml part is
    declared `charset=us-ascii`, `Content-Transfer-Encoding: 7bit`."""
    return bytes(etree.tostring(root, xml_declaration=True, encoding="us-ascii"))
