"""`gateway` command line. Each command group lives in its own module, imported only when used.

Errors reach the user as one clear message and exit code (2 rejected input / bad usage, 1 other
gateway errors), never as a traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from gateway.errors import ConfigError, GatewayError, RejectedMessage

__all__ = ["main"]

# command name -> "module:attribute" (a click command or group)
COMMANDS: dict[str, str] = {
    "normalise": "gateway.cli.normalise:normalise",
    "schemas": "gateway.cli.schemas:schemas",
    "broker": "gateway.cli.broker:broker",
    "registry": "gateway.cli.registry:registry",
    "run": "gateway.cli.run:run",
    "demo": "gateway.cli.demo:demo",
    "dlq": "gateway.cli.dlq:dlq",
    "connectors": "gateway.cli.connectors:connectors",
    "policy": "gateway.cli.policy:policy",
    "audit": "gateway.cli.audit:audit",
    "sne": "gateway.cli.sne:sne",
    "cotation": "gateway.cli.cotation:cotation",
    "report": "gateway.cli.report:report",
    "console": "gateway.cli.console:console",
    "acl": "gateway.cli.acl:acl",
    "actors": "gateway.cli.actors:actors",
    "signals": "gateway.cli.signals:signals",
    "retention": "gateway.cli.retention:retention",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


QUIET_LOGGERS = ("kafka", "aiokafka")


@click.group(cls=LazyGroup)
@click.option("--log-level", default="WARNING", show_default=True, help="Python log level.")
def cli(log_level: str) -> None:
    """gp-gateway: share social-housing applications between the actors of the gestion partagée."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from gateway.monitoring.logs import install_log_filters  # noqa: PLC0415

    # records (and crash reports) without what library messages quote; client libraries log every
    # failed reconnect: one line per backoff window
    install_log_filters()
    # the Kafka clients log whole records (keys, values, headers) at DEBUG: payloads hold health and
    # income data, so their loggers never go below INFO, whatever --log-level says
    for name in QUIET_LOGGERS:
        client_log = logging.getLogger(name)
        if client_log.getEffectiveLevel() < logging.INFO:
            client_log.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> Any:
    from pydantic import ValidationError  # noqa: PLC0415 - loaded by every command anyway

    try:
        return cli.main(args=argv, prog_name="gateway", standalone_mode=False)
    except ValidationError as exc:  # GATEWAY_* settings: field and reason, never the value given
        lines = [f"  - {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        click.echo("\n".join([f"configuration error: invalid {exc.title}", *lines]), err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RejectedMessage as exc:
        click.echo(f"rejected: {exc}", err=True)
        sys.exit(2)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    except GatewayError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - a defect: where it happened, never what it quotes
        from gateway.monitoring.redact import safe_traceback  # noqa: PLC0415

        click.echo(f"internal error (a defect: please report it)\n{safe_traceback(exc)}", err=True)
        sys.exit(70)
