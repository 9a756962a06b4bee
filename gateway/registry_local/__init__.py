"""The local schema registry: Apicurio Registry 3 from Maven Central, run on loopback.

It speaks the Confluent Schema Registry API under ``/apis/ccompat/v7``; the gateway and every
recipient's tools use that API only, so production may point ``GATEWAY_SCHEMA_REGISTRY_URL`` at any
Confluent-compatible registry instead.
"""

from __future__ import annotations

from gateway.registry_local.install import (
    REGISTRY_VERSION,
    find_java,
    install_registry,
    registry_home,
    registry_installed,
)
from gateway.registry_local.local import CCOMPAT_PATH, LocalRegistry, registry_answers

__all__ = [
    "CCOMPAT_PATH",
    "REGISTRY_VERSION",
    "LocalRegistry",
    "find_java",
    "install_registry",
    "registry_answers",
    "registry_home",
    "registry_installed",
]
