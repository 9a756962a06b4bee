"""pytest plugin of the gateway: the `kafka_bootstrap` fixture (a real broker for the session).

Resolution order: KAFKA_BOOTSTRAP_SERVERS if set (its security from the GATEWAY_KAFKA_* environment);
else testcontainers' Kafka where a Docker engine answers; else a local single-node KRaft broker
started from the Maven-fetched jars (installed first when absent) on free ports, in a fresh
temporary data directory, stopped at the end of the session (also on Ctrl-C or failure; a watchdog
stops it if the session is killed outright).

Every broker the kit starts is secured like production (SASL/SCRAM-SHA-512 over TLS, ACLs enforced,
no auto-created topics), with one session-wide security directory (CA, broker key, admin client
file, all 0600): the fixture keeps returning the bootstrap string, and `gateway.testing.kafka`'s
helpers reach it as the admin principal. For the session, GATEWAY_KAFKA_CLIENT_FILE names the admin
client file, so that `GatewaySettings(bootstrap_servers=kafka_bootstrap)` and worker subprocesses
(`worker_env`) connect too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from gateway.broker import LocalBroker
    from gateway.registry_local import LocalRegistry

__all__ = [
    "kafka_bootstrap",
    "kafka_security_dir",
    "own_broker",
    "own_registry",
    "schema_registry_url",
    "unique_topic",
]


def pytest_configure(config: pytest.Config) -> None:
    # kafka-python 3.0 loads its protocol schemas with importlib.resources.read_text (deprecated).
    config.addinivalue_line("filterwarnings", "ignore:(read|open)_text is deprecated:DeprecationWarning")


def _docker_answers() -> bool:
    if not (os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()):
        return False
    try:
        import docker  # noqa: PLC0415 - testcontainers' dependency, optional

        client = docker.from_env(timeout=3)  # type: ignore[attr-defined]  # docker ships no hints
        client.ping()
    except Exception:  # noqa: BLE001 - any failure means "no usable engine"
        return False
    return True


@pytest.fixture(scope="session")
def kafka_security_dir() -> Iterator[Path | None]:
    """The session's broker security directory (None with an external cluster): CA, broker key,
    admin client file. GATEWAY_KAFKA_CLIENT_FILE points at its admin client file for the session."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield None
        return
    from gateway.broker.tls import BrokerSecurity  # noqa: PLC0415

    where = Path(tempfile.mkdtemp(prefix="gp-kafka-security-"))
    sec = BrokerSecurity(where / "security").ensure()
    before = os.environ.get("GATEWAY_KAFKA_CLIENT_FILE")
    os.environ["GATEWAY_KAFKA_CLIENT_FILE"] = str(sec.admin_client_file)
    try:
        yield sec.dir
    finally:
        if before is None:
            os.environ.pop("GATEWAY_KAFKA_CLIENT_FILE", None)
        else:
            os.environ["GATEWAY_KAFKA_CLIENT_FILE"] = before
        shutil.rmtree(where, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_security_dir: Path | None) -> Iterator[str]:
    """host:port of a real, secured Kafka broker, started for the session when none is given."""
    from gateway.testing.kafka import register_broker  # noqa: PLC0415

    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external or kafka_security_dir is None:
        yield str(external)
        return
    from gateway.broker.tls import BrokerSecurity  # noqa: PLC0415

    sec = BrokerSecurity(kafka_security_dir)
    if _docker_answers():
        from gateway.testing.container import SecuredKafkaContainer  # noqa: PLC0415

        with SecuredKafkaContainer(sec) as container:
            bootstrap = container.get_bootstrap_server()
            register_broker(bootstrap, sec.admin_client_file)
            yield bootstrap
        return
    from gateway.broker import LocalBroker, install_kafka  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415

    settings = GatewaySettings()
    libs = install_kafka(settings.state_dir, settings.kafka_version)
    data = Path(tempfile.mkdtemp(prefix="gp-kafka-test-"))
    broker = LocalBroker(libs, data, watch_parent=True, security_dir=sec.dir)
    try:
        bootstrap = broker.start()
        register_broker(bootstrap, sec.admin_client_file)
        yield bootstrap
    finally:
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def unique_topic() -> str:
    """A topic name no other test uses (uuid based)."""
    return f"test.{uuid.uuid4().hex[:12]}"


@pytest.fixture
def own_broker(tmp_path: Path, kafka_security_dir: Path | None) -> Iterator[LocalBroker]:
    """A private, secured local broker the test may stop and restart (outage tests), with the
    session's security directory (the same admin client file); skipped when KAFKA_BOOTSTRAP_SERVERS
    names a shared cluster."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or kafka_security_dir is None:
        pytest.skip("needs a local broker it may stop; KAFKA_BOOTSTRAP_SERVERS names a shared one")
    from gateway.broker import LocalBroker, install_kafka  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415
    from gateway.testing.kafka import register_broker  # noqa: PLC0415

    settings = GatewaySettings()
    broker = LocalBroker(
        install_kafka(settings.state_dir, settings.kafka_version),
        tmp_path / "k",
        watch_parent=True,
        security_dir=kafka_security_dir,
    )
    broker.start()
    register_broker(broker.bootstrap, broker.security.admin_client_file)
    try:
        yield broker
    finally:
        broker.stop()
        register_broker(broker.bootstrap, None)
        shutil.rmtree(tmp_path / "k", ignore_errors=True)


def _local_registry(data: Path) -> LocalRegistry:
    from gateway.registry_local import LocalRegistry, install_registry  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415

    return LocalRegistry(install_registry(GatewaySettings().state_dir), data, watch_parent=True)


@pytest.fixture(scope="session")
def schema_registry_url() -> Iterator[str]:
    """Base URL of a real Confluent-compatible schema registry (…/apis/ccompat/v7): the one named
    by GATEWAY_TEST_SCHEMA_REGISTRY_URL, else a local Apicurio Registry started once for the session
    (installed first when absent) in a fresh temporary data directory, stopped at the end."""
    external = os.environ.get("GATEWAY_TEST_SCHEMA_REGISTRY_URL")
    if external:
        yield external.rstrip("/")
        return
    data = Path(tempfile.mkdtemp(prefix="gp-registry-test-"))
    registry = _local_registry(data)
    try:
        yield registry.start()
    finally:
        registry.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A private local schema registry the test may stop and restart (outage tests)."""
    registry = _local_registry(tmp_path / "registry")
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()
