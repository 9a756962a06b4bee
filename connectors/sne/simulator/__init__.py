"""SNE simulator: HTTPS with client certificates, strict MTOM parsing, state kept in sqlite."""

from __future__ import annotations

from connectors.sne.simulator.certs import CertPaths, ensure_certs
from connectors.sne.simulator.server import SimulatorServer, serve

__all__ = ["CertPaths", "SimulatorServer", "ensure_certs", "serve"]
