"""`ClientSecurity`: how one Kafka client authenticates (protocol, SASL user and password, CA,
client certificate), read from a 0600 client file or from the GATEWAY_KAFKA_* settings, and turned
into the keyword arguments of kafka-python, aiokafka and faust. Pure, except file reads."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from gateway.errors import ConfigError

__all__ = ["ClientSecurity", "read_client_file"]


class ClientSecurity(BaseModel):
    """Security of one client. `where` names the setting or file it came from, for error messages."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    security_protocol: Literal["SASL_SSL", "SSL", "SASL_PLAINTEXT", "PLAINTEXT"] = "SASL_SSL"
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def principal(self) -> str | None:
        return self.sasl_username if self.uses_sasl else None

    def problems(self, names: dict[str, str]) -> list[str]:
        """What makes these settings unusable, each naming its setting (`names`: field -> setting
        name) and never a value."""
        out: list[str] = []
        if self.uses_sasl:
            if not self.sasl_username:
                out.append(f"{names['sasl_username']} is required with {self.security_protocol}")
            if self.sasl_password is None or not self.sasl_password.get_secret_value():
                out.append(f"{names['sasl_password']} is required with {self.security_protocol}")
        if self.uses_tls:
            for fld in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                path = getattr(self, fld)
                if path is not None and not Path(path).is_file():
                    out.append(f"{names[fld]}: no readable file at {path}")
            if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
                out.append(f"{names['ssl_certfile']} and {names['ssl_keyfile']} go together")
            if self.security_protocol == "SSL" and self.ssl_certfile is None:
                out.append(
                    f"{names['ssl_certfile']} is required with SSL (mutual TLS authenticates the client)"
                )
        return out

    def kafka_python(self) -> dict[str, Any]:
        """kafka-python keyword arguments (without bootstrap_servers)."""
        out: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.uses_tls:
            out["ssl_check_hostname"] = True
            if self.ssl_cafile is not None:
                out["ssl_cafile"] = str(self.ssl_cafile)
            if self.ssl_certfile is not None:
                out["ssl_certfile"] = str(self.ssl_certfile)
                out["ssl_keyfile"] = str(self.ssl_keyfile)
        if self.uses_sasl:
            out["sasl_mechanism"] = self.sasl_mechanism or "SCRAM-SHA-512"
            out["sasl_plain_username"] = self.sasl_username
            out["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        return out

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of aiokafka / faust clients (hostname verification on), None without TLS."""
        if not self.uses_tls:
            return None
        ctx = ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        if self.ssl_certfile is not None:
            ctx.load_cert_chain(str(self.ssl_certfile), str(self.ssl_keyfile))
        return ctx

    def aiokafka(self) -> dict[str, Any]:
        """aiokafka keyword arguments (without bootstrap_servers)."""
        out: dict[str, Any] = {"security_protocol": self.security_protocol}
        ctx = self.ssl_context()
        if ctx is not None:
            out["ssl_context"] = ctx
        if self.uses_sasl:
            out["sasl_mechanism"] = self.sasl_mechanism or "SCRAM-SHA-512"
            out["sasl_plain_username"] = self.sasl_username
            out["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        return out

    def faust_credentials(self) -> Any:
        """faust `broker_credentials` (None for PLAINTEXT)."""
        import faust  # noqa: PLC0415 - heavy import, only for the worker

        if self.uses_sasl:
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password.get_secret_value() if self.sasl_password else None,
                ssl_context=self.ssl_context(),
                mechanism=self.sasl_mechanism or "SCRAM-SHA-512",
            )
        ctx = self.ssl_context()
        return None if ctx is None else faust.SSLCredentials(ctx)

    def to_file_dict(self) -> dict[str, Any]:
        """The JSON object of a client file (the secret in clear: the file is 0600)."""
        out: dict[str, Any] = {"security_protocol": self.security_protocol}
        for name in ("sasl_mechanism", "sasl_username", "ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value)
        if self.sasl_password is not None:
            out["sasl_password"] = self.sasl_password.get_secret_value()
        return out


def read_client_file(path: Path, setting: str) -> ClientSecurity:
    """Load a client file; ConfigError naming `setting` and the path (never a value) if unusable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read the client file {path} ({type(exc).__name__})") from exc
    except ValueError as exc:
        raise ConfigError(f"{setting}: the client file {path} is not JSON") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{setting}: the client file {path} is not a JSON object")
    try:
        sec = ClientSecurity.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(sorted({".".join(str(p) for p in e["loc"]) or "$" for e in exc.errors()}))
        raise ConfigError(f"{setting}: the client file {path} has bad fields: {fields}") from exc
    names = {f: f"{setting} ({path}): {f}" for f in ClientSecurity.model_fields}
    problems = sec.problems(names)
    if problems:
        raise ConfigError("; ".join(problems))
    return sec
