"""HTTPS client of the SNE with mutual TLS. Blocking (http.client); the sink runs it in a thread.

Failures are classified by what they say about the request:
- NotDelivered (RetriableError): the SNE did not process it (connect failed, 502/503/504/429).
- OutcomeUnknown (RetriableError): it was sent but no answer came (timeout, connection dropped):
  a creation must be checked with `doublons` before being sent again.
"""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from gateway.errors import ConfigError, RetriableError

from connectors.sne.answers import Answer, parse_answer
from connectors.sne.config import SneConfig
from connectors.sne.mtom import MtomRequest, build_request

__all__ = ["NotDelivered", "OutcomeUnknown", "SneClient", "SneExchange", "ssl_context"]


class NotDelivered(RetriableError):
    """The SNE did not process the request: safe to send it again."""


class OutcomeUnknown(RetriableError):
    """Sent, no answer: the SNE may have processed it."""


def ssl_context(cfg: SneConfig) -> ssl.SSLContext:
    try:
        ctx = ssl.create_default_context(cafile=str(cfg.ca_cert) if cfg.ca_cert else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(cfg.client_cert), str(cfg.client_key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"SNE TLS material cannot be loaded ({type(exc).__name__}: {exc})") from exc
    return ctx


@dataclass(frozen=True, slots=True)
class SneExchange:
    request: MtomRequest
    status: int
    content_type: str
    body: bytes
    answer: Answer


class SneClient:
    def __init__(self, cfg: SneConfig) -> None:
        self.cfg = cfg
        self._ctx = ssl_context(cfg)
        parts = urlsplit(cfg.url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 443
        self._path = parts.path or "/"
        self._cert_part = cfg.certificate_part.read_bytes() if cfg.certificate_part else b""

    def call(
        self, service: str, *, now: datetime, xml: bytes | None = None, scalar: str | None = None
    ) -> SneExchange:
        req = build_request(
            service, guichet=self.cfg.guichet, now=now, xml=xml, certificate=self._cert_part, scalar=scalar
        )
        status, ctype, body = self.post(req)
        return SneExchange(req, status, ctype, body, parse_answer(service, ctype, body))

    def post(self, req: MtomRequest) -> tuple[int, str, bytes]:
        conn = http.client.HTTPSConnection(
            self._host, self._port, context=self._ctx, timeout=self.cfg.connect_timeout
        )
        try:
            try:
                conn.connect()
            except (OSError, ssl.SSLError) as exc:
                raise NotDelivered(f"cannot connect to the SNE ({type(exc).__name__})") from exc
            if conn.sock is not None:
                conn.sock.settimeout(self.cfg.read_timeout)
            try:
                conn.request("POST", self._path, body=req.body, headers=req.headers)
                resp = conn.getresponse()
                body = resp.read()
            except (TimeoutError, http.client.HTTPException, OSError) as exc:
                raise OutcomeUnknown(f"no answer from the SNE ({type(exc).__name__})") from exc
            if resp.status in (429, 502, 503, 504):
                retry_after = resp.getheader("Retry-After")
                raise NotDelivered(
                    f"SNE unavailable (HTTP {resp.status})",
                    retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
                )
            return resp.status, resp.getheader("Content-Type") or "", body
        finally:
            conn.close()
