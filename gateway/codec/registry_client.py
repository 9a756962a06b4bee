"""A small client of the Confluent Schema Registry REST API (what Apicurio serves under
``/apis/ccompat/v7``, and Confluent's own registry at its root).

Only what the gateway needs: look a schema up under a subject, check its compatibility with the
subject's latest version, set a subject's compatibility level, register, and fetch a schema by id.
Errors are the gateway's: unreachable or 5xx -> RetriableError; wrong URL, credentials refused ->
ConfigError; a schema the registry refuses (incompatible, invalid) -> SchemaRefused (FatalError)
carrying the registry's own reason. Messages name the URL and the HTTP status, never a payload.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pydantic import SecretStr

from gateway.errors import ConfigError, FatalError, RetriableError

__all__ = ["NO_DETAIL", "RegistryClient", "SchemaRefused"]

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
NO_DETAIL = "not compatible with the latest version"
SUBJECT_NOT_FOUND = 40401
SCHEMA_NOT_FOUND = 40403


class SchemaRefused(FatalError):
    """The registry refused a schema under a subject (its reason is in the message)."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(f"the schema registry refused the schema of subject {subject}: {reason}")
        self.subject = subject
        self.reason = reason


class _NotFound(Exception):
    def __init__(self, code: int | None) -> None:
        super().__init__(code)
        self.code = code


class RegistryClient:
    """Blocking HTTP client of one registry (`url`: the base URL of the Confluent-compatible API)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        user: str | None = None,
        password: SecretStr | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                "GATEWAY_SCHEMA_REGISTRY_URL must be the http(s) base URL of a Confluent-compatible API "
                "(e.g. http://127.0.0.1:8081/apis/ccompat/v7)"
            )
        self.timeout = timeout
        self._auth: str | None = None
        if user is not None:
            secret = password.get_secret_value() if password is not None else ""
            self._auth = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()

    # ---- requests ---------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method)  # noqa: S310
        req.add_header("Accept", f"{_CONTENT_TYPE}, application/json")
        if data is not None:
            req.add_header("Content-Type", _CONTENT_TYPE)
        if self._auth:
            req.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return self._http_error(exc)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RetriableError(f"schema registry unreachable at {self.url}: {reason}") from exc
        except ValueError as exc:
            raise ConfigError(
                f"the schema registry at {self.url} answered something that is not JSON: is it the base "
                "URL of a Confluent-compatible API (e.g. ending in /apis/ccompat/v7 for Apicurio)?"
            ) from exc

    def _http_error(self, exc: urllib.error.HTTPError) -> Any:
        try:
            payload = json.loads(exc.read() or b"{}")
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        code = payload.get("error_code")
        message = str(payload.get("message") or payload.get("detail") or exc.reason)[:500]
        if exc.code in (401, 403):
            raise ConfigError(
                f"the schema registry at {self.url} refused the credentials (HTTP {exc.code})"
            ) from exc
        if exc.code == 404 and code in (SUBJECT_NOT_FOUND, SCHEMA_NOT_FOUND, 40402, 40403):
            raise _NotFound(code) from exc
        if exc.code == 404:
            raise ConfigError(
                f"no Confluent-compatible schema registry API at {self.url} (HTTP 404): the URL must be "
                "the API's base, e.g. http://host:8080/apis/ccompat/v7 for Apicurio"
            ) from exc
        if exc.code in (409, 422):
            raise SchemaRefused("?", message) from exc
        if exc.code >= 500 or exc.code == 429:
            raise RetriableError(
                f"schema registry at {self.url} answered HTTP {exc.code}: {message}"
            ) from exc
        raise ConfigError(f"schema registry at {self.url} answered HTTP {exc.code}: {message}") from exc

    @staticmethod
    def _subject(subject: str) -> str:
        return urllib.parse.quote(subject, safe="")

    # ---- API --------------------------------------------------------------------------------------
    def ping(self) -> None:
        """Raise unless the registry answers (RetriableError down, ConfigError wrong URL/credentials)."""
        out = self._call("GET", "/subjects")
        if not isinstance(out, list):
            raise ConfigError(f"{self.url}/subjects is not a schema registry's subject list")

    def lookup(self, subject: str, schema: str) -> int | None:
        """The id of `schema` when it is already registered under `subject`, else None."""
        try:
            out = self._call("POST", f"/subjects/{self._subject(subject)}", {"schema": schema})
        except _NotFound:
            return None
        return int(out["id"])

    def incompatibilities(self, subject: str, schema: str) -> list[str]:
        """Why `schema` is not compatible with the latest version of `subject` (empty: compatible)."""
        try:
            out = self._call(
                "POST",
                f"/compatibility/subjects/{self._subject(subject)}/versions/latest?verbose=true",
                {"schema": schema},
            )
        except _NotFound:
            return []
        if out.get("is_compatible", False):
            return []
        return [str(m) for m in out.get("messages") or []] or [NO_DETAIL]

    def set_compatibility(self, subject: str, level: str = "BACKWARD") -> None:
        self._call("PUT", f"/config/{self._subject(subject)}", {"compatibility": level})

    def register(self, subject: str, schema: str) -> int:
        try:
            out = self._call("POST", f"/subjects/{self._subject(subject)}/versions", {"schema": schema})
        except SchemaRefused as exc:
            raise SchemaRefused(subject, exc.reason) from exc
        return int(out["id"])

    def schema(self, schema_id: int) -> str:
        """The schema text registered under the global id `schema_id`."""
        try:
            out = self._call("GET", f"/schemas/ids/{int(schema_id)}")
        except _NotFound as exc:
            raise KeyError(schema_id) from exc
        return str(out["schema"])
