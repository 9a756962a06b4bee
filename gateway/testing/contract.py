"""Connector contract suite: what every source and sink must honour, reused in one line.

    from gateway.testing.contract import sink_contract
    TestMySinkContract = sink_contract(
        MySink, valid_config={...}, invalid_config={...}, delivered=lambda config: [...]
    )

The invalid config must hold at least `min_errors` independent mistakes: the suite checks that all
of them are reported at once (not only the first). `check()` must work without traffic.

A sink's delivery guarantee is checked with real records (an actor's stream made of the bundled
samples by the default policy): the suite writes a first batch and "commits" it, writes a second batch
and is killed before the commit (the sink object is dropped, never flushed), then a new sink built
from the same config resumes (from `resume_offsets`, else from the commit) and the rest is written
again. `delivered(config)` returns the `ce_id` of every record the sink delivered, read back from
where it delivers (a file, a table, a receiver): each expected id must be there, and an
"exactly-once" sink must hold none twice. `valid_config` may be a function of the test's tmp_path;
`delivery_config` (same form) replaces it for the delivery test (e.g. a real database).

A sink that declares `erases = True` is checked with the same read-back: the stream's records, then
the `fr.gp.Effacement` of its busiest application, then a new record of that application. With
`erasure_read_back="store"` (default: the read-back lists what the sink holds), nothing of the erased
application's earlier records is left, the others' are, and the new record is there (new data);
with `"log"` (the read-back lists every delivery, e.g. a webhook receiver's), the erasure's id was
delivered after every id of the application. An exactly-once sink resumes after the erasure.
"""

# ruff: noqa: S101 - a pytest test kit: assertions are its purpose
from __future__ import annotations

import asyncio
import inspect
import pickle
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from pydantic import BaseModel, ValidationError

from gateway.connectors import CheckResult, ConnectorConfig, Erasure, Sink, SinkContext, SinkRecord, Source
from gateway.errors import ConfigError, Problem

__all__ = ["ConnectorContract", "SinkContract", "SourceContract", "sink_contract", "source_contract"]

Factory = Callable[[type, Any, Path], Any]
ConfigValues = dict[str, Any] | Callable[[Path], dict[str, Any]]
CONTRACT_ACTOR = "200000002"  # the default policy's busiest nominative actor: its folder, its rows
CONTRACT_TOPIC = "gp.actor.200000002"


def _default_factory(cls: type, config: Any, tmp_path: Path) -> Any:
    return cls(config)


def validate_config(cls: type, values: dict[str, Any]) -> Any:
    """The registry's rule: a ConfigError listing every problem."""
    try:
        return cls.Config.model_validate(values)  # type: ignore[attr-defined]  # checked by the suite
    except ValidationError as exc:
        problems = [Problem(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise ConfigError(f"invalid config for {cls.__name__}", problems) from exc


def _values(values: Any, tmp_path: Path) -> dict[str, Any]:
    """A config given as a dict, or as a function of the test's tmp_path."""
    return dict(values(tmp_path) if callable(values) else values)


def _attr(contract: object, name: str) -> Any:
    """A class attribute of the contract as given (a function is not bound to the test instance)."""
    return getattr(type(contract), name)


class ConnectorContract:
    connector: ClassVar[type]
    valid_config: ClassVar[ConfigValues]
    invalid_config: ClassVar[dict[str, Any]]
    min_errors: ClassVar[int] = 2
    factory: ClassVar[Factory] = staticmethod(_default_factory)

    def config(self, tmp_path: Path) -> Any:
        return validate_config(self.connector, _values(_attr(self, "valid_config"), tmp_path))

    def build(self, tmp_path: Path) -> Any:
        return type(self).factory(self.connector, self.config(tmp_path), tmp_path)

    def test_has_a_short_name(self) -> None:
        name = getattr(self.connector, "name", None)
        assert isinstance(name, str)
        assert name
        assert name == name.strip().lower()

    def test_states_its_delivery_guarantee(self) -> None:
        assert getattr(self.connector, "guarantee", None) in ("at-least-once", "exactly-once")
        assert "once" in (self.connector.__doc__ or "").lower(), "state the guarantee in the class docstring"

    def test_config_is_a_frozen_model_refusing_unknown_keys(self, tmp_path: Path) -> None:
        config_cls = self.connector.Config  # type: ignore[attr-defined]
        assert issubclass(config_cls, BaseModel)
        assert issubclass(config_cls, ConnectorConfig)
        config = self.config(tmp_path)
        field = next(iter(type(config).model_fields))
        with pytest.raises(ValidationError):
            setattr(config, field, getattr(config, field))
        valid = _values(_attr(self, "valid_config"), tmp_path)
        with pytest.raises(ConfigError):
            validate_config(self.connector, {**valid, "no_such_option_xyz": 1})

    def test_config_reports_every_error_at_once(self) -> None:
        with pytest.raises(ConfigError) as info:
            validate_config(self.connector, self.invalid_config)
        assert len(info.value.problems) >= self.min_errors
        assert all(p.path for p in info.value.problems)

    def test_config_describes_itself(self) -> None:
        schema = self.connector.Config.model_json_schema()  # type: ignore[attr-defined]
        assert schema.get("properties")

    def test_check_works_without_traffic(self, tmp_path: Path) -> None:
        result = self.build(tmp_path).check()
        assert isinstance(result, CheckResult)


def _ids(records: Sequence[SinkRecord]) -> list[str]:
    return [r.event_id() for r in records]


class SinkContract(ConnectorContract):
    # ce_ids of what the sink delivered, read back from where it delivers (None: not checked)
    delivered: ClassVar[Callable[[Any], list[str]] | None] = None
    delivery_config: ClassVar[ConfigValues | None] = None
    # the ids the sink must hold at the end (default: every record's): e.g. only the latest of an upsert
    expected: ClassVar[Callable[[Sequence[SinkRecord]], list[str]]] = staticmethod(_ids)
    # what `delivered` reads back: what the sink holds ("store"), or every delivery made ("log")
    erasure_read_back: ClassVar[Literal["store", "log"]] = "store"

    def _delivery(
        self, tmp_path: Path, checked: str
    ) -> tuple[Callable[[Any], list[str]], Any, list[SinkRecord], SinkContext]:
        """What a delivery test needs: the `delivered` reader (skipped without one: `checked` cannot
        be checked), the delivery config, the contract's records and the sink's context."""
        read_back = type(self).delivered
        if read_back is None:
            pytest.skip(f"no `delivered` reader given: {checked} cannot be checked")
        from gateway.testing.actor_stream import sink_records  # noqa: PLC0415

        values = _values(_attr(self, "delivery_config") or _attr(self, "valid_config"), tmp_path)
        config = validate_config(self.connector, values)
        records = list(sink_records(CONTRACT_ACTOR, topic=CONTRACT_TOPIC))
        context = SinkContext(
            self.connector.name,  # type: ignore[attr-defined]
            CONTRACT_ACTOR,
            (CONTRACT_TOPIC,),
            f"gp.actor.{CONTRACT_ACTOR}.sink.contract",
            tmp_path / "state",
        )
        return read_back, config, records, context

    def test_is_a_sink(self, tmp_path: Path) -> None:
        sink = self.build(tmp_path)
        assert isinstance(sink, Sink), "subclass gateway.Sink (it declares the optional hooks)"
        assert inspect.iscoroutinefunction(sink.write)
        assert inspect.iscoroutinefunction(sink.flush)
        assert sink.reads in ("actor", "canonical")

    def test_empty_batch_writes_nothing(self, tmp_path: Path) -> None:
        sink = self.build(tmp_path)
        assert list(asyncio.run(sink.write([]))) == []

    # the killed sink is dropped as a killed process would leave it: its sockets and files unclosed
    @pytest.mark.filterwarnings("ignore::ResourceWarning")
    @pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    def test_delivery_guarantee_holds_when_killed_between_write_and_commit(self, tmp_path: Path) -> None:
        read_back, config, records, context = self._delivery(tmp_path, "the guarantee")
        assert len(records) >= 4
        cut = len(records) // 2
        tp = (CONTRACT_TOPIC, 0)

        async def first_life() -> int:
            sink = type(self).factory(self.connector, config, tmp_path)
            await sink.open(context)
            start = dict(sink.resume_offsets([tp])).get(tp, 0)
            assert start == 0, "a fresh sink resumes from the beginning"
            await sink.write(records[:cut])
            committed = cut  # the runtime commits after write returned
            await sink.write(records[cut:])  # ... and is killed before this commit: no flush
            return committed

        async def second_life(committed: int) -> None:
            sink = type(self).factory(self.connector, config, tmp_path)
            await sink.open(context)
            start = dict(sink.resume_offsets([tp])).get(tp, committed)
            assert committed <= start <= len(records)
            await sink.write(records[start:])
            await sink.flush()

        asyncio.run(second_life(asyncio.run(first_life())))
        seen = Counter(read_back(config))
        expected = type(self).expected(records)
        missing = [i for i in expected if i not in seen]
        assert not missing, f"{len(missing)} record(s) never delivered"
        if self.connector.guarantee == "exactly-once":  # type: ignore[attr-defined]
            twice = [i for i, n in seen.items() if n > 1]
            assert not twice, f"{len(twice)} record(s) delivered twice by an exactly-once sink"

    def test_records_rendered_ahead_are_delivered_as_the_records(self, tmp_path: Path) -> None:
        """A sink with a renderer (run in the runtime's reading processes): it survives pickling,
        renders every record, and the records rendered ahead (`record` emptied) are delivered as the
        records themselves are; without their headers too when the sink says it does not read them
        (`headers_in_write = False`: the runtime leaves them in the reading process)."""
        sink = self.build(tmp_path)
        renderer = sink.renderer()
        if renderer is None:
            pytest.skip("the sink renders nothing ahead (no renderer)")
        render = pickle.loads(pickle.dumps(renderer))  # noqa: S301 - what a reading process gets
        read_back, config, records, context = self._delivery(tmp_path, "the rendered records")
        ahead = []
        for r in records:
            rendered = render(r)
            if rendered is None:
                ahead.append(r)
                continue
            headers = r.headers if sink.headers_in_write else ()
            ahead.append(replace(r, record={}, rendered=rendered, headers=headers))
        assert any(r.rendered is not None for r in ahead), "the renderer declined every record"

        async def life() -> None:
            sink = type(self).factory(self.connector, config, tmp_path)
            await sink.open(context)
            await sink.write(ahead)
            await sink.flush()

        asyncio.run(life())
        assert sorted(read_back(config)) == sorted(type(self).expected(records))

    def test_an_erasure_leaves_nothing_of_the_application(self, tmp_path: Path) -> None:
        if not self.connector.erases:  # type: ignore[attr-defined]  # a Sink (test_is_a_sink)
            pytest.skip("the sink declares it cannot erase (erases = False)")
        from gateway.testing.effacement import erasure_sink_record  # noqa: PLC0415

        read_back, config, records, context = self._delivery(tmp_path, "the erasure")
        erased = Counter(r.key for r in records).most_common(1)[0][0]
        gone = _ids([r for r in records if r.key == erased])
        kept = type(self).expected([r for r in records if r.key != erased])
        effacement = erasure_sink_record(erased, topic=CONTRACT_TOPIC, offset=len(records))
        first = next(r for r in records if r.key == erased)
        heads = tuple((k, v + b"#new" if k == "ce_id" else v) for k, v in first.headers)
        new = replace(first, headers=heads, offset=len(records) + 1)  # after the erasure: new data

        async def life() -> int | None:
            sink = type(self).factory(self.connector, config, tmp_path)
            await sink.open(context)
            await sink.write(records)
            await sink.erase([Erasure.of(effacement)])
            resumed = dict(sink.resume_offsets([(CONTRACT_TOPIC, 0)])).get((CONTRACT_TOPIC, 0))
            await sink.write([new])
            await sink.flush()
            return resumed

        resumed = asyncio.run(life())
        seen = read_back(config)
        if type(self).erasure_read_back == "log":
            assert str(effacement.header("ce_id")) in seen, "the erasure was not delivered"
            at = seen.index(str(effacement.header("ce_id")))
            assert all(i in seen[:at] for i in gone), "the erasure was delivered before the records"
        else:
            left = [i for i in gone if i in seen]
            assert not left, f"{len(left)} record(s) of the erased application left"
            assert str(new.header("ce_id")) in seen, "a record after the erasure is new data: kept"
        missing = [i for i in kept if i not in seen]
        assert not missing, f"{len(missing)} record(s) of other applications lost"
        if self.connector.guarantee == "exactly-once":  # type: ignore[attr-defined]
            assert resumed == len(records) + 1, "the erasure's offset is stored with its deletion"


class SourceContract(ConnectorContract):
    def test_is_a_source(self, tmp_path: Path) -> None:
        source = self.build(tmp_path)
        assert isinstance(source, Source)
        assert inspect.iscoroutinefunction(source.run)
        assert inspect.iscoroutinefunction(source.stop)


def _make(base: type, cls: type, valid: ConfigValues, invalid: dict[str, Any], **extra: Any) -> type:
    attrs: dict[str, Any] = {"connector": cls, "valid_config": valid, "invalid_config": invalid, **extra}
    for name in ("factory", "delivered", "expected", "valid_config", "delivery_config"):
        if callable(attrs.get(name)):
            attrs[name] = staticmethod(attrs[name])
    return type(f"Test{cls.__name__}Contract", (base,), attrs)


def sink_contract(
    cls: type, *, valid_config: ConfigValues, invalid_config: dict[str, Any], **extra: Any
) -> type:
    """A pytest class running the sink contract against `cls` (extra: delivered, delivery_config,
    expected, factory, min_errors)."""
    return _make(SinkContract, cls, valid_config, invalid_config, **extra)


def source_contract(
    cls: type, *, valid_config: ConfigValues, invalid_config: dict[str, Any], **extra: Any
) -> type:
    """A pytest class running the source contract against `cls`."""
    return _make(SourceContract, cls, valid_config, invalid_config, **extra)
