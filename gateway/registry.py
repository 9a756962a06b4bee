"""Entry-point discovery of connectors (group `gateway.connectors`), loaded lazily by short name."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from gateway.connectors import Sink, Source
from gateway.errors import ConfigError, Problem

__all__ = ["GROUP", "available", "build", "load"]

GROUP = "gateway.connectors"


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available() -> list[str]:
    return sorted(_entry_points())


def load(name: str) -> Any:
    """The connector class registered under `name`; ConfigError naming the known ones otherwise."""
    eps = _entry_points()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise ConfigError(f"unknown connector {name!r} (installed: {known})")
    try:
        return eps[name].load()
    except ImportError as exc:
        raise ConfigError(
            f"connector {name!r} cannot be imported ({exc}); "
            f"install its extra: pip install 'gp-gateway[{name}]'"
        ) from exc


def build(name: str, config: Mapping[str, Any]) -> Any:
    """Instantiate connector `name` with a validated config; every config error reported at once."""
    cls = load(name)
    try:
        cfg = cls.Config.model_validate(dict(config))
    except ValidationError as exc:
        problems = [Problem(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise ConfigError(f"invalid config for connector {name!r}", problems) from exc
    connector = cls(cfg)
    _check_interface(name, connector)
    return connector


_SINK_MEMBERS: tuple[str, ...] = ("name", "Config", "guarantee", "reads", "check", "write", "flush")
_SINK_MEMBERS += ("open", "resume_offsets", "tick", "outputs_for_rejection", "erases", "erase")
_SINK_MEMBERS += ("batch_size", "renderer", "headers_in_write")


def _check_interface(name: str, connector: Any) -> None:
    """A connector must be a Source or a Sink; a sink that does not subclass gateway.Sink misses the
    optional hooks' defaults: say which members are missing."""
    if isinstance(connector, Source | Sink):
        return
    if hasattr(connector, "write"):
        missing = [m for m in _SINK_MEMBERS if not hasattr(connector, m)]
        raise ConfigError(
            f"connector {name!r} is not a gateway.Sink (missing {', '.join(missing)}): "
            "subclass gateway.Sink to inherit the optional hooks"
        )
    raise ConfigError(f"connector {name!r} is neither a gateway.Source nor a gateway.Sink")
