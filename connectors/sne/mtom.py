"""SOAP 1.2 + XOP/MTOM framing of SNE requests and answers (brief §4.2), built and parsed by hand.

The SNE is strict about the layout (libsne: "xop:Include must be on the same line as
fichierDemande"), so the root part is written as text, not by a SOAP library. Request layout:

    POST /services/DemandeLogementImplService/
    Content-Type: multipart/related; type="application/xop+xml"; start="<rootpart@gp-gateway>";
        start-info="application/soap+xml"; boundary="..."; action="http://ws.metier.nuu.application.i2/getNumUnique"
    part 1  application/xop+xml; type="application/soap+xml"   the SOAP envelope (Content-ID = start)
    part 2  application/octet-stream, base64, Content-ID <certificate>        the certificat (may be empty)
    part 3  text/xml; charset=us-ascii, 7bit, Content-ID <xml_id>              the interfaceNuu file

Parts present per service: numUnique (cert, xml), doublons (xml), demandeLogement / *DepuisLe (cert).
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser

from lxml import etree

from connectors.sne.nuu import NUU_NS

__all__ = [
    "PATH",
    "SERVICES",
    "SOAP_NS",
    "WS_NS",
    "XOP_NS",
    "MtomRequest",
    "ParsedRequest",
    "Part",
    "SoapFault",
    "build_request",
    "build_response",
    "certificate_name",
    "fault_response",
    "file_name",
    "parse_content_type",
    "parse_multipart",
    "parse_request",
    "parse_response_root",
    "safe_parser",
]

SOAP_NS = "http://www.w3.org/2003/05/soap-envelope"
WS_NS = "http://ws.metier.nuu.application.i2/"
XOP_NS = "http://www.w3.org/2004/08/xop/include"
PATH = "/services/DemandeLogementImplService/"
ROOT_CID = "rootpart@gp-gateway"
XML_CID = "xml_id"
CERT_CID = "certificate"
CRLF = b"\r\n"

# service -> (parameters element, parts sent, scalar parameter element)
SERVICES: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "numUnique": ("numUniqueParametres", ("xml", "cert"), None),
    "doublons": ("rechercheDoublonsParametres", ("xml",), None),
    "demandeLogement": ("demandeLogementParametres", ("cert",), "numUnique"),
    "nouveauxDaloDepuisLe": ("nouveauxDaloDepuisLeParametres", ("cert",), "dateNouveauDaloDepuisLe"),
    "demandesRadieesDepuisLe": ("demandesRadieesDepuisLeParametres", ("cert",), "dateRadiationDepuisLe"),
}
FILE_RE = re.compile(r"^DEMG[0-9A-Z]{4}-[0-9]{12}-[0-9]{6}\.xml$")
CERT_RE = re.compile(r"^CERG[0-9A-Z]{4}-[0-9]{12}\.pem$")
_SAME_LINE_XML = re.compile(
    r'<fichierDemande ws:contentType="text/xml"><xop:Include [^\r\n>]*/></fichierDemande>'
)
_SAME_LINE_CERT = re.compile(
    r'<certificat ws:contentType="application/x-x509-ca-cert"><xop:Include [^\r\n>]*/></certificat>'
)


class SoapFault(Exception):
    """A SOAP 1.2 fault (code Sender or Receiver) with its reason text."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def safe_parser() -> etree.XMLParser:
    """No entities, no network, no huge trees: answers and requests are untrusted."""
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=False)


def file_name(guichet: str, now: datetime) -> str:
    """DEM<guichet>-<yyyyMMddHHmm>-000000.xml (guichet written G + 4 characters, e.g. G3501)."""
    return f"DEM{guichet}-{now:%Y%m%d%H%M}-000000.xml"


def certificate_name(guichet: str, now: datetime) -> str:
    return f"CER{guichet}-{now:%Y%m%d%H%M}.pem"


def action_for(service: str) -> str:
    return f"{WS_NS}get{service[0].upper()}{service[1:]}"


@dataclass(frozen=True, slots=True)
class MtomRequest:
    service: str
    headers: dict[str, str]
    body: bytes
    file_name: str | None


def _envelope(service: str, guichet: str, now: datetime, scalar: str | None) -> str:
    element, parts, scalar_el = SERVICES[service]
    lines = [f"    <ws:{element}>"]
    if "xml" in parts:
        lines.append(f"      <nomFichierDemande>{file_name(guichet, now)}</nomFichierDemande>")
        # the xop:Include MUST stay on the same line as its parent (SNE rigidity)
        lines.append(
            f'      <fichierDemande ws:contentType="text/xml"><xop:Include href="cid:{XML_CID}" '
            f'xmlns:xop="{XOP_NS}"/></fichierDemande>'
        )
    if scalar_el is not None:
        lines.append(f"      <{scalar_el}>{scalar or ''}</{scalar_el}>")
    if "cert" in parts:
        lines.append(f"      <nomCertificat>{certificate_name(guichet, now)}</nomCertificat>")
        lines.append(
            f'      <certificat ws:contentType="application/x-x509-ca-cert">'
            f'<xop:Include href="cid:{CERT_CID}" xmlns:xop="{XOP_NS}"/></certificat>'
        )
    lines.append(f"    </ws:{element}>")
    return (
        f'<soap:Envelope xmlns:soap="{SOAP_NS}" xmlns:ws="{WS_NS}">\n'
        "  <soap:Header/>\n"
        "  <soap:Body>\n" + "\n".join(lines) + "\n  </soap:Body>\n</soap:Envelope>"
    )


def build_request(
    service: str,
    *,
    guichet: str,
    now: datetime,
    xml: bytes | None = None,
    certificate: bytes = b"",
    scalar: str | None = None,
    boundary: str | None = None,
) -> MtomRequest:
    """The HTTP headers and multipart/related body of one SNE call."""
    if service not in SERVICES:
        raise ValueError(f"unknown SNE service {service!r}")
    _, parts, _ = SERVICES[service]
    if "xml" in parts and xml is None:
        raise ValueError(f"service {service} needs an interfaceNuu file")
    b = boundary or f"MIMEBoundary_{uuid.uuid4().hex}"
    soap = _envelope(service, guichet, now, scalar).replace("\n", "\r\n").encode("utf-8")
    out = [
        f"--{b}".encode(),
        f'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"; '
        f'action="get{service[0].upper()}{service[1:]}"'.encode(),
        b"Content-Transfer-Encoding: 8bit",
        f"Content-ID: <{ROOT_CID}>".encode(),
        b"",
        soap,
    ]
    if "cert" in parts:
        out += [
            f"--{b}".encode(),
            b"Content-Type: application/octet-stream",
            b"Content-Transfer-Encoding: base64",
            f"Content-ID: <{CERT_CID}>".encode(),
            b"Content-Disposition: attachment",
            b"",
            base64.b64encode(certificate),
        ]
    if "xml" in parts:
        assert xml is not None  # noqa: S101 - checked above
        xml = xml.replace(b"\r\n", b"\n").replace(b"\n", CRLF)  # MIME text lines end in CRLF
        out += [
            f"--{b}".encode(),
            b"Content-Type: text/xml; charset=us-ascii",
            b"Content-Transfer-Encoding: 7bit",
            f"Content-ID: <{XML_CID}>".encode(),
            f'Content-Disposition: attachment; name="{XML_CID}"'.encode(),
            b"",
            xml,
        ]
    out.append(f"--{b}--".encode())
    body = CRLF.join(out) + CRLF
    headers = {
        "Content-Type": (
            f'multipart/related; type="application/xop+xml"; start="<{ROOT_CID}>"; '
            f'start-info="application/soap+xml"; boundary="{b}"; action="{action_for(service)}"'
        ),
        "MIME-Version": "1.0",
        "Accept-Encoding": "deflate",
        "User-Agent": "Apache-HttpClient/4.1.1 (java 1.5)",
    }
    return MtomRequest(service, headers, body, file_name(guichet, now) if "xml" in parts else None)


# ------------------------------------------------------------------------------------------ parsing
@dataclass(frozen=True, slots=True)
class Part:
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def content_type(self) -> tuple[str, dict[str, str]]:
        return parse_content_type(self.headers.get("content-type", ""))


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    msg = Message()
    msg["content-type"] = value
    raw = msg.get_params(header="content-type") or []
    params = {k.lower(): v for k, v in raw[1:]} if value else {}
    return msg.get_content_type(), params


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], list[Part]]:
    """Split a multipart/related body; SoapFault(Sender) when the framing is wrong."""
    mime, params = parse_content_type(content_type)
    if mime != "multipart/related":
        raise SoapFault("Sender", f"Content-Type must be multipart/related, not {mime}")
    boundary = params.get("boundary")
    if not boundary:
        raise SoapFault("Sender", "multipart/related without boundary")
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise SoapFault("Sender", "multipart body without closing boundary")
    parts = []
    for raw in chunks[1:-1]:
        chunk = raw.removeprefix(CRLF).removesuffix(CRLF)
        head, sep, content = chunk.partition(CRLF + CRLF)
        if not sep:
            raise SoapFault("Sender", "MIME part without a blank line after its headers")
        parsed = BytesHeaderParser().parsebytes(head + CRLF + CRLF)
        headers = {k.lower(): str(v) for k, v in parsed.items()}
        parts.append(Part(headers, content))
    return params, parts


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    service: str
    root: etree._Element  # the SOAP envelope
    file_name: str | None = None
    xml: bytes | None = None
    certificate_name: str | None = None
    certificate: bytes | None = None
    scalar: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _cid(part: Part) -> str:
    return part.headers.get("content-id", "").strip().strip("<>")


def parse_request(headers: dict[str, str], body: bytes) -> ParsedRequest:  # noqa: PLR0915 - one check a line
    """Parse an SNE request as strictly as the SNE does; SoapFault(Sender, reason) otherwise."""
    lower = {k.lower(): v for k, v in headers.items()}
    params, parts = parse_multipart(lower.get("content-type", ""), body)
    if params.get("type") != "application/xop+xml":
        raise SoapFault("Sender", 'Content-Type parameter type must be "application/xop+xml"')
    if params.get("start-info") != "application/soap+xml":
        raise SoapFault("Sender", 'Content-Type parameter start-info must be "application/soap+xml"')
    start = (params.get("start") or "").strip("<>")
    if not start:
        raise SoapFault("Sender", "Content-Type parameter start is missing")
    action = params.get("action", "")
    root_part = parts[0] if parts else None
    if root_part is None or _cid(root_part) != start:
        raise SoapFault("Sender", "the first MIME part must be the SOAP root named by start")
    mime, rparams = root_part.content_type()
    if mime != "application/xop+xml" or rparams.get("type") != "application/soap+xml":
        raise SoapFault("Sender", 'root part must be application/xop+xml; type="application/soap+xml"')
    try:
        env = etree.fromstring(root_part.body, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise SoapFault("Sender", f"SOAP root part is not well-formed XML (line {exc.lineno})") from exc
    if env.tag != f"{{{SOAP_NS}}}Envelope":
        raise SoapFault("Sender", "root element must be a SOAP 1.2 Envelope")
    body_el = env.find(f"{{{SOAP_NS}}}Body")
    if body_el is None or len(body_el) != 1:
        raise SoapFault("Sender", "SOAP Body must hold exactly one element")
    call = body_el[0]
    by_element = {v[0]: k for k, v in SERVICES.items()}
    local = etree.QName(call).localname
    if etree.QName(call).namespace != WS_NS or local not in by_element:
        raise SoapFault("Sender", f"unknown operation {local}")
    service = by_element[local]
    if action != action_for(service):
        raise SoapFault("Sender", f"action parameter does not match operation {local}")
    _, expected, scalar_el = SERVICES[service]
    by_cid = {_cid(p): p for p in parts[1:]}
    raw_root = root_part.body.decode("utf-8", "replace")
    out: dict[str, object] = {}
    if "xml" in expected:
        name = (call.findtext("nomFichierDemande") or "").strip()
        if not FILE_RE.match(name):
            raise SoapFault(
                "Sender", "nomFichierDemande does not follow DEM<guichet>-<yyyyMMddHHmm>-000000.xml"
            )
        if not re.search(
            r'<fichierDemande ws:contentType="text/xml"><xop:Include [^\r\n>]*/></fichierDemande>', raw_root
        ):
            raise SoapFault("Sender", "xop:Include must be on the same line, right inside fichierDemande")
        part = _referenced(call, "fichierDemande", by_cid)
        ptype, _ = part.content_type()
        if ptype != "text/xml" or part.headers.get("content-transfer-encoding", "").lower() != "7bit":
            raise SoapFault("Sender", "the fichierDemande part must be text/xml, 7bit")
        if any(b > 0x7F for b in part.body):
            raise SoapFault("Sender", "the fichierDemande part is declared 7bit but holds 8-bit bytes")
        out["file_name"], out["xml"] = name, part.body
    if "cert" in expected:
        name = (call.findtext("nomCertificat") or "").strip()
        if not CERT_RE.match(name):
            raise SoapFault("Sender", f"Le nom du certificat associé [{name}] n'est pas conforme.")
        if not re.search(
            r'<certificat ws:contentType="application/x-x509-ca-cert"><xop:Include [^\r\n>]*/></certificat>',
            raw_root,
        ):
            raise SoapFault("Sender", "xop:Include must be on the same line, right inside certificat")
        part = _referenced(call, "certificat", by_cid)
        if part.headers.get("content-transfer-encoding", "").lower() != "base64":
            raise SoapFault("Sender", "the certificat part must be base64")
        try:
            out["certificate"] = base64.b64decode(part.body, validate=False)
        except ValueError as exc:
            raise SoapFault("Sender", "the certificat part is not base64") from exc
        out["certificate_name"] = name
    if scalar_el is not None:
        value = call.findtext(scalar_el)
        if value is None:
            raise SoapFault("Sender", f"{scalar_el} is missing")
        out["scalar"] = value.strip()
    return ParsedRequest(service, env, **out)  # type: ignore[arg-type]  # keys match the fields above


def _referenced(call: etree._Element, element: str, by_cid: dict[str, Part]) -> Part:
    el = call.find(element)
    inc = el.find(f"{{{XOP_NS}}}Include") if el is not None else None
    href = inc.get("href", "") if inc is not None else ""
    if el is None or not href.startswith("cid:"):
        raise SoapFault("Sender", f"{element} must hold an xop:Include with a cid: href")
    if el.get(f"{{{WS_NS}}}contentType") is None:
        raise SoapFault("Sender", f"{element} must carry ws:contentType")
    part = by_cid.get(href[4:])
    if part is None:
        raise SoapFault("Sender", f"{element} refers to a missing MIME part")
    return part


# ------------------------------------------------------------------------------------------ answers
def build_response(service: str, payload: etree._Element) -> tuple[str, bytes]:
    """A one-part MTOM answer wrapping `payload` (interfaceNuu or an answer list), as CXF sends them."""
    env = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soap": SOAP_NS})
    body = etree.SubElement(env, f"{{{SOAP_NS}}}Body")
    resp = etree.SubElement(body, f"{{{WS_NS}}}{service}Response", nsmap={"ns1": WS_NS})
    ret = etree.SubElement(resp, "return")
    ret.append(_reprefixed(payload))
    xml = etree.tostring(env, xml_declaration=True, encoding="UTF-8")
    b = f"uuid:{uuid.uuid4()}"
    content = CRLF.join(
        [
            f"--{b}".encode(),
            b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"',
            b"Content-Transfer-Encoding: binary",
            b"Content-ID: <root.message@cxf.apache.org>",
            b"",
            xml,
            f"--{b}--".encode(),
        ]
    )
    ctype = (
        f'multipart/related; type="application/xop+xml"; boundary="{b}"; '
        'start="<root.message@cxf.apache.org>"; start-info="application/soap+xml"'
    )
    return ctype, content + CRLF


def _reprefixed(payload: etree._Element) -> etree._Element:
    """Copy of payload with the nuu namespace on prefix ns2 (as the SNE answers: <ns2:interfaceNuu>)."""
    xml = etree.tostring(payload)
    tree = etree.fromstring(xml, safe_parser())
    out = etree.Element(tree.tag, nsmap={"ns2": NUU_NS}, attrib=dict(tree.attrib))
    out.text = tree.text
    for child in tree:
        out.append(child)
    etree.cleanup_namespaces(out)
    return out


def fault_response(code: str, reason: str) -> tuple[int, str, bytes]:
    """HTTP status, content type and body of a SOAP 1.2 fault (Sender -> 400, Receiver -> 500)."""
    env = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soap": SOAP_NS})
    fault = etree.SubElement(etree.SubElement(env, f"{{{SOAP_NS}}}Body"), f"{{{SOAP_NS}}}Fault")
    etree.SubElement(
        etree.SubElement(fault, f"{{{SOAP_NS}}}Code"), f"{{{SOAP_NS}}}Value"
    ).text = f"soap:{code}"
    text = etree.SubElement(etree.SubElement(fault, f"{{{SOAP_NS}}}Reason"), f"{{{SOAP_NS}}}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "fr")
    text.text = reason
    status = 400 if code == "Sender" else 500
    return (
        status,
        "application/soap+xml; charset=utf-8",
        etree.tostring(env, xml_declaration=True, encoding="UTF-8"),
    )


def parse_response_root(content_type: str, body: bytes) -> etree._Element:
    """The SOAP envelope of an answer (plain SOAP or MTOM). SoapFault when it is a fault;
    ValueError when it cannot be parsed (caller dead-letters with the raw answer)."""
    mime, _ = parse_content_type(content_type)
    xml = body
    if mime == "multipart/related":
        try:
            _, parts = parse_multipart(content_type, body)
        except SoapFault as exc:
            raise ValueError(f"bad multipart answer: {exc.reason}") from exc
        if not parts:
            raise ValueError("multipart answer without parts")
        xml = parts[0].body
    try:
        env = etree.fromstring(xml, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"answer is not well-formed XML (line {exc.lineno})") from exc
    if env.tag != f"{{{SOAP_NS}}}Envelope":
        raise ValueError("answer is not a SOAP 1.2 envelope")
    fault = env.find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
    if fault is not None:
        code = (fault.findtext(f"{{{SOAP_NS}}}Code/{{{SOAP_NS}}}Value") or "").split(":")[-1]
        reason = fault.findtext(f"{{{SOAP_NS}}}Reason/{{{SOAP_NS}}}Text") or ""
        raise SoapFault(code or "Receiver", reason.strip())
    return env
