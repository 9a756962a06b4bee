"""A local Apicurio Registry on loopback, with file-based H2 storage (ids survive restarts).

`LocalRegistry` starts ``quarkus-run.jar`` with a Java 21+ runtime as a child process in its own
session, both its HTTP and its management ports bound to the loopback address, its H2 database in
its data directory, waits until the Confluent-compatible API answers, and stops it (SIGTERM, then
SIGKILL).
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from gateway.errors import ConfigError
from gateway.jvm_process import JvmProcess, free_port
from gateway.registry_local.install import find_java

__all__ = ["CCOMPAT_PATH", "LocalRegistry", "registry_answers"]

CCOMPAT_PATH = "/apis/ccompat/v7"


def registry_answers(url: str, timeout: float = 3.0) -> bool:
    """True when a Confluent-compatible registry answers ``GET <url>/subjects`` with 200."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/subjects", timeout=timeout) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (OSError, ValueError, urllib.error.URLError):
        return False


@dataclass
class LocalRegistry(JvmProcess):
    """One Apicurio Registry. Ports 0 mean "pick free ports at start"."""

    what = "the schema registry"

    app: Path
    data_dir: Path
    port: int = 0
    management_port: int = 0
    host: str = "127.0.0.1"
    heap: str = "384m"
    watch_parent: bool = False  # stop the registry if this process dies without stopping it
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _watchdog: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """Base URL of the Confluent-compatible API (what GATEWAY_SCHEMA_REGISTRY_URL takes)."""
        return f"http://{self.host}:{self.port}{CCOMPAT_PATH}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "registry.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "registry.pid"

    def command(self) -> list[str]:
        db = self.data_dir / "h2" / "registry"
        props = {
            "quarkus.http.host": self.host,
            "quarkus.http.port": str(self.port),
            "quarkus.management.host": self.host,
            "quarkus.management.port": str(self.management_port),
            "apicurio.datasource.url": f"jdbc:h2:file:{db}",
            "apicurio.datasource.jdbc.initial-size": "2",
            "apicurio.datasource.jdbc.min-size": "2",
            "apicurio.datasource.jdbc.max-size": "20",
            "apicurio.storage.snapshot.location": str(self.data_dir / "snapshots"),
            'quarkus.log.category."apicurio-registry.access".level': "WARN",
            "quarkus.otel.enabled": "false",
        }
        return [
            str(find_java()),
            f"-Xmx{self.heap}",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            f"-Djava.io.tmpdir={self.data_dir / 'tmp'}",
            *(f"-D{k}={v}" for k, v in props.items()),
            "-jar",
            str(self.app / "quarkus-run.jar"),
        ]

    def start(self, *, wait: float = 120.0) -> str:
        """Start the registry; return the base URL of its Confluent API once it answers."""
        if not (self.app / "quarkus-run.jar").exists():
            raise ConfigError(f"no schema registry in {self.app}: run `gateway registry install`")
        for sub in ("h2", "snapshots", "tmp"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_dir.chmod(0o700)
        self.port = self.port or free_port(self.host)
        self.management_port = self.management_port or free_port(self.host)
        self._spawn(self.command())
        (self.data_dir / "url").write_text(self.url, encoding="utf-8")
        self.wait_ready(wait)
        return self.url

    def wait_ready(self, timeout: float) -> None:
        self._wait_until(lambda: registry_answers(self.url, timeout=2.0), self.url, timeout, 0.3)
