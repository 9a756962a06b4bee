"""A secured Kafka broker in Docker for the test kit (testcontainers), configured like the local
broker: SASL/SCRAM-SHA-512 over TLS, mutual-TLS controller listener, StandardAuthorizer, no
auto-created topics. It runs docker/kafka-secured.sh (the compose broker's entry point) in the
apache/kafka image, with the session's security directory mounted read-only and the container run
as the test runner's user (the files are 0600). The advertised listener names the mapped port,
known only once the container runs: it is written into the container, which waits for it.
The broker certificate names localhost and 127.0.0.1: a Docker engine on another host (DOCKER_HOST
tcp://...) needs a certificate with that host's name (BrokerSecurity(dir, hosts=(...)))."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from testcontainers.core.container import DockerContainer

from gateway.broker.tls import BrokerSecurity, write_private

__all__ = ["SecuredKafkaContainer"]

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "kafka-secured.sh"
_PORT = 9092
_ADVERTISED = "/tmp/gp-advertised"  # noqa: S108 - a path inside the container


class SecuredKafkaContainer(DockerContainer):
    def __init__(self, security: BrokerSecurity, image: str = "apache/kafka:3.9.1", **kwargs: Any) -> None:
        super().__init__(image, user=f"{os.getuid()}:{os.getgid()}", **kwargs)
        security.ensure()
        write_private(security.dir / "admin.secret", security.admin_secret())
        self.security = security
        self.with_exposed_ports(_PORT)
        self.with_volume_mapping(str(security.dir), "/kafka-security", "ro")
        self.with_volume_mapping(str(SCRIPT), "/kafka-secured.sh", "ro")
        self.with_env("GP_KAFKA_DATA", "/tmp/kafka/data")  # noqa: S108 - inside the container
        self.with_env("GP_ADVERTISED_FILE", _ADVERTISED)
        self.with_env("LOG_DIR", "/tmp/kafka/logs")  # noqa: S108 - the image's own is not ours to write
        self.with_kwargs(entrypoint=["/bin/sh", "/kafka-secured.sh"])

    def get_bootstrap_server(self) -> str:
        return f"{self.get_container_host_ip()}:{self.get_exposed_port(_PORT)}"

    def start(self) -> SecuredKafkaContainer:
        super().start()
        advertised = f"BROKER://localhost:19093,HOST://{self.get_bootstrap_server()}"
        self.exec(
            [
                "/bin/sh",
                "-c",
                f"echo '{advertised}' > {_ADVERTISED}.tmp && mv {_ADVERTISED}.tmp {_ADVERTISED}",
            ]
        )
        self._wait_ready(120.0)
        return self

    def _wait_ready(self, timeout: float) -> None:
        from gateway.security.client import read_client_file  # noqa: PLC0415
        from gateway.security.preflight import preflight  # noqa: PLC0415

        kwargs = {
            "bootstrap_servers": self.get_bootstrap_server(),
            **read_client_file(self.security.admin_client_file, "test broker").kafka_python(),
        }
        deadline = time.monotonic() + timeout
        while True:
            try:
                preflight(kwargs, timeout_s=5)
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)
            else:
                return
