"""Connect once, before a command or worker starts, and say clearly why a connection is refused:
no broker, a broker certificate the client does not trust (foreign, expired, wrong host), a client
certificate the broker refuses, wrong or revoked SASL credentials, a PLAINTEXT client on a secured
listener. kafka-python itself retries such failures until a bare timeout; this names the principal
and the reason, never the secret."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Mapping
from typing import Any

from gateway.errors import ConfigError, RetriableError

__all__ = ["preflight"]

_KAFKA_NET_LOGGERS = ("kafka.net.manager", "kafka.net.transport", "kafka.net.connection", "kafka.conn")


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.texts.append(record.getMessage())
        except Exception:  # noqa: BLE001 - a log record that cannot format is ignored
            return


def preflight(kwargs: Mapping[str, Any], *, timeout_s: float = 10.0) -> None:
    """Raise ConfigError (refused: fix the settings) or RetriableError (no broker yet) unless a client
    with these kafka-python `kwargs` can connect and authenticate."""
    bootstrap = str(kwargs["bootstrap_servers"])
    protocol = str(kwargs.get("security_protocol", "PLAINTEXT"))
    principal = kwargs.get("sasl_plain_username") or (
        f"certificate {kwargs['ssl_certfile']}" if kwargs.get("ssl_certfile") else "anonymous"
    )
    who = f"principal {principal!r}" if kwargs.get("sasl_plain_username") else str(principal)
    host, _, port = bootstrap.split(",", maxsplit=1)[0].strip().rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout_s)
    except OSError as exc:
        raise RetriableError(f"no Kafka broker answers at {bootstrap} ({type(exc).__name__})") from exc
    try:
        if protocol in ("SSL", "SASL_SSL"):
            _tls_check(sock, host, bootstrap, kwargs, timeout_s)
    finally:
        sock.close()
    _kafka_check(kwargs, bootstrap, protocol, who, timeout_s)


def _tls_check(
    sock: socket.socket, host: str, bootstrap: str, kw: Mapping[str, Any], timeout_s: float
) -> None:
    try:
        ctx = ssl.create_default_context(cafile=kw.get("ssl_cafile"))
        if kw.get("ssl_certfile"):
            ctx.load_cert_chain(kw["ssl_certfile"], kw.get("ssl_keyfile"))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"TLS settings for {bootstrap} unusable: the CA file or the client certificate/key cannot be"
            f" loaded ({type(exc).__name__}; GATEWAY_KAFKA_SSL_CAFILE / _CERTFILE / _KEYFILE)"
        ) from exc
    sock.settimeout(timeout_s)
    try:
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            tls.do_handshake()
    except ssl.SSLCertVerificationError as exc:
        raise ConfigError(
            f"TLS to {bootstrap}: the broker's certificate is refused ({exc.verify_message}): it is not"
            " signed by the CA of GATEWAY_KAFKA_SSL_CAFILE, has expired, or does not name this host"
        ) from exc
    except ssl.SSLError as exc:
        raise ConfigError(
            f"TLS to {bootstrap} failed ({exc.reason or type(exc).__name__}): the broker does not speak"
            " TLS on this port, or refused the client certificate"
        ) from exc
    except OSError as exc:
        raise RetriableError(f"TLS to {bootstrap} interrupted ({type(exc).__name__})") from exc


def _kafka_check(kw: Mapping[str, Any], bootstrap: str, protocol: str, who: str, timeout_s: float) -> None:
    from kafka import KafkaAdminClient  # noqa: PLC0415 - heavy import, only at the edge

    capture = _Capture()
    loggers = [logging.getLogger(n) for n in _KAFKA_NET_LOGGERS]
    saved = [(lg, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(capture)
        lg.propagate = False  # the retries are reported once, below, not as a screen of warnings
    try:
        client = KafkaAdminClient(
            **kw,
            client_id="gp-preflight",
            bootstrap_timeout_ms=int(timeout_s * 1000),
            request_timeout_ms=int(timeout_s * 1000),
        )
        client.close()
    except Exception as exc:
        seen = " ".join(capture.texts)
        if "SaslAuthenticationFailed" in seen or "AuthenticationFailed" in seen:
            raise ConfigError(
                f"Kafka at {bootstrap} refused {who}: authentication failed (wrong, rotated or revoked"
                " credentials; `gateway actors credentials ID` issues new ones)"
            ) from exc
        if "UnsupportedSaslMechanism" in seen:
            raise ConfigError(
                f"Kafka at {bootstrap} refused {who}: SASL mechanism not enabled on the broker"
                " (GATEWAY_KAFKA_SASL_MECHANISM)"
            ) from exc
        if protocol == "SASL_SSL" and seen.count("socket disconnected") >= 2 and "ECONNREFUSED" not in seen:
            # the TLS handshake succeeded (checked above) and the broker then closes every
            # connection: SCRAM refused (kafka-python often sees the close before the error reply)
            raise ConfigError(
                f"Kafka at {bootstrap} refused {who}: the broker closes its connections during"
                " authentication (wrong, rotated or revoked credentials, or a SASL mechanism the listener"
                " does not enable)"
            ) from exc
        if protocol in ("PLAINTEXT", "SASL_PLAINTEXT") and "disconnected" in seen:
            raise ConfigError(
                f"Kafka at {bootstrap} closed a {protocol} connection: the listener needs TLS and"
                " authentication (GATEWAY_KAFKA_SECURITY_PROTOCOL, GATEWAY_KAFKA_SASL_*)"
            ) from exc
        raise RetriableError(f"Kafka at {bootstrap} does not answer {who} ({type(exc).__name__})") from exc
    finally:
        for lg, propagate in saved:
            lg.removeHandler(capture)
            lg.propagate = propagate
