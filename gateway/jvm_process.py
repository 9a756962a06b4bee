"""Local Java services (the Kafka broker, the schema registry): what both do alike.

- `maven_install`: fetch an artifact with `mvn` into a cache directory outside the checkout, once
  (a file lock serialises concurrent installs; a staging directory is renamed when complete);
- `JvmProcess` (a base class): a child process in its own session, its output appended to a log
  file, its pid in a pid file, optionally a watchdog that stops it when this process dies; wait until
  a probe answers; stop it (SIGTERM, then SIGKILL);
- `free_port`, `pid_alive`, `stop_pid`: ports and processes by number (the CLI's `stop`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from gateway.errors import ConfigError, RetriableError

__all__ = [
    "JvmProcess",
    "free_port",
    "installed",
    "maven_install",
    "pid_alive",
    "running_pid",
    "spawn_watchdog",
    "stop_pid",
    "stop_running",
]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def installed(folder: Path, ready: Callable[[Path], bool]) -> bool:
    """Whether `folder` holds a finished `maven_install` (its `.complete` marker, and `ready`)."""
    return (folder / ".complete").exists() and ready(folder)


def maven_install(
    home: Path,
    target: str,
    pom: str,
    goal: Sequence[str],
    *,
    ready: Callable[[Path], bool],
    version: str,
    what: str,
    quiet: bool = True,
) -> Path:
    """Ensure `home/target` holds what `mvn <goal> -DoutputDirectory=...` fetches; return it.

    `pom`: the pom.xml written in `home`; `ready(folder)`: whether a folder holds what is wanted
    (checked under the lock, and on the staging folder after mvn, before it is marked `.complete`
    with `version` and renamed); `what`: named in errors."""
    home.mkdir(parents=True, exist_ok=True)
    out = home / target
    with (home / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed(out, ready):
            return out
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ConfigError(f"`mvn` (Apache Maven) is needed to fetch {what} (apt-get install maven)")
        (home / "pom.xml").write_text(pom, encoding="utf-8")
        staging = home / f"{target}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [mvn, *(["-q"] if quiet else []), "-B", "-f", str(home / "pom.xml"), *goal]
        cmd.append(f"-DoutputDirectory={staging}")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if proc.returncode != 0 or not ready(staging):
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise RetriableError(f"mvn could not fetch {what} (exit {proc.returncode}):\n{tail}")
        (staging / ".complete").write_text(version, encoding="utf-8")
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
        return out


_WATCHDOG = """
import os, signal, sys, time
parent, child = int(sys.argv[1]), int(sys.argv[2])
def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
while alive(child):
    if not alive(parent) or os.getppid() == 1:
        try:
            os.kill(child, signal.SIGTERM)
            time.sleep(10)
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break
    time.sleep(1)
"""


def spawn_watchdog(parent: int, child: int) -> subprocess.Popen[bytes]:
    """A tiny process that stops `child` when `parent` dies (SIGKILL of a test session)."""
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", _WATCHDOG, str(parent), str(child)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


class JvmProcess:
    """What a local Java service (a dataclass with these fields) does with its child process: started
    in its own session, output appended to `log_file`, pid in `pid_file`, a watchdog when
    `watch_parent`; waited for; stopped."""

    what: ClassVar[str]  # in errors: "the Kafka broker", "the schema registry"
    watch_parent: bool  # stop the child if this process dies without stopping it
    process: subprocess.Popen[bytes] | None
    _watchdog: subprocess.Popen[bytes] | None

    @property
    def log_file(self) -> Path:
        raise NotImplementedError

    @property
    def pid_file(self) -> Path:
        raise NotImplementedError

    def _spawn(self, cmd: Sequence[str]) -> subprocess.Popen[bytes]:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.pid_file.write_text(str(self.process.pid), encoding="utf-8")
        if self.watch_parent:
            self._watchdog = spawn_watchdog(os.getpid(), self.process.pid)
        return self.process

    def _wait_until(self, answers: Callable[[], bool], where: str, timeout: float, delay: float) -> None:
        """Wait until `answers()`; RetriableError (with the log's tail) when the child exits first, or
        (the child stopped) when `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = self.log_file.read_text(encoding="utf-8", errors="replace")[-1500:]
                raise RetriableError(f"{self.what} exited with {self.process.returncode}:\n{tail}")
            if answers():
                return
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        self.stop()
        raise RetriableError(f"{self.what} did not answer on {where} within {timeout:.0f}s")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (clean shutdown), then SIGKILL after `timeout` seconds."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(5)
            self.pid_file.unlink(missing_ok=True)
        if self._watchdog is not None:
            try:
                self._watchdog.wait(5)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
                self._watchdog.wait()
            self._watchdog = None


def running_pid(pid_file: Path) -> int | None:
    """The pid written in `pid_file`, when that process is alive (None: no file, or it is gone)."""
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def stop_running(pid_file: Path, what: str) -> int | None:
    """Stop the process of `pid_file` (see stop_pid) and remove the file; return its pid (None: none
    ran); RetriableError naming `what` when it does not stop."""
    pid = running_pid(pid_file)
    if pid is None:
        return None
    if not stop_pid(pid):
        raise RetriableError(f"{what} process {pid} did not stop")
    pid_file.unlink(missing_ok=True)
    return pid


def stop_pid(pid: int, timeout: float = 20.0) -> bool:
    """Stop a process we do not hold a handle on (CLI `broker stop`, `registry stop`): SIGTERM, then
    SIGKILL. Returns True if the process stopped (or was already gone)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _reaped(pid) or not pid_alive(pid):
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    return _reaped(pid) or not pid_alive(pid)


def _reaped(pid: int) -> bool:
    """True when `pid` is a child of ours that has exited (and is now reaped, not a zombie)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid
