"""Demo steps of the schema registry (a gateway.cli.demo DemoStep and its stop hook).

`step_registry` makes sure a registry answers (GATEWAY_SCHEMA_REGISTRY_URL, else the local Apicurio
Registry on http://127.0.0.1:8081/apis/ccompat/v7, started for the demo) and points the demo's
settings at it, so the worker, the SNE connector and the report use the Confluent wire format.
"""

from __future__ import annotations

from typing import Any

__all__ = ["step_registry", "stop_registry"]


def step_registry(ctx: Any) -> None:
    from gateway.cli.registry import ensure_local_registry  # noqa: PLC0415

    url, started = ensure_local_registry(ctx.settings, echo=False)
    ctx.started_registry = started
    ctx.settings = ctx.settings.model_copy(update={"schema_registry_url": url})
    ctx.say(f"schema registry on {url} ({'started for the demo' if started else 'already running'})")
    ctx.notes.append(
        f"schemas: browse {url}/subjects (subjects <topic>-<record name>), "
        f"a schema: {url}/schemas/ids/<id>; recipients decode with docs/recipients.md"
    )


def stop_registry(ctx: Any) -> None:
    if getattr(ctx, "started_registry", False):
        from gateway.cli.registry import stop_local_registry  # noqa: PLC0415

        if stop_local_registry(ctx.settings) is not None:
            ctx.say("schema registry stopped")
