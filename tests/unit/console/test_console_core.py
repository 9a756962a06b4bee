"""The console's pure parts: sessions, login limiter, accounts, history, group status, pages."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from gateway.console.accounts import Accounts, write_account
from gateway.console.groups import GroupSample, evaluate
from gateway.console.history import History, increases
from gateway.console.pages import chart, h, table
from gateway.console.sessions import LoginLimiter, Sessions
from gateway.console.sources import series_from_metrics
from gateway.errors import ConfigError
from gateway.monitoring.metrics import Metrics


def test_sessions_expire_when_idle_and_at_max_age() -> None:
    sessions = Sessions(ttl_s=100, max_age_s=250)
    s = sessions.create("alice", "operateur", now=0)
    assert sessions.get(s.token, 50) is s
    assert sessions.get(s.token, 140) is s  # used at 50: idle deadline moved to 150
    assert sessions.get(s.token, 245) is None  # idle since 140 for 105 s
    t = sessions.create("alice", "operateur", now=1000)
    for now in (1090, 1180):
        assert sessions.get(t.token, now) is t
    assert sessions.get(t.token, 1250) is None  # max age reached although in use
    assert sessions.get("forged", 0) is None
    assert sessions.get(None, 0) is None


def test_csrf_token_must_match_the_session() -> None:
    sessions = Sessions()
    s = sessions.create("bob", "auditeur", now=0)
    assert Sessions.csrf_ok(s, s.csrf)
    assert not Sessions.csrf_ok(s, "")
    assert not Sessions.csrf_ok(s, None)
    assert not Sessions.csrf_ok(s, s.csrf[:-1] + ("A" if s.csrf[-1] != "A" else "B"))


def test_login_limiter_blocks_after_failures_then_forgets() -> None:
    limiter = LoginLimiter(attempts=3, window_s=60)
    keys = ("addr:127.0.0.1", "name:alice")
    for t in range(3):
        assert not limiter.blocked(keys, t)
        limiter.failed(keys, t)
    assert limiter.blocked(keys, 10)
    assert limiter.blocked(("addr:10.0.0.9", "name:alice"), 10)  # the name is blocked from anywhere
    assert not limiter.blocked(keys, 70)  # window passed


def test_accounts_verify_and_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "console" / "accounts.yaml"
    write_account(path, "alice", "operateur", "correct horse battery", ["gp.raw.*.dlq"])
    write_account(path, "bob", "auditeur", "another long secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "correct horse" not in path.read_text()
    accounts = Accounts(path)
    alice = accounts.verify("alice", "correct horse battery")
    assert alice is not None and alice.role == "operateur" and alice.replay == ["gp.raw.*.dlq"]
    assert accounts.verify("alice", "wrong") is None
    assert accounts.verify("nobody", "correct horse battery") is None
    write_account(path, "alice", "auditeur", "a new long password")
    accounts.reload()
    assert accounts.verify("alice", "correct horse battery") is None
    assert accounts.get("alice") is not None and accounts.get("alice").role == "auditeur"  # type: ignore[union-attr]


def test_accounts_file_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text("accounts:\n  - {name: eve, role: root, password_hash: plain}\n")
    with pytest.raises(ConfigError) as err:
        Accounts(path)
    text = str(err.value) + " ".join(p.path for p in err.value.problems)
    assert "role" in text and "password_hash" in text


def test_increases_handle_counter_resets() -> None:
    assert increases([(0, 5), (60, 8), (120, 8), (180, 2), (240, 7)]) == [
        (60, 3),
        (120, 0),
        (180, 2),
        (240, 5),
    ]
    assert increases([(0, 1)]) == []


def test_history_survives_reopen_and_prunes(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    hist = History(path)
    day = 86400
    hist.record(0, {"in/ingest/sne-xml": 1})
    hist.record(60, {"in/ingest/sne-xml": 4})
    hist.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    hist = History(path)
    assert hist.series(["in/ingest/sne-xml"], 0)["in/ingest/sne-xml"] == [(0.0, 1.0), (60.0, 4.0)]
    hist.record(3 * day, {"in/ingest/sne-xml": 9})
    assert hist.series(["in/ingest/sne-xml"], 0)["in/ingest/sne-xml"] == [(3.0 * day, 9.0)]  # minutes: 48 h
    assert [t for t, _ in hist.series(["in/ingest/sne-xml"], 0, hourly=True)["in/ingest/sne-xml"]] == [
        0.0,
        3.0 * day,
    ]
    hist.record(40 * day, {"in/ingest/sne-xml": 10})
    assert [t for t, _ in hist.series(["in/ingest/sne-xml"], 0, hourly=True)["in/ingest/sne-xml"]] == [
        40.0 * day
    ]
    assert hist.names("in/") == ["in/ingest/sne-xml"]
    hist.put_state("k", "v")
    assert hist.get_state("k") == "v"
    assert hist.get_state("absent") is None


@pytest.mark.parametrize(
    ("lags", "commits", "last_commit", "now", "status"),
    [
        ([0], [10], 0.0, 10.0, "OK"),
        ([5, 3, 2], [10, 12, 14], 100.0, 120.0, "OK"),
        ([1, 5, 9], [10, 12, 14], 100.0, 120.0, "WARN"),  # committing but falling behind
        ([4, 4, 4], [10, 10, 10], 0.0, 900.0, "WARN"),  # waiting, no commit for 15 min
        ([4, 4, 4], [10, 10, 10], 0.0, 3 * 86400.0, "ERR"),  # stopped reading three days ago
        ([4], [10], None, 10.0, "ERR"),  # never seen committing
    ],
)
def test_group_status_from_trends(
    lags: list[int], commits: list[int], last_commit: float | None, now: float, status: str
) -> None:
    samples = [
        GroupSample(float(i * 60), c, lag) for i, (c, lag) in enumerate(zip(commits, lags, strict=True))
    ]
    got = evaluate(samples, last_commit, now)
    assert got.status == status, got
    assert got.lag == lags[-1]
    assert evaluate([], None, 0).status == "UNKNOWN"


def test_three_day_stall_reason_names_the_duration() -> None:
    got = evaluate([GroupSample(0, 10, 4)], 0.0, 3 * 86400 + 7200)
    assert got.status == "ERR" and "3 d 2 h" in got.reason


def test_pages_escape_every_value() -> None:
    evil = "<script>alert(1)</script>"
    assert "<script>" not in h(evil)
    assert "<script>alert" not in table(["a"], [(evil,)])
    html = chart("c", evil, {evil: [(0.0, 1.0)]}, ylabel="y")
    assert "<script>alert" not in html and html.count("</script>") == 1


def test_series_from_metrics_reads_the_gateway_counters() -> None:
    m = Metrics()
    m.records_in.labels(flow="ingest", source="sne-xml").inc(3)
    m.records_out.labels(flow="route", source="demande", topic="gp.actor.[bailleur]").inc(2)
    m.dead_lettered.labels(flow="ingest", source="cal-csv").inc()
    text = m.render().decode()
    series = series_from_metrics(text + "\n" + text)  # two processes: summed
    assert series["in/ingest/sne-xml"] == 6
    assert series["out/route/gp.actor.[bailleur]"] == 4
    assert series["dlq/ingest/cal-csv"] == 2
