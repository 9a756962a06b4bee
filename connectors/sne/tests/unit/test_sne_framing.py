"""The connector's request for one demand, SAVED as a fixture, parsed back part by part."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import pytest
from connectors.sne.mtom import (
    SOAP_NS,
    WS_NS,
    XOP_NS,
    SoapFault,
    build_request,
    parse_content_type,
    parse_multipart,
    parse_request,
)
from connectors.sne.nuu import build_for_record, q, to_bytes
from connectors.sne.rules import xsd
from connectors.sne.testing import demande
from lxml import etree

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "numUnique_request.http"
NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def _load() -> tuple[dict[str, str], bytes]:
    raw = FIXTURE.read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = {k: str(v) for k, v in BytesHeaderParser().parsebytes(head + b"\r\n\r\n").items()}
    return headers, body


def test_the_fixture_is_what_the_connector_sends_today() -> None:
    tf_root = build_for_record("fr.gp.Demande", demande(), guichet="G3501", now=NOW)
    assert tf_root is not None
    req = build_request(
        "numUnique", guichet="G3501", now=NOW, xml=to_bytes(tf_root[1]), boundary="MIMEBoundary_gp_fixture"
    )
    headers, body = _load()
    assert headers == req.headers
    assert body == req.body


def test_http_headers_follow_the_brief() -> None:
    headers, _ = _load()
    mime, params = parse_content_type(headers["Content-Type"])
    assert mime == "multipart/related"
    assert params["type"] == "application/xop+xml"
    assert params["start"] == "<rootpart@gp-gateway>"
    assert params["start-info"] == "application/soap+xml"
    assert params["action"] == "http://ws.metier.nuu.application.i2/getNumUnique"
    assert params["boundary"] == "MIMEBoundary_gp_fixture"
    assert headers["MIME-Version"] == "1.0"


def test_parts_layout_root_then_certificate_then_xml() -> None:
    headers, body = _load()
    _, parts = parse_multipart(headers["Content-Type"], body)
    assert [p.headers["content-id"] for p in parts] == ["<rootpart@gp-gateway>", "<certificate>", "<xml_id>"]
    root, cert, xml = parts
    assert root.content_type() == (
        "application/xop+xml",
        {"charset": "UTF-8", "type": "application/soap+xml", "action": "getNumUnique"},
    )
    assert cert.content_type()[0] == "application/octet-stream"
    assert cert.headers["content-transfer-encoding"] == "base64"
    assert base64.b64decode(cert.body) == b""
    assert xml.content_type() == ("text/xml", {"charset": "us-ascii"})
    assert xml.headers["content-transfer-encoding"] == "7bit"
    assert all(b < 0x80 for b in xml.body)
    assert body.count(b"\r\n") > 20 and b"\n" not in body.replace(b"\r\n", b"")


def test_soap_body_and_xop_include() -> None:
    headers, body = _load()
    _, parts = parse_multipart(headers["Content-Type"], body)
    env = etree.fromstring(parts[0].body)
    assert env.tag == f"{{{SOAP_NS}}}Envelope"
    assert env.find(f"{{{SOAP_NS}}}Header") is not None
    call: Any = env.find(f"{{{SOAP_NS}}}Body/{{{WS_NS}}}numUniqueParametres")
    assert call is not None
    assert re.fullmatch(r"DEMG3501-202611260930-000000\.xml", call.findtext("nomFichierDemande") or "")
    assert call.findtext("nomCertificat") == "CERG3501-202611260930.pem"
    inc = call.find(f"fichierDemande/{{{XOP_NS}}}Include")
    assert inc is not None and inc.get("href") == "cid:xml_id"
    assert call.find("fichierDemande").get(f"{{{WS_NS}}}contentType") == "text/xml"
    cert_inc = call.find(f"certificat/{{{XOP_NS}}}Include")
    assert cert_inc is not None and cert_inc.get("href") == "cid:certificate"
    # the SNE's rigidity: xop:Include on the same line as its parent element
    text = parts[0].body.decode()
    assert '<fichierDemande ws:contentType="text/xml"><xop:Include href="cid:xml_id"' in text


def test_xml_payload_is_valid_against_the_xsd() -> None:
    headers, body = _load()
    _, parts = parse_multipart(headers["Content-Type"], body)
    payload = etree.fromstring(parts[2].body)
    assert xsd().validate(payload), xsd().error_log
    assert payload.findtext(f"{q('entete')}/{q('typeFichier')}") == "CRE"
    demandeur = payload.find(
        f"{q('demande')}/{q('demandeLogement')}/{q('personnePhysique')}/{q('demandeur')}"
    )
    assert demandeur is not None and demandeur.findtext(q("prenom")) == "Anaïs"


def test_the_strict_parser_accepts_the_fixture() -> None:
    headers, body = _load()
    parsed = parse_request(headers, body)
    assert parsed.service == "numUnique"
    assert parsed.file_name == "DEMG3501-202611260930-000000.xml"
    assert parsed.xml is not None and parsed.xml.startswith(b"<?xml")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda h, b: (
                h | {"Content-Type": h["Content-Type"].replace('start-info="application/soap+xml"; ', "")},
                b,
            ),
            "start-info",
        ),
        (
            lambda h, b: (h | {"Content-Type": h["Content-Type"].replace("getNumUnique", "getDoublons")}, b),
            "action",
        ),
        (
            lambda h, b: (h, b.replace(b'"text/xml"><xop:Include', b'"text/xml">\r\n<xop:Include')),
            "same line",
        ),
        (lambda h, b: (h, b.replace(b"DEMG3501-", b"DEM3501-")), "nomFichierDemande"),
        (lambda h, b: (h, b.replace(b"Lef&#232;vre", "Lefèvre".encode())), "8-bit"),
        (
            lambda h, b: (h, b.replace(b"<rootpart@gp-gateway>\r\n\r\n<soap", b"<other>\r\n\r\n<soap")),
            "first MIME",
        ),
        (
            lambda h, b: (
                h,
                b.replace(
                    b"http://www.w3.org/2003/05/soap-envelope", b"http://schemas.xmlsoap.org/soap/envelope/"
                ),
            ),
            "SOAP 1.2",
        ),
        (lambda h, b: (h, b.replace(b"cid:xml_id", b"cid:nowhere")), "missing MIME part"),
        (lambda h, b: (h, b.replace(b"--MIMEBoundary_gp_fixture--", b"")), "closing boundary"),
    ],
)
def test_the_strict_parser_rejects_what_the_sne_rejects(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    headers, body = mutate(*_load())
    with pytest.raises(SoapFault) as info:
        parse_request(headers, body)
    assert info.value.code == "Sender"
    assert reason in info.value.reason
