"""Fetch Apache Kafka from Maven Central with `mvn` into a per-version cache outside the checkout.

The cache lives under ``<state_dir>/kafka/<version>/libs`` (default ``~/.cache/gp-gateway``). It is
filled once and reused by every later run; concurrent installs are serialised with a file lock.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

from gateway.errors import ConfigError, RetriableError

__all__ = ["SLF4J_BINDING", "install_kafka", "kafka_home", "kafka_libs", "libs_present"]

SLF4J_BINDING = ("org.slf4j", "slf4j-reload4j", "1.7.36")

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>gp.gateway</groupId><artifactId>kafka-runtime</artifactId><version>{version}</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version></dependency>
    <dependency><groupId>{sg}</groupId><artifactId>{sa}</artifactId><version>{sv}</version></dependency>
  </dependencies>
</project>
"""


def kafka_home(state_dir: Path, version: str) -> Path:
    return Path(state_dir).expanduser() / "kafka" / version


def kafka_libs(state_dir: Path, version: str) -> Path:
    return kafka_home(state_dir, version) / "libs"


def libs_present(state_dir: Path, version: str) -> bool:
    libs = kafka_libs(state_dir, version)
    return (libs / ".complete").exists() and any(libs.glob(f"kafka_2.13-{version}.jar"))


def install_kafka(state_dir: Path, version: str, *, quiet: bool = True) -> Path:
    """Ensure the jars of Kafka `version` are cached; return the libs directory."""
    home = kafka_home(state_dir, version)
    home.mkdir(parents=True, exist_ok=True)
    libs = home / "libs"
    with (home / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if libs_present(state_dir, version):
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ConfigError("`mvn` (Apache Maven) is needed to fetch Kafka (apt-get install maven)")
        if shutil.which("java") is None:
            raise ConfigError("`java` (17 or later) is needed to run Kafka")
        (home / "pom.xml").write_text(
            _POM.format(version=version, sg=SLF4J_BINDING[0], sa=SLF4J_BINDING[1], sv=SLF4J_BINDING[2]),
            encoding="utf-8",
        )
        staging = home / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            *(["-q"] if quiet else []),
            "-B",
            "-f",
            str(home / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise RetriableError(f"mvn could not fetch Kafka {version} (exit {proc.returncode}):\n{tail}")
        (staging / ".complete").write_text(version, encoding="utf-8")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        return libs
