"""Fetch Apache Kafka from Maven Central with `mvn` into a per-version cache outside the checkout.

The cache lives under ``<state_dir>/kafka/<version>/libs`` (default ``~/.cache/gp-gateway``). It is
filled once and reused by every later run; concurrent installs are serialised with a file lock.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from gateway.errors import ConfigError
from gateway.jvm_process import installed, maven_install

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
    return installed(kafka_libs(state_dir, version), _has_kafka(version))


def _has_kafka(version: str) -> Callable[[Path], bool]:
    return lambda libs: any(libs.glob(f"kafka_2.13-{version}.jar"))


def install_kafka(state_dir: Path, version: str, *, quiet: bool = True) -> Path:
    """Ensure the jars of Kafka `version` are cached; return the libs directory."""
    if not libs_present(state_dir, version) and shutil.which("mvn") and shutil.which("java") is None:
        raise ConfigError("`java` (17 or later) is needed to run Kafka")
    pom = _POM.format(version=version, sg=SLF4J_BINDING[0], sa=SLF4J_BINDING[1], sv=SLF4J_BINDING[2])
    return maven_install(
        kafka_home(state_dir, version),
        "libs",
        pom,
        ["dependency:copy-dependencies", "-DincludeScope=runtime"],
        ready=_has_kafka(version),
        version=version,
        what=f"Kafka {version}",
        quiet=quiet,
    )
