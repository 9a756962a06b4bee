"""The README's "Writing a connector" example works exactly as printed: the connector, its
entry-point registration and its one-statement contract test are taken from the README and run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Writing a connector") :]
    section = section[: section.index("\n## ", 5)]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL)
    python = [body for lang, body in blocks if lang == "python"]
    toml = [body for lang, body in blocks if lang == "toml"]
    assert len(python) == 2
    assert len(toml) == 1
    return {"connector": python[0], "test": python[1], "entry_points": toml[0]}


def _install(tmp_path: Path) -> dict[str, str]:
    """mypkg as printed, with the printed entry point (a dist-info importlib.metadata finds)."""
    blocks = _blocks()
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "connector.py").write_text(blocks["connector"])
    (pkg / "test_connector.py").write_text(blocks["test"])
    group = re.search(r'\[project\.entry-points\."([^"]+)"\]', blocks["entry_points"])
    assert group
    entry = blocks["entry_points"].split("]", 1)[1].strip().replace('"', "")  # TOML string -> INI value
    info = tmp_path / "mypkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mypkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group.group(1)}]\n{entry}\n")
    return {"PYTHONPATH": str(tmp_path), "PATH": str(Path(sys.executable).parent)}


def test_the_example_sink_is_found_through_its_entry_point(tmp_path: Path) -> None:
    env = _install(tmp_path)
    code = "from gateway import registry; print(registry.load('csv').__name__, 'csv' in registry.available())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.split() == ["CsvSink", "True"]


def test_the_printed_contract_test_passes(tmp_path: Path) -> None:
    env = _install(tmp_path)
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "mypkg/test_connector.py"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    passed = re.search(r"(\d+) passed", out.stdout)
    assert passed
    assert int(passed.group(1)) >= 9  # the whole sink contract, the delivery check included
    # nothing skipped but the rendering check (the example renders nothing ahead: docs/sinks.md)
    skips = [line for line in out.stdout.splitlines() if line.startswith("SKIPPED")]
    assert all("renders nothing ahead" in line for line in skips), skips
    assert len(skips) <= 1
