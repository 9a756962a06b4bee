"""Connector contract suite: what every source and sink must honour, reused in one line.

    from gateway.testing.contract import sink_contract
    TestMySinkContract = sink_contract(MySink, valid_config={...}, invalid_config={...})

The invalid config must hold at least `min_errors` independent mistakes: the suite checks that all
of them are reported at once (not only the first). No test here moves data or needs a broker:
`check()` must work without traffic.
"""

# ruff: noqa: S101 - a pytest test kit: assertions are its purpose
from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ValidationError

from gateway.connectors import CheckResult, ConnectorConfig, Sink, Source
from gateway.errors import ConfigError, Problem

__all__ = ["ConnectorContract", "SinkContract", "SourceContract", "sink_contract", "source_contract"]

Factory = Callable[[type, Any, Path], Any]


def _default_factory(cls: type, config: Any, tmp_path: Path) -> Any:
    return cls(config)


def validate_config(cls: type, values: dict[str, Any]) -> Any:
    """The registry's rule: a ConfigError listing every problem."""
    try:
        return cls.Config.model_validate(values)  # type: ignore[attr-defined]  # checked by the suite
    except ValidationError as exc:
        problems = [Problem(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise ConfigError(f"invalid config for {cls.__name__}", problems) from exc


class ConnectorContract:
    connector: ClassVar[type]
    valid_config: ClassVar[dict[str, Any]]
    invalid_config: ClassVar[dict[str, Any]]
    min_errors: ClassVar[int] = 2
    factory: ClassVar[Factory] = staticmethod(_default_factory)

    def build(self, tmp_path: Path) -> Any:
        config = validate_config(self.connector, self.valid_config)
        return type(self).factory(self.connector, config, tmp_path)

    def test_has_a_short_name(self) -> None:
        name = getattr(self.connector, "name", None)
        assert isinstance(name, str)
        assert name
        assert name == name.strip().lower()

    def test_states_its_delivery_guarantee(self) -> None:
        assert getattr(self.connector, "guarantee", None) in ("at-least-once", "exactly-once")
        assert "once" in (self.connector.__doc__ or "").lower(), "state the guarantee in the class docstring"

    def test_config_is_a_frozen_model_refusing_unknown_keys(self) -> None:
        config_cls = self.connector.Config  # type: ignore[attr-defined]
        assert issubclass(config_cls, BaseModel)
        assert issubclass(config_cls, ConnectorConfig)
        config = validate_config(self.connector, self.valid_config)
        field = next(iter(type(config).model_fields))
        with pytest.raises(ValidationError):
            setattr(config, field, getattr(config, field))
        with pytest.raises(ConfigError):
            validate_config(self.connector, {**self.valid_config, "no_such_option_xyz": 1})

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


class SinkContract(ConnectorContract):
    def test_is_a_sink(self, tmp_path: Path) -> None:
        sink = self.build(tmp_path)
        assert isinstance(sink, Sink)
        assert inspect.iscoroutinefunction(sink.write)
        assert inspect.iscoroutinefunction(sink.flush)

    def test_empty_batch_writes_nothing(self, tmp_path: Path) -> None:
        sink = self.build(tmp_path)
        assert list(asyncio.run(sink.write([]))) == []


class SourceContract(ConnectorContract):
    def test_is_a_source(self, tmp_path: Path) -> None:
        source = self.build(tmp_path)
        assert isinstance(source, Source)
        assert inspect.iscoroutinefunction(source.run)
        assert inspect.iscoroutinefunction(source.stop)


def _make(base: type, cls: type, valid: dict[str, Any], invalid: dict[str, Any], **extra: Any) -> type:
    attrs: dict[str, Any] = {"connector": cls, "valid_config": valid, "invalid_config": invalid, **extra}
    if "factory" in attrs:
        attrs["factory"] = staticmethod(attrs["factory"])
    return type(f"Test{cls.__name__}Contract", (base,), attrs)


def sink_contract(
    cls: type, *, valid_config: dict[str, Any], invalid_config: dict[str, Any], **extra: Any
) -> type:
    """A pytest class running the sink contract against `cls`."""
    return _make(SinkContract, cls, valid_config, invalid_config, **extra)


def source_contract(
    cls: type, *, valid_config: dict[str, Any], invalid_config: dict[str, Any], **extra: Any
) -> type:
    """A pytest class running the source contract against `cls`."""
    return _make(SourceContract, cls, valid_config, invalid_config, **extra)
