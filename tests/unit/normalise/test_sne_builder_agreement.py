"""The SNE connector's XML builder and the sne-xml normaliser agree on the interfaceNuu vocabulary:
normalise a sample, build the SNE file back from the canonical record, normalise it again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from gateway.normalise import normalise

from .helpers import SAMPLES, only_record

nuu = pytest.importorskip("connectors.sne.nuu")

SAMPLE_FILES = [
    "demande-cre-famille-rennes.xml",
    "demande-cre-association-rennes.xml",
    "demande-mod-nantes-etranger.xml",
    "demande-ren-nantes.xml",
]


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_builder_output_normalises_to_the_same_application(name: str) -> None:
    first = normalise("sne-xml", (SAMPLES / "sne-xml" / name).read_bytes())[0]
    built = nuu.build_for_record(
        first.schema, first.record, guichet="G3501", now=datetime(2026, 5, 1, tzinfo=UTC)
    )
    assert built is not None
    _, root = built
    again = normalise("sne-xml", nuu.to_bytes(root))
    second = again[0] if len(again) > 1 else only_record(again)
    strip = {"provenance", "fichierSne"}  # the connector writes its own header (date, typeFichier)
    assert {k: v for k, v in second.record.items() if k not in strip} == {  # type: ignore[union-attr]
        k: v
        for k, v in first.record.items()
        if k not in strip  # type: ignore[union-attr]
    }
