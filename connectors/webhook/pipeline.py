"""HTTP/1.1 over one kept-alive connection, pipelined: the webhook sink's lanes.

`Connection.exchange(requests)` writes several requests back to back (one system call) and then
reads their answers, in the order HTTP/1.1 gives them (RFC 9112 §9.3.2). Only the status and
`Retry-After` of an answer are kept; its body is read and dropped. A receiver that closes the
connection (`Connection: close`, an HTTP/1.0 answer, or a close without a word) ends the exchange:
the requests it did not answer are returned unanswered, for the caller to send again on a new
connection (webhooks are delivered at least once; receivers de-duplicate on `webhook-id`).

Requests are built as bytes by `request()`; header values are checked (no control characters).
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Answer", "Connection", "ProtocolError", "request"]

_MAX_HEAD = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Linux: acknowledge at once what was read. A receiver that does not set TCP_NODELAY (Python's
# http.server) holds its next answer until the previous one is acknowledged (Nagle), and a delayed
# acknowledgement (up to 40 ms) would stall every pipelined window.
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class ProtocolError(Exception):
    """The receiver's answer is not HTTP/1.x (or its head is too long)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    retry_after: str | None = None


def _safe(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control character in a header value")
    return value


def request(
    path: str, host: str, body: bytes, headers: Sequence[tuple[str, str]], content_type: str
) -> bytes:
    """A POST request as bytes (Host, Content-Type, Content-Length and the given headers).
    ValueError when a header value holds a control character (CR, LF...)."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        *(f"{name}: {_safe(value)}" for name, value in headers),
        "",
        "",
    ]
    return "\r\n".join(lines).encode("latin-1") + body


class Connection:
    """One kept-alive connection to the receiver, opened on first use and after a close."""

    def __init__(
        self, host: str, port: int, *, timeout: float, context: ssl.SSLContext | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.context = context
        self.sock: socket.socket | None = None
        self.used = False  # the open connection already carried an answered request
        self._buf = b""
        self._pos = 0

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.context is not None:
            try:
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock
        self.used = False
        self._buf, self._pos = b"", 0
        return sock

    def connect(self) -> None:
        if self.sock is None:
            self._open()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.used = False
        self._buf, self._pos = b"", 0

    def exchange(self, requests: Sequence[bytes]) -> list[Answer]:
        """Send `requests` back to back and read their answers in order: the answers of the first
        k requests (k < len(requests) when the receiver closed the connection after k answers).
        Raises OSError (ssl.SSLError, timeouts included) or ProtocolError; the connection is then
        closed."""
        sock = self.sock or self._open()
        answers: list[Answer] = []
        try:
            sock.sendall(b"".join(requests))
            for _ in requests:
                try:
                    answer, close = self._answer()
                except EOFError:  # closed by the receiver before this answer
                    self.close()
                    break
                answers.append(answer)
                self.used = True
                if close:
                    self.close()
                    break
        except (BrokenPipeError, ConnectionResetError):  # closed while we wrote or read
            self.close()
        except BaseException:
            self.close()
            raise
        return answers

    # ---- reading answers ----------------------------------------------------------------------
    def _fill(self) -> None:
        assert self.sock is not None  # noqa: S101 - only called during an exchange
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        if _QUICKACK is not None:
            self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        self._buf = self._buf[self._pos :] + data
        self._pos = 0

    def _until(self, marker: bytes) -> bytes:
        while True:
            end = self._buf.find(marker, self._pos)
            if end >= 0:
                out = self._buf[self._pos : end]
                self._pos = end + len(marker)
                return out
            if len(self._buf) - self._pos > _MAX_HEAD:
                raise ProtocolError("answer head too long")
            self._fill()

    def _skip(self, n: int) -> None:
        while len(self._buf) - self._pos < n:
            self._fill()
        self._pos += n

    def _skip_chunked(self) -> None:
        while True:
            line = self._until(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ProtocolError("bad chunk size") from None
            if size == 0:
                while self._until(b"\r\n"):  # trailers, up to the empty line
                    pass
                return
            self._skip(size + 2)

    def _skip_to_end(self) -> None:
        try:
            while True:
                self._pos = len(self._buf)
                self._fill()
        except EOFError:
            return

    def _answer(self) -> tuple[Answer, bool]:
        """The next final answer (interim 1xx ones skipped), and whether the connection closes."""
        while True:
            head = self._until(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            parts = lines[0].split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise ProtocolError("not an HTTP/1.x answer")
            status = int(parts[1])
            fields: dict[bytes, bytes] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(b":")
                if not sep:
                    raise ProtocolError("bad header line")
                fields[name.strip().lower()] = value.strip()
            if 100 <= status < 200:
                continue
            connection = fields.get(b"connection", b"").lower()
            close = connection == b"close" or (parts[0] == b"HTTP/1.0" and connection != b"keep-alive")
            if status in (204, 304):
                pass
            elif b"chunked" in fields.get(b"transfer-encoding", b"").lower():
                self._skip_chunked()
            elif b"content-length" in fields:
                length = fields[b"content-length"]
                if not length.isdigit():
                    raise ProtocolError("bad Content-Length")
                self._skip(int(length))
            else:  # the body runs to the end of the connection
                self._skip_to_end()
                close = True
            retry_after = fields.get(b"retry-after")
            return Answer(status, retry_after.decode("latin-1") if retry_after else None), close
