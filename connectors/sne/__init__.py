"""SNE connector: canonical records -> interfaceNuu files over SOAP 1.2 / MTOM with mutual TLS."""

from __future__ import annotations

__all__: list[str] = []
