"""A single-node KRaft Kafka broker on loopback, run from the cached jars (see install.py).

`LocalBroker` formats a data directory, starts `kafka.Kafka` as a child process in its own session,
waits until the broker answers a metadata request, and stops it cleanly (SIGTERM, then SIGKILL):
the process handling is gateway.jvm_process's, shared with the local schema registry.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.broker.tls import (
    ADMIN_PRINCIPAL,
    BROKER_PRINCIPAL,
    SCRAM_MECHANISM,
    BrokerSecurity,
    write_private,
)
from gateway.errors import ConfigError
from gateway.jvm_process import JvmProcess, free_port, pid_alive, stop_pid

__all__ = ["LocalBroker", "broker_answers", "free_port", "pid_alive", "stop_pid"]

_LOG4J = """log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=WARN
log4j.logger.org.apache.kafka=WARN
"""


def broker_answers(bootstrap: str, timeout: float = 3.0, client: dict[str, Any] | None = None) -> bool:
    """True when a broker at `bootstrap` answers a metadata request within `timeout` seconds
    (`client`: kafka-python security kwargs; a secured broker refuses a bare client)."""
    host, _, port = bootstrap.split(",", maxsplit=1)[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except OSError:
        return False
    try:
        from kafka import KafkaConsumer  # noqa: PLC0415 - slow import, only when probing

        consumer = KafkaConsumer(
            **{**(client or {}), "bootstrap_servers": bootstrap},
            enable_auto_commit=False,
            request_timeout_ms=int(timeout * 1000) + 1000,
            connections_max_idle_ms=int(timeout * 1000) + 2000,
        )
    except Exception:  # noqa: BLE001 - any client failure means "not answering"
        return False
    try:
        consumer.topics()
    except Exception:  # noqa: BLE001
        return False
    finally:
        consumer.close()
    return True


@dataclass
class LocalBroker(JvmProcess):
    """One KRaft broker+controller. Ports 0 mean "pick free ports at start".

    Secured by default (`secure=True`): one SASL_SSL listener (SCRAM-SHA-512 over TLS) for clients
    and the inter-broker traffic, a mutual-TLS controller listener, the StandardAuthorizer with
    `allow.everyone.if.no.acl.found=false`, super users `broker` and `gateway-admin`, no topic
    auto-creation. The security material lives in `security_dir` (default `<data_dir>/security`),
    created on first start; the admin principal's credential is bootstrapped at format time.
    `secure=False` is the development flag's plaintext broker (benchmarks compare both)."""

    what = "the Kafka broker"

    libs: Path
    data_dir: Path
    port: int = 0
    controller_port: int = 0
    host: str = "127.0.0.1"
    heap: str = "512m"
    watch_parent: bool = False  # kill the broker if this process dies without stopping it
    secure: bool = True
    security_dir: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _watchdog: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def security(self) -> BrokerSecurity:
        return BrokerSecurity(self.security_dir or self.data_dir / "security")

    @property
    def admin_client_file(self) -> Path | None:
        """The admin principal's client file (0600), None for a plaintext broker."""
        return self.security.admin_client_file if self.secure else None

    def admin_kwargs(self) -> dict[str, Any]:
        """kafka-python kwargs of the admin principal (bootstrap included)."""
        if not self.secure:
            return {"bootstrap_servers": self.bootstrap}
        sec = self.security
        return {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": SCRAM_MECHANISM,
            "sasl_plain_username": ADMIN_PRINCIPAL,
            "sasl_plain_password": sec.admin_secret(),
            "ssl_cafile": str(sec.ca_cert),
        }

    def _common_props(self) -> dict[str, str]:
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "24",
            "log.cleaner.backoff.ms": "5000",
        }

    def _plaintext_props(self) -> dict[str, str]:
        return {
            **self._common_props(),
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "auto.create.topics.enable": "false",
        }

    def _secure_props(self) -> dict[str, str]:
        sec = self.security
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required"
            f' username="{BROKER_PRINCIPAL}" password="{sec.broker_secret()}";'
        )
        return {
            **self._common_props(),
            "listeners": f"BROKER://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"BROKER://{self.host}:{self.port}",
            "inter.broker.listener.name": "BROKER",
            "listener.security.protocol.map": "BROKER:SASL_SSL,CONTROLLER:SSL",
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
            "listener.name.broker.scram-sha-512.sasl.jaas.config": jaas,
            # the controller listener: mutual TLS, only the broker's own certificate (CN=broker)
            "listener.name.controller.ssl.client.auth": "required",
            "ssl.principal.mapping.rules": "RULE:^CN=([A-Za-z0-9._-]+)$/$1/,DEFAULT",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(sec.server_pem),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(sec.ca_cert),
            "ssl.endpoint.identification.algorithm": "https",
            "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{BROKER_PRINCIPAL};User:{ADMIN_PRINCIPAL}",
            "auto.create.topics.enable": "false",
        }

    def _write_config(self, props: dict[str, str]) -> Path:
        path = self.data_dir / "server.properties"
        write_private(path, "".join(f"{k}={v}\n" for k, v in props.items()))  # holds the broker's secret
        (self.data_dir / "log4j.properties").write_text(_LOG4J, encoding="utf-8")
        return path

    def _java(self) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise ConfigError("`java` (17 or later) is needed to run the local Kafka broker")
        return [java, "-cp", str(self.libs / "*")]

    @property
    def _secured_marker(self) -> Path:
        return self.data_dir / "secured"

    def start(self, *, wait: float = 60.0) -> str:
        """Format (first time) and start the broker; return its bootstrap address once it answers.

        A data directory formatted by a plaintext version of the gateway is migrated first: started
        once in plaintext on loopback, given the SCRAM credentials of `broker` and `gateway-admin`,
        stopped, then started secured (the marker file `secured` records it)."""
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            raise ConfigError(f"no Kafka jars in {self.libs}: run `gateway broker install`")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.host)
        self.controller_port = self.controller_port or free_port(self.host)
        formatted = (self.data_dir / "logs" / "meta.properties").exists()
        if not self.secure:
            if formatted and self._secured_marker.exists():
                raise ConfigError(
                    f"the Kafka data dir {self.data_dir} belongs to a secured broker: it is not started"
                    " in plaintext (remove GATEWAY_KAFKA_ALLOW_PLAINTEXT, or use another state dir)"
                )
            config = self._write_config(self._plaintext_props())
            if not formatted:
                self._format(config, [])
            return self._launch(config, wait)
        self.security.ensure()
        if formatted and not self._secured_marker.exists():
            self._migrate(wait)
        config = self._write_config(self._secure_props())
        if not formatted:
            self._format(
                config,
                [
                    _scram_arg(BROKER_PRINCIPAL, self.security.broker_secret()),
                    _scram_arg(ADMIN_PRINCIPAL, self.security.admin_secret()),
                ],
            )
            self._secured_marker.write_text("SASL_SSL\n", encoding="utf-8")
        return self._launch(config, wait)

    def _format(self, config: Path, scram: list[str]) -> None:
        args: list[str] = []
        for item in scram:
            args += ["--add-scram", item]
        fmt = subprocess.run(  # noqa: S603
            [
                *self._java(),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                _cluster_id(),
                "-c",
                str(config),
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "KAFKA_HEAP_OPTS": "-Xmx256m"},
        )
        if fmt.returncode != 0:
            detail = fmt.stderr.strip()[-800:]
            raise ConfigError(f"cannot format the Kafka data dir {self.data_dir}: {detail}")

    def _migrate(self, wait: float) -> None:
        """Give a plaintext-formatted data dir the SCRAM credentials a secured start needs."""
        from kafka import KafkaAdminClient  # noqa: PLC0415
        from kafka.admin import UserScramCredentialUpsertion  # noqa: PLC0415

        config = self._write_config(self._plaintext_props())
        self._launch(config, wait)
        try:
            client = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="gp-migrate")
            try:
                result = client.alter_user_scram_credentials(
                    [
                        UserScramCredentialUpsertion(
                            BROKER_PRINCIPAL, SCRAM_MECHANISM, self.security.broker_secret()
                        ),
                        UserScramCredentialUpsertion(
                            ADMIN_PRINCIPAL, SCRAM_MECHANISM, self.security.admin_secret()
                        ),
                    ]
                )
            finally:
                client.close()
            failed = {user: err for user, err in result.items() if err}
            if failed:
                raise ConfigError(f"cannot migrate the plaintext Kafka data dir {self.data_dir}: {failed}")
        finally:
            self.stop()
        self._secured_marker.write_text("SASL_SSL (migrated from PLAINTEXT)\n", encoding="utf-8")

    def _launch(self, config: Path, wait: float) -> str:
        cmd = [
            *self._java()[:1],
            f"-Xmx{self.heap}",
            "-XX:+UseSerialGC",
            # full tiered JIT: C2 compiles the AES-GCM intrinsics TLS needs (C1 only halved the
            # secured broker's throughput in bench_ingest, for a start-up gain under a second)
            f"-Dlog4j.configuration=file:{self.data_dir / 'log4j.properties'}",
            f"-Dkafka.logs.dir={self.data_dir}",
            *self._java()[1:],
            "kafka.Kafka",
            str(config),
        ]
        self._spawn(cmd)
        (self.data_dir / "bootstrap").write_text(self.bootstrap, encoding="utf-8")
        self.wait_ready(wait)
        return self.bootstrap

    def wait_ready(self, timeout: float) -> None:
        def answers() -> bool:
            return broker_answers(self.bootstrap, timeout=2.0, client=self._probe_kwargs())

        self._wait_until(answers, self.bootstrap, timeout, 0.2)

    def _probe_kwargs(self) -> dict[str, Any] | None:
        if not self.secure or not (self.data_dir / "secured").exists():
            return None
        return {k: v for k, v in self.admin_kwargs().items() if k != "bootstrap_servers"}


def _scram_arg(user: str, password: str, iterations: int = 4096) -> str:
    """A `kafka-storage format --add-scram` value carrying the salted password (PBKDF2, RFC 5802),
    so that the password itself never appears on a command line."""
    import base64  # noqa: PLC0415
    import hashlib  # noqa: PLC0415

    salt = os.urandom(24)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return (
        f"{SCRAM_MECHANISM}=[name={user},iterations={iterations},"
        f'salt="{b64(salt).decode()}",saltedpassword="{b64(salted).decode()}"]'
    )


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (like StorageTool random-uuid).
    Like Kafka's Uuid.randomUuid, never one starting with "-": StorageTool would read it as an option."""
    import base64  # noqa: PLC0415

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
