"""The operators' console on a real broker, a real worker and a real browser (Debian's chromium).

The worker ingests and routes the bundled samples (good and bad); then, once idle:
- every consumer group of the gateway has a lag of 0 (read_committed: transaction markers and the
  never-committed changelog do not count), in the worker's /metrics and in the console;
- `gateway dlq list` counts dead letters, not offsets;
- in Chromium: an anonymous visit is sent to the login page; an operator logs in and sees the
  overview with a drawn chart, the dead-letter page without any payload, and is refused the audit
  lookup; an auditor finds who received an application. A screenshot is kept as a test artefact.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from connectors.file_drop.demo import assign_samples
from gateway.broker.local import free_port
from gateway.cli import cli
from gateway.console.accounts import write_account
from gateway.console.sources import group_offsets
from gateway.policy.model import load_policy
from gateway.settings import GatewaySettings
from gateway.testing.kafka import (
    consume_all,
    consume_topics,
    produce,
    start_worker,
    stop_worker,
    wait_for_count,
    worker_env,
)
from gateway.topics import audit_topic, canonical_topic, dlq_topic, source_raw_topic
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
ARTIFACTS = Path(
    os.environ.get("GATEWAY_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")
)
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
OPERATOR, AUDITOR = ("ops", "operator password 1"), ("audit", "auditor password 1")


def _inputs() -> list[tuple[str, str, Path]]:
    """(source, format, file) of every bundled sample, dropped by the source that may enter it."""
    return [(source, fmt, path) for source, fmt, path, _ in assign_samples(load_policy(), SAMPLES)]


def _get(url: str) -> tuple[int, str, dict[str, str]]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=10) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace"), dict(err.headers)
    except (urllib.error.URLError, OSError):
        return 0, "", {}


@pytest.fixture(scope="module")
def fed_gateway(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A worker (ingest, route) and a console sampling it every second, then the samples produced."""
    tmp = tmp_path_factory.mktemp("console")
    prefix = f"cons{uuid.uuid4().hex[:8]}"
    web_port, console_port = free_port(), free_port()
    env = worker_env(kafka_bootstrap, prefix=prefix, state_dir=str(tmp), web_port=web_port, partitions=2)
    accounts = tmp / "console-accounts.yaml"
    write_account(accounts, OPERATOR[0], "operateur", OPERATOR[1], [f"{prefix}.*.dlq"])
    write_account(accounts, AUDITOR[0], "auditeur", AUDITOR[1])
    console_env = {
        **env,
        "GATEWAY_CONSOLE_ACCOUNTS_FILE": str(accounts),
        "GATEWAY_CONSOLE_INTERVAL_S": "1",
        "GATEWAY_CONSOLE_PORT": str(console_port),
    }
    worker = start_worker(env, flows="ingest,route", log_path=str(tmp / "worker.log"))
    with (tmp / "console.log").open("ab") as log:
        console = subprocess.Popen(
            [sys.executable, "-m", "gateway", "console", "serve"],
            env=console_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    inputs = _inputs()
    try:
        url = f"http://127.0.0.1:{console_port}"
        deadline = time.monotonic() + 120
        while _get(f"http://127.0.0.1:{web_port}/health")[0] != 204 or _get(url + "/health")[0] != 204:
            assert time.monotonic() < deadline, (tmp / "console.log").read_text()[-2000:]
            time.sleep(1)
        time.sleep(2)  # a console sample before the traffic: the charts start from it
        for source, fmt, path in inputs:
            topic = source_raw_topic(fmt, source, prefix)
            produce(kafka_bootstrap, topic, [(path.name.encode(), path.read_bytes())])
        settings = GatewaySettings(topic_prefix=prefix, app_id=f"{prefix}-app", state_dir=tmp)
        yield {
            "bootstrap": kafka_bootstrap,
            "prefix": prefix,
            "settings": settings.model_copy(update={"bootstrap_servers": kafka_bootstrap}),
            "env": env,
            "metrics_url": f"http://127.0.0.1:{web_port}/metrics",
            "console_url": url,
            "tmp": tmp,
            "bad_files": sum(1 for _, _, p in inputs if p.parent.name == "bad"),
            "dlq_topics": sorted({dlq_topic(source_raw_topic(f, s, prefix)) for s, f, _ in inputs}),
        }
    finally:
        stop_worker(console)
        stop_worker(worker)


def _settle(fed: dict[str, Any]) -> dict[str, int]:
    """Wait until the route flow is idle (audit quiet) and return the dead letters per DLQ topic."""
    b, prefix = fed["bootstrap"], fed["prefix"]
    wait_for_count(b, canonical_topic("demande", prefix), 1, max_wait_s=180)
    wait_for_count(b, audit_topic(prefix), 1, max_wait_s=180)
    consume_all(b, audit_topic(prefix), quiet_ms=5000, max_wait_s=120)
    return {t: len(msgs) for t, msgs in consume_topics(b, fed["dlq_topics"], quiet_ms=1000).items()}


@pytest.fixture(scope="module")
def settled(fed_gateway: dict[str, Any]) -> dict[str, int]:
    """_settle once for the module: the samples are produced once and no test adds any input (they
    only read), so an idle gateway stays idle with the same dead letters."""
    return _settle(fed_gateway)


def test_idle_lag_is_zero_and_dlq_list_counts_records(
    fed_gateway: dict[str, Any], settled: dict[str, int]
) -> None:
    dead = settled
    assert sum(dead.values()) >= fed_gateway["bad_files"]
    settings: GatewaySettings = fed_gateway["settings"]
    deadline = time.monotonic() + 90
    lags: dict[str, tuple[int, int]] = {}
    while time.monotonic() < deadline:
        lags = {
            g: v for g, v in group_offsets(settings).items() if g.startswith(f"{fed_gateway['prefix']}-app")
        }
        if lags and all(lag == 0 for _, lag in lags.values()) and len(lags) >= 2:
            break
        time.sleep(2)
    assert len(lags) >= 2, lags  # the route group and the ingest group
    assert all(lag == 0 for _, lag in lags.values()), lags
    _, text, _ = _get(fed_gateway["metrics_url"])
    lag_lines = [line for line in text.splitlines() if line.startswith("kafka_consumergroup_lag{")]
    assert lag_lines, "the worker exports the lag of its groups"
    assert all(line.endswith(" 0.0") for line in lag_lines), lag_lines
    assert not any("changelog" in line for line in lag_lines)
    status, text, _ = _get(fed_gateway["metrics_url"].replace("/metrics", "/status"))
    assert status == 200
    body = json.loads(text)
    assert body["flows"] == ["ingest", "route"] and body["settings"]["topic_prefix"] == fed_gateway["prefix"]
    assert body["ingest_last_batch_s_ago"] is not None
    result = CliRunner().invoke(cli, ["dlq", "list"], env=fed_gateway["env"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    listed = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+(\d+)$", result.output, re.M)}
    for topic, count in dead.items():
        if count:
            assert listed.get(topic) == count, (topic, listed)


@pytest.fixture(scope="module")
def console_url(fed_gateway: dict[str, Any], settled: dict[str, int]) -> str:
    time.sleep(3)  # the console samples the settled figures
    return str(fed_gateway["console_url"])


def test_console_http_rules(console_url: str) -> None:
    url = console_url
    for path in ("/console/", "/console/groups", "/console/dlq", "/console/audit", "/console/policy"):
        status, _, headers = _get(url + path)
        assert status == 303 and headers["Location"].startswith("/console/login"), (path, status)
    assert _get(url + "/health")[0] == 204
    status, text, _ = _get(url + "/metrics")
    assert status == 200 and "gp_console_collections_total" in text
    status, _, headers = _get(url + "/console/login")
    assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
    assert _get(url + "/console/static/plotly.min.js")[0] == 200


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("GATEWAY_REQUIRE_BROWSER"),
    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
)
def test_console_in_a_real_browser(console_url: str, fed_gateway: dict[str, Any]) -> None:
    url = console_url
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or "/usr/bin/chromium"
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1400,1800", f"--user-data-dir={fed_gateway['tmp'] / uuid.uuid4().hex}",
    ):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER or "/usr/bin/chromedriver"), options=options)
    wait = WebDriverWait(driver, 30)

    def login(name: str, password: str) -> None:
        driver.get(url + "/console/")
        wait.until(ec.presence_of_element_located((By.NAME, "password")))
        assert "/console/login" in driver.current_url
        driver.find_element(By.NAME, "name").send_keys(name)
        driver.find_element(By.NAME, "password").send_keys(password)
        driver.find_element(By.TAG_NAME, "button").click()
        wait.until(ec.presence_of_element_located((By.TAG_NAME, "header")))

    try:
        driver.get(url + "/console/")
        wait.until(ec.presence_of_element_located((By.NAME, "password")))
        driver.find_element(By.NAME, "name").send_keys(OPERATOR[0])
        driver.find_element(By.NAME, "password").send_keys("wrong password")
        driver.find_element(By.TAG_NAME, "button").click()
        wait.until(ec.presence_of_element_located((By.CLASS_NAME, "error")))
        assert "incorrect" in driver.page_source

        login(*OPERATOR)
        assert driver.current_url.endswith("/console/")
        # a chart drawn by the bundled Plotly (an SVG inside the chart's div), with the demo's traffic
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#par-source .main-svg")))
        page = driver.page_source
        assert "entrées sne-xml" in page
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "console-overview.png"))

        driver.get(url + "/console/dlq")
        wait.until(ec.presence_of_element_located((By.TAG_NAME, "table")))
        page = driver.page_source
        prefix = fed_gateway["prefix"]
        assert any(t in page for t in fed_gateway["dlq_topics"])
        assert "Rejouer" in page  # this operator may replay the prefix's dead letters
        for _, _, path in _inputs():
            if path.parent.name == "bad":
                payload = path.read_bytes().decode(errors="replace")
                for line in payload.splitlines():  # no line of a dead letter's payload is shown
                    if len(line.strip()) > 30:
                        assert line.strip() not in page
        driver.save_screenshot(str(ARTIFACTS / "console-dlq.png"))

        driver.get(url + "/console/audit")
        wait.until(ec.presence_of_element_located((By.TAG_NAME, "main")))
        assert "réservée au rôle auditeur" in driver.page_source
        driver.get(url + "/console/groups")
        wait.until(ec.presence_of_element_located((By.TAG_NAME, "table")))
        assert f"{prefix}-app" in driver.page_source

        driver.find_element(By.CSS_SELECTOR, "header form button").click()  # logout
        wait.until(ec.presence_of_element_located((By.NAME, "password")))
        login(*AUDITOR)
        driver.get(url + "/console/audit?numero=035260100000000001")
        wait.until(ec.presence_of_element_located((By.TAG_NAME, "table")))
        page = driver.page_source
        assert "200000001" in page and "territory:" in page
        driver.save_screenshot(str(ARTIFACTS / "console-audit.png"))
    finally:
        driver.quit()
