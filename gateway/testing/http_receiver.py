"""A real HTTP receiver for webhook tests and benchmarks (stdlib http.server, HTTP/1.1 keep-alive, in
a thread): records each request, verifies nothing, answers what the test scripts.

    with Receiver() as rx:            # rx.url, rx.requests, rx.script(500, 500) then 200s
        ...
"""

from __future__ import annotations

import json
import ssl
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["Received", "Receiver"]


@dataclass(frozen=True, slots=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    def events(self) -> list[dict[str, Any]]:
        data = json.loads(self.body)
        return data if isinstance(data, list) else [data]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        rx = self.server.receiver
        status = rx.next_status(body)
        headers = {k.lower(): v for k, v in self.headers.items()}
        with rx.lock:
            rx.requests.append(Received(headers, body, status))
        if rx.delay:
            threading.Event().wait(rx.delay)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


class Receiver:
    """An HTTP receiver on 127.0.0.1 (free port). `script(*statuses)` answers those first, then 200;
    `refuse(status, when=substring)` answers `status` to every body containing `when`."""

    def __init__(self, port: int = 0, *, tls: tuple[Path, Path] | None = None) -> None:
        """`tls`: (certificate, key) files: the receiver speaks HTTPS."""
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.delay = 0.0
        self._script: deque[int] = deque()
        self._refuse: list[tuple[int, bytes]] = []
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.receiver = self
        self._scheme = "http"
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self._server.server_address[1]}/hook"

    def script(self, *statuses: int) -> None:
        with self.lock:
            self._script.extend(statuses)

    def refuse(self, status: int, when: str) -> None:
        with self.lock:
            self._refuse.append((status, when.encode()))

    def next_status(self, body: bytes) -> int:
        with self.lock:
            for status, needle in self._refuse:
                if needle in body:
                    return status
            return self._script.popleft() if self._script else 200

    def delivered_ids(self) -> list[str]:
        """The `id` of every event the receiver accepted (2xx), repeats included."""
        with self.lock:
            done = [r for r in self.requests if 200 <= r.status < 300]
        return [str(e["id"]) for r in done for e in r.events()]

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> None:
    """`python -m gateway.testing.http_receiver [PORT]`: a receiver to try the webhook sink by hand;
    prints one line per event (webhook-id, type, status), never the data."""
    import sys  # noqa: PLC0415
    import time  # noqa: PLC0415

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    rx = Receiver(port)
    rx.start()
    print(f"receiving on {rx.url}", flush=True)
    shown = 0
    try:
        while True:
            time.sleep(0.5)
            with rx.lock:
                new = rx.requests[shown:]
            for r in new:
                for e in r.events():
                    print(f"{r.webhook_id}  {e.get('type')}  HTTP {r.status}", flush=True)
            shown += len(new)
    except KeyboardInterrupt:
        rx.stop()


if __name__ == "__main__":
    main()
