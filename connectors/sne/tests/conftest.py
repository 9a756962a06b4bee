"""Fixtures of the SNE connector's tests: a simulator in a thread with its development PKI."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from connectors.sne.simulator.certs import ensure_certs
from connectors.sne.simulator.server import Faults, SimulatorServer, serve


@dataclass
class RunningSimulator:
    server: SimulatorServer
    certs: Path

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def faults(self) -> Faults:
        return self.server.faults


@pytest.fixture(scope="session")
def sne_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sne-certs")
    ensure_certs(d)
    return d


@pytest.fixture
def simulator(sne_certs: Path, tmp_path: Path) -> Iterator[RunningSimulator]:
    server = serve(0, sne_certs, tmp_path / "sim-state")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield RunningSimulator(server, sne_certs)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
