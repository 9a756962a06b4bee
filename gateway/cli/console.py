"""`gateway console serve|add-user`: the operators' console (see gateway/console/)."""

from __future__ import annotations

import asyncio
import sys

import click

from gateway.settings import GatewaySettings

__all__ = ["console"]


@click.group("console")
def console() -> None:
    """The operators' console: flows, consumer groups, dead letters, audit lookup, in a browser."""


@console.command("add-user")
@click.argument("name")
@click.option("--role", type=click.Choice(["operateur", "auditeur"]), required=True)
@click.option("--replay", multiple=True, help="Dead-letter topics (shell pattern) this account may replay.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def add_user(name: str, role: str, replay: tuple[str, ...], password_stdin: bool) -> None:
    """Create or update a console account (argon2id hash in the 0600 accounts file)."""
    from gateway.console.accounts import write_account  # noqa: PLC0415

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 12:
        raise click.UsageError("the password needs at least 12 characters")
    path = GatewaySettings().console_accounts_path()
    write_account(path, name, role, password, list(replay))
    click.echo(f"account {name} ({role}) written to {path}")


@console.command("serve")
@click.option("--port", type=int, default=None, help="Port (default GATEWAY_CONSOLE_PORT, 6067).")
def serve(port: int | None) -> None:
    """Serve the console until Ctrl-C / SIGTERM; it samples the metrics and Kafka each minute."""
    from aiohttp import web  # noqa: PLC0415

    from gateway.console.accounts import Accounts  # noqa: PLC0415
    from gateway.console.app import Console, build_app  # noqa: PLC0415
    from gateway.console.history import History  # noqa: PLC0415

    settings = GatewaySettings()
    accounts = Accounts(settings.console_accounts_path())
    if not len(accounts):
        raise click.ClickException(
            f"no console account in {settings.console_accounts_path()}: create one with"
            " `gateway console add-user NAME --role operateur`"
        )
    history = History(settings.state_dir / "console" / "history.sqlite")
    app_console = Console(
        settings, accounts, history, settings.console_scrape_urls(), interval_s=settings.console_interval_s
    )
    app = build_app(app_console)

    async def start_collector(app: web.Application) -> None:
        app["collector"] = asyncio.create_task(app_console.run_collector())

    async def stop_collector(app: web.Application) -> None:
        app["collector"].cancel()
        history.close()

    app.on_startup.append(start_collector)
    app.on_cleanup.append(stop_collector)
    bind_port = port or settings.console_port
    click.echo(f"console: http://{settings.console_host}:{bind_port}/console/", err=True)
    web.run_app(app, host=settings.console_host, port=bind_port, print=None, access_log=None)
