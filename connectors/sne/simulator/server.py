"""HTTPS front of the simulator: client certificate required, fault injection for tests.

Endpoints (all over mutual TLS on 127.0.0.1):
    POST /services/DemandeLogementImplService/   the SNE web service (MTOM requests)
    POST /control    JSON {"fail_next": N, "latency": S, "drop_next": N,
                           "add_dalo": {"numUnique", "statut", "dateDecision", "typologie", "commission"}}
    GET  /control    JSON state: call counters, applications registered, pending faults
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from connectors.sne.mtom import PATH, SoapFault, fault_response, parse_request
from connectors.sne.simulator.certs import CertPaths, ensure_certs
from connectors.sne.simulator.logic import handle
from connectors.sne.simulator.state import Registry

__all__ = ["Faults", "SimulatorServer", "serve"]

log = logging.getLogger(__name__)
MAX_BODY = 8 * 1024 * 1024


@dataclass
class Faults:
    """What the simulator is told to do wrong (consumed request by request)."""

    fail_next: int = 0  # answer 503 without processing
    latency: float = 0.0  # seconds added before processing
    drop_next: int = 0  # process, then close the connection without answering
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> tuple[bool, float, bool]:
        with self.lock:
            fail = self.fail_next > 0
            if fail:
                self.fail_next -= 1
                return True, self.latency, False
            drop = self.drop_next > 0
            if drop:
                self.drop_next -= 1
            return False, self.latency, drop


class _Handler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body leave in two writes: without this, Nagle + delayed ACK cost ~40 ms a call
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sne-sim %s", format % args)

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY:
            self._send(411, "text/plain", b"Content-Length required (max 8 MiB)")
            return None
        return self.rfile.read(int(length))

    def do_GET(self) -> None:
        if self.path != "/control":
            self._send(404, "text/plain", b"not found")
            return
        sim = self.server
        state = {
            "calls": sim.registry.calls(),
            "demandes": sim.registry.count(),
            "fail_next": sim.faults.fail_next,
            "drop_next": sim.faults.drop_next,
            "latency": sim.faults.latency,
        }
        self._send(200, "application/json", json.dumps(state).encode())

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        if self.path == "/control":
            self._control(body)
            return
        if self.path.rstrip("/") != PATH.rstrip("/"):
            status, ctype, payload = fault_response("Sender", f"unknown path {self.path}")
            self._send(404, ctype, payload)
            return
        fail, latency, drop = self.server.faults.take()
        if fail:
            self._send(503, "text/plain", b"Service temporairement indisponible")
            return
        if latency:
            time.sleep(latency)
        headers = dict(self.headers.items())
        try:
            req = parse_request(headers, body)
            ctype, payload = handle(req, self.server.registry)
            status = 200
        except SoapFault as exc:
            status, ctype, payload = fault_response(exc.code, exc.reason)
        if drop:
            self.close_connection = True
            self.connection.shutdown(2)  # processed, but the answer never leaves
            return
        self._send(status, ctype, payload)

    def _control(self, body: bytes) -> None:
        try:
            orders = json.loads(body or b"{}")
        except ValueError:
            self._send(400, "text/plain", b"JSON expected")
            return
        faults = self.server.faults
        with faults.lock:
            faults.fail_next = int(orders.get("fail_next", faults.fail_next))
            faults.drop_next = int(orders.get("drop_next", faults.drop_next))
            faults.latency = float(orders.get("latency", faults.latency))
        dalo = orders.get("add_dalo")
        if isinstance(dalo, dict):
            self.server.registry.add_dalo(
                str(dalo["numUnique"]),
                str(dalo.get("statut", "ACTIF")),
                dalo.get("dateDecision"),
                dalo.get("typologie"),
                dalo.get("commission"),
            )
        self._send(200, "application/json", b'{"ok": true}')


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, certs: CertPaths, state_dir: Path, faults: Faults | None = None) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(certs.server), str(certs.server_key))
        ctx.load_verify_locations(str(certs.ca))
        ctx.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no handshake
        self.socket = ctx.wrap_socket(self.socket, server_side=True)
        self.registry = Registry(state_dir / "sne-simulator.sqlite")
        self.faults = faults or Faults()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("sne-sim connection error from %s", client_address)

    def server_close(self) -> None:
        super().server_close()
        self.registry.close()


def serve(port: int, certs_dir: Path, state_dir: Path, faults: Faults | None = None) -> SimulatorServer:
    """A bound simulator (call serve_forever() on it); certificates are created in certs_dir if absent."""
    return SimulatorServer(port, ensure_certs(certs_dir), state_dir, faults)
