"""The cotation loop's erasure without Kafka: state and report forget the application, its cotation
is tombstoned, the receipt is written; the 25 % figures do not change; other tombstones are skipped."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from gateway.cotation.grid import load_grid
from gateway.cotation.state import CotationState
from gateway.flows.cotation import CotationRunner
from gateway.policy import load_policy
from gateway.policy.samples import sample_decision, sample_demande
from gateway.reporting.attributions import to_csv
from gateway.reporting.live import ReportState
from gateway.retention import protocol
from gateway.settings import GatewaySettings
from tests.unit.cotation.test_reporting import EXPECTED, _live_year

DATA = Path(__file__).resolve().parents[3] / "gateway" / "data" / "cotation"
GRID = load_grid(DATA / "grille-exemple.yaml", load_policy())
DAY = date(2026, 3, 1)
ERASE = [(protocol.ERASURE_HEADER, b"req-3")]


def _runner(report: ReportState | None = None) -> CotationRunner:
    from gateway.codec.avro import load_schemas  # noqa: PLC0415

    settings = GatewaySettings(topic_prefix="t")
    return CotationRunner(settings, CotationState(GRID, None, live=True), load_schemas(), report)


def test_the_erasure_forgets_the_application_and_writes_its_tombstone_and_receipt() -> None:
    runner = _runner()
    a = sample_demande("044260100000000001", ("44109",))
    b = sample_demande("044260100000000002", ("44109",))
    runner.state.on_demande(a, DAY)
    runner.state.on_demande(b, DAY)
    runner.state.on_decision(
        sample_decision("LABEL_PRIORITAIRE", a["numUnique"], dateLabel=date(2026, 2, 1)), DAY
    )
    out = runner.erasure("t.canonical.demande", a["numUnique"].encode(), ERASE)
    assert [(t, k, v) for t, k, v, _ in out] == [
        ("t.canonical.cotation", a["numUnique"].encode(), None),
        ("t.retention.receipts", a["numUnique"].encode(), b"cotation"),
    ]
    assert all((protocol.ERASURE_HEADER, b"req-3") in h for *_, h in out)
    state = runner.state
    assert a["numUnique"] not in state.demandes and a["numUnique"] not in state.decisions
    assert a["numUnique"] not in state.totals
    assert [r["numUnique"] for _, r in state.daily(date(2026, 3, 2))] == [b["numUnique"]]
    assert [r["rang"] for _, r in state.daily(date(2026, 3, 3))] == [1]  # ranked without it


def test_an_application_it_never_held_still_gets_its_receipt() -> None:
    out = _runner().erasure("t.canonical.demande", b"044260100000000009", ERASE)
    assert [t for t, *_ in out] == ["t.canonical.cotation", "t.retention.receipts"]


def test_other_tombstones_are_skipped() -> None:
    runner = _runner()
    a = sample_demande("044260100000000001", ("44109",))
    runner.state.on_demande(a, DAY)
    assert runner.erasure("t.canonical.demande", a["numUnique"].encode(), []) == []
    assert runner.erasure("t.canonical.decision", a["numUnique"].encode(), ERASE) == []
    assert a["numUnique"] in runner.state.demandes


def test_the_report_keeps_the_attributions_of_an_erased_household_without_naming_it() -> None:
    live, _ = _live_year()
    assert to_csv(live.changed()[2026]) == EXPECTED
    runner = _runner(live)
    runner.erasure("t.canonical.demande", b"A", ERASE)
    runner.erasure("t.canonical.demande", b"D", ERASE)
    assert "A" not in live.demandes and "A" not in live.decisions and "D" not in live.years
    assert live.erased and all(f.num == "" for f in live.erased)
    live.dirty.add(2026)
    assert to_csv(live.changed()[2026]) == EXPECTED  # the same figures
