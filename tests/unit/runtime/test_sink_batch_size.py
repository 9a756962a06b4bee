"""A batch's size: the operator's (--batch-size, a sinks file's batch_size), else the sink's own
(`Sink.batch_size`: 500, the PostgreSQL sink 2000, whose every batch is a transaction)."""

from __future__ import annotations

from pathlib import Path

from gateway import registry
from gateway.flows.sinks import SinkOptions, batch_size, load_sinks_file


def test_a_sink_gets_its_own_batch_size_unless_the_operator_sets_one(tmp_path: Path) -> None:
    postgres = registry.build("postgres", {"dsn": "postgresql://gp@127.0.0.1:1/gp"})
    files = registry.build("file", {"dir": str(tmp_path)})
    assert batch_size(postgres, SinkOptions()) == 2000
    assert batch_size(files, SinkOptions()) == 500
    assert batch_size(postgres, SinkOptions(batch_size=25)) == 25


def test_a_sinks_file_without_a_batch_size_leaves_it_to_the_sink(tmp_path: Path) -> None:
    path = tmp_path / "sinks.yaml"
    path.write_text(
        "sinks:\n"
        f"  - {{connector: file, actor: '200000002', config: {{dir: {tmp_path}}}}}\n"
        f"  - {{connector: file, actor: '200000002', config: {{dir: {tmp_path}}}, batch_size: 7}}\n"
    )
    (sink, default), (_, seven) = load_sinks_file(path)
    assert (batch_size(sink, default), batch_size(sink, seven)) == (500, 7)
