"""The `caravan` command (also `python -m backend`).

Every command is a `Command` (backend/commandline.py): `serve` and `migrate` here, the others
in their package's `commands` module; `_parser` adds them all in one loop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any, TextIO

from backend.auth import commands as auth_commands
from backend.backups import commands as backup_commands
from backend.commandline import Command, migrate_target
from backend.crm.cases import commands as case_commands
from backend.db.session import Database
from backend.db.target import DatabaseTarget, resolve_database
from backend.errors import CaravanError, ConfigurationError
from backend.exports import commands as export_commands
from backend.history import commands as history_commands
from backend.settings import Settings
from backend.tenants import commands as tenant_commands

log = logging.getLogger("caravan")


class _Shutdown(Exception):
    pass


def _raise_shutdown(signum: int, frame: object) -> None:
    raise _Shutdown


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    from backend.app import create_app
    from backend.runtime import build_services

    # The issuer and every discovery URL follow CARAVAN_PUBLIC_URL, or else this bound address.
    settings = settings.serving_on(args.host or settings.host, args.port or settings.port)

    async def prepare() -> DatabaseTarget:
        target = await resolve_database(settings)
        if target.embedded is not None:
            await migrate_target(target)
        return target

    target = asyncio.run(prepare())
    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal to the
    # handler that was installed before it: make that handler unwind the stack, so the
    # embedded PostgreSQL this process started is stopped below.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _raise_shutdown)
    try:
        services = build_services(settings, target.app_url)
        if settings.backups_scheduled:
            from backend.backups.config import build_backups

            services.backups = build_backups(settings, target, services.db)
        app = create_app(services)
        _serve(app, settings, services.db, target.where(), access_log=args.access_log)
    except _Shutdown:
        log.info("stopped")
    finally:
        target.release()


def _serve(app: Any, settings: Settings, db: Database, where: str, *, access_log: bool) -> None:
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        """Says whether it is ready, once the socket is bound (uvicorn's startup lines are off):
        the public URL, and where the database is (never its password)."""

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.should_exit:
                return
            state = await _schema_state(db)
            listening = f"listening on {settings.host}:{settings.port}"
            if state == "migrated":
                log.info(
                    "ready: %s (%s); database: %s, migrated; stop with Ctrl-C",
                    settings.issuer,
                    listening,
                    where,
                )
            else:
                log.warning(
                    "NOT ready: %s (%s); database: %s, %s; /ready answers 503",
                    settings.issuer,
                    listening,
                    where,
                    state,
                )

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        # No access log unless asked for: a log line per request is CPU spent on every request.
        # uvicorn's level covers its access log too, so its startup lines come with that log.
        log_level="info" if access_log else "warning",
        access_log=access_log,
        proxy_headers=False,
        server_header=False,  # no product banner (backend/api/hygiene.py)
    )
    AnnouncingServer(config).run()


async def _schema_state(db: Database) -> str:
    """What /ready would say about the database: migrated, not migrated, or unreachable."""
    from backend.db.migrate import current_revisions, head_revisions

    try:
        async with db.plain_transaction() as conn:
            current = await current_revisions(conn)
    except Exception:  # noqa: BLE001 - any failure to reach the database means "not ready"
        return "unreachable"
    if current != head_revisions():
        return "not migrated (run `caravan migrate` as the owner role)"
    return "migrated"


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> None:
    async def run() -> None:
        target = await resolve_database(settings)
        try:
            await migrate_target(target)
        finally:
            target.release()

    asyncio.run(run())
    print("migrations are current")


def _serve_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--host", help="default: CARAVAN_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, help="default: CARAVAN_PORT or 8000")
    serve.add_argument("--access-log", action="store_true", help="log every request (off)")


COMMANDS: tuple[Command, ...] = (
    Command("serve", "run the API server", cmd_serve, _serve_arguments),
    Command("migrate", "upgrade the database schema (as the owner role)", cmd_migrate),
    *tenant_commands.COMMANDS,
    *auth_commands.COMMANDS,
    *history_commands.COMMANDS,
    *export_commands.COMMANDS,
    *backup_commands.COMMANDS,
    *case_commands.COMMANDS,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="caravan", description="Caravan CRM")
    subcommands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.arguments(subcommands.add_parser(command.name, help=command.help))
    return parser


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Logs to whatever sys.stderr is when a record is written, not the one at start-up (an
    embedding caller, or a test capturing output, may swap and close it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


# Commands that run until stopped log what they do; every other command prints its result and
# keeps stderr for warnings and errors (no Alembic or Casbin chatter).
LONG_RUNNING = ("serve", "worker")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[_CurrentStderr()],
    )
    if args.command in LONG_RUNNING:
        logging.getLogger("caravan").setLevel(logging.INFO)
    # Their INFO lines are internals (each migration step, the Casbin model), even where the app's
    # logging config lowers the root level (Litestar does, in `serve`).
    for chatty in ("alembic", "casbin"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        settings = Settings.from_env()
        {c.name: c.run for c in COMMANDS}[args.command](settings, args)
    except ConfigurationError as exc:
        print(f"caravan: configuration error: {exc}", file=sys.stderr)
        return 78  # EX_CONFIG
    except CaravanError as exc:
        where = f" ({exc.field})" if exc.field else ""
        print(f"caravan: {exc.code}{where}: {exc.detail}", file=sys.stderr)
        return 2 if exc.status < 500 else 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
