"""gateway.jvm_process: the Maven install and the child-process handling the local broker and the
local schema registry share (with a fake `mvn` and a Python child, no Java)."""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

import pytest
from gateway.errors import ConfigError, RetriableError
from gateway.jvm_process import JvmProcess, installed, maven_install, pid_alive


def _fake_mvn(folder: Path, script: str) -> None:
    mvn = folder / "mvn"
    mvn.write_text(f"#!{sys.executable}\nimport sys, pathlib\n{script}\n", encoding="utf-8")
    mvn.chmod(mvn.stat().st_mode | stat.S_IXUSR)


def _out_dir() -> str:
    return "out = pathlib.Path(next(a for a in sys.argv if a.startswith('-DoutputDirectory='))[18:])"


def _ready(folder: Path) -> bool:
    return (folder / "app.jar").exists()


def _install(home: Path) -> Path:
    return maven_install(
        home, "app", "<project/>", ["goal"], ready=_ready, version="1.0", what="the demo app"
    )


def test_maven_install_fetches_once_then_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    _fake_mvn(bin_dir, f"{_out_dir()}\nout.mkdir(parents=True)\n(out / 'app.jar').write_text('x')\n"
              f"open({str(calls)!r}, 'a').write('called\\n')")  # fmt: skip
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    home = tmp_path / "home"
    app = _install(home)
    assert app == home / "app" and installed(app, _ready)
    assert (app / ".complete").read_text(encoding="utf-8") == "1.0"
    assert (home / "pom.xml").read_text(encoding="utf-8") == "<project/>"
    assert _install(home) == app
    assert calls.read_text(encoding="utf-8").count("called") == 1


def test_maven_install_refuses_what_mvn_did_not_fetch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_mvn(bin_dir, f"{_out_dir()}\nout.mkdir(parents=True)\nprint('no such artifact')")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(RetriableError, match="could not fetch the demo app"):
        _install(tmp_path / "home")
    assert not installed(tmp_path / "home" / "app", _ready)


def test_maven_install_needs_mvn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="`mvn`"):
        _install(tmp_path / "home")


@dataclass
class _Child(JvmProcess):
    what = "the demo child"

    folder: Path
    watch_parent: bool = False
    process: Popen[bytes] | None = field(default=None, init=False)
    _watchdog: Popen[bytes] | None = field(default=None, init=False)

    @property
    def log_file(self) -> Path:
        return self.folder / "child.log"

    @property
    def pid_file(self) -> Path:
        return self.folder / "child.pid"


def test_a_child_is_spawned_logged_waited_for_and_stopped(tmp_path: Path) -> None:
    child = _Child(tmp_path, watch_parent=True)
    proc = child._spawn([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"])
    assert child.pid_file.read_text(encoding="utf-8") == str(proc.pid)
    child._wait_until(lambda: "up" in child.log_file.read_text(encoding="utf-8"), "its log", 20, 0.05)
    child.stop(timeout=5)
    assert proc.poll() is not None and not pid_alive(proc.pid)
    assert not child.pid_file.exists() and child._watchdog is None


def test_a_child_that_exits_early_is_reported_with_its_log(tmp_path: Path) -> None:
    child = _Child(tmp_path)
    child._spawn([sys.executable, "-c", "print('bad config'); raise SystemExit(3)"])
    with pytest.raises(RetriableError, match=r"(?s)the demo child exited with 3:.*bad config"):
        child._wait_until(lambda: False, "port 1", 20, 0.05)


def test_a_child_that_never_answers_is_stopped(tmp_path: Path) -> None:
    child = _Child(tmp_path)
    proc = child._spawn([sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(RetriableError, match="the demo child did not answer on port 1 within 0s"):
        child._wait_until(lambda: False, "port 1", 0.3, 0.05)
    assert proc.poll() is not None


def test_a_process_is_found_and_stopped_by_its_pid_file(tmp_path: Path) -> None:
    from gateway.jvm_process import running_pid, stop_running  # noqa: PLC0415

    pid_file = tmp_path / "child.pid"
    assert running_pid(pid_file) is None and stop_running(pid_file, "demo") is None
    pid_file.write_text("not a pid", encoding="utf-8")
    assert running_pid(pid_file) is None
    proc = Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pid_file.write_text(str(proc.pid), encoding="utf-8")
    assert running_pid(pid_file) == proc.pid
    assert stop_running(pid_file, "demo") == proc.pid
    assert proc.poll() is not None and not pid_file.exists()
