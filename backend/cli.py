"""The `caravan` command (also `python -m backend`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from backend.db.migrate import migrate
from backend.db.session import Database
from backend.db.target import DatabaseTarget, resolve_database
from backend.errors import CaravanError, ConfigurationError
from backend.settings import Settings

log = logging.getLogger("caravan")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="caravan", description="Caravan CRM")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API server")
    serve.add_argument("--host", help="default: CARAVAN_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, help="default: CARAVAN_PORT or 8000")
    serve.add_argument("--access-log", action="store_true", help="log every request (off)")

    commands.add_parser("migrate", help="upgrade the database schema (as the owner role)")

    tenant = commands.add_parser("tenant", help="tenant administration")
    tenant_cmds = tenant.add_subparsers(dest="action", required=True)
    tenant_create = tenant_cmds.add_parser("create", help="create a tenant and its first admin")
    tenant_create.add_argument("--name", required=True)
    tenant_create.add_argument("--slug", required=True)
    tenant_create.add_argument("--admin-email", required=True)
    tenant_create.add_argument("--admin-password", required=True)
    tenant_create.add_argument(
        "--no-admin-mfa",
        action="store_true",
        help="do not require MFA for the tenant's admins (development and test tenants)",
    )

    user = commands.add_parser("user", help="user administration")
    user_cmds = user.add_subparsers(dest="action", required=True)
    user_create = user_cmds.add_parser("create", help="create a user in a tenant")
    user_create.add_argument("--tenant", required=True, help="the tenant's slug")
    user_create.add_argument("--email", required=True)
    user_create.add_argument("--password", required=True)
    user_create.add_argument("--name")
    user_create.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="NAME",
        help="a role to give (repeatable; default: salesperson)",
    )

    keys = commands.add_parser("keys", help="the token-signing key ring")
    keys_cmds = keys.add_subparsers(dest="action", required=True)
    rotate = keys_cmds.add_parser(
        "rotate",
        help="add a signing key: published now, signing once every server has loaded it "
        "(about 35 s); the old key verifies until its tokens expire",
    )
    rotate.add_argument(
        "--now", action="store_true", help="sign with the new key at once (a compromised key)"
    )
    keys_cmds.add_parser("list", help="list the signing keys and until when they verify")

    _audit_parsers(commands)
    _export_parsers(commands)

    from backend.backups.commands import add_parsers as backup_parsers

    backup_parsers(commands)

    demo = commands.add_parser("demo", help="create a demo tenant with realistic data")
    demo.add_argument("--slug", default="demo")
    demo.add_argument("--email", default="admin@demo.example")
    demo.add_argument("--password", help="the admin's password (default: a random one)")
    demo.add_argument("--accounts", type=int, default=120, help="how many accounts (default 120)")
    demo.add_argument(
        "--reset", action="store_true", help="drop the demo tenant if it exists and seed it afresh"
    )
    return parser


def _audit_parsers(commands: Any) -> None:
    audit = commands.add_parser("audit", help="the tamper-evident history and audit chain")
    audit_cmds = audit.add_subparsers(dest="action", required=True)
    for name, text in (
        ("seal", "append committed history and audit rows to their tenant's chain"),
        ("checkpoint", "write signed chain-head checkpoints where backups go"),
        ("prune", "delete sealed rows past the tenant's retention (after a signed checkpoint)"),
    ):
        audit_cmds.add_parser(name, help=text).add_argument("--tenant", help="a tenant's slug")
    verify = audit_cmds.add_parser(
        "verify", help="recompute the chains; exit 1 and name the first tampered row if any"
    )
    verify.add_argument("--tenant", help="a tenant's slug (default: every tenant)")
    verify.add_argument("--max-unsealed-age", type=int, default=600, metavar="SECONDS")
    verify.add_argument("--json", action="store_true", help="print the full report as JSON")
    retention = audit_cmds.add_parser("retention", help="show or set a tenant's retention")
    retention.add_argument("--tenant", required=True)
    retention.add_argument("--history-days", metavar="DAYS|none")
    retention.add_argument("--audit-days", metavar="DAYS|none")

    history = commands.add_parser("history", help="change history administration")
    history_cmds = history.add_subparsers(dest="action", required=True)
    erase = history_cmds.add_parser(
        "erase", help="privacy erasure: redact a record's history values (the chain stays valid)"
    )
    erase.add_argument("--tenant", required=True)
    erase.add_argument("--entity", required=True)
    erase.add_argument("--record", required=True, metavar="ID")


def _export_parsers(commands: Any) -> None:
    export = commands.add_parser("export", help="exports: list them, trace a leaked file")
    export_cmds = export.add_subparsers(dest="action", required=True)
    listing = export_cmds.add_parser("list", help="every export (or one tenant's), newest first")
    listing.add_argument("--tenant", help="a tenant's slug (default: every tenant)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    trace = export_cmds.add_parser("trace", help="name the export a file came from (watermark)")
    trace.add_argument("file", metavar="FILE")
    sweep = export_cmds.add_parser("sweep", help="delete export files past their expiry")
    sweep.add_argument("--tenant", help="a tenant's slug (default: every tenant)")


async def _with_database(
    settings: Settings, work: Callable[[Database], Awaitable[Any]], *, migrate_first: bool = True
) -> Any:
    target = await resolve_database(settings)
    try:
        if migrate_first and target.embedded is not None:
            await _migrate(target)
        db = Database(target.app_url, pool_size=2)
        try:
            return await work(db)
        finally:
            await db.dispose()
    finally:
        target.release()


async def _migrate(target: DatabaseTarget) -> None:
    assert target.owner_url is not None
    await migrate(target.owner_url, target.app_role)


def _print_json(value: dict[str, Any]) -> None:
    print(json.dumps(value, indent=2, default=str))


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
            await _migrate(target)
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
            await _migrate(target)
        finally:
            target.release()

    asyncio.run(run())
    print("migrations are current")


def cmd_tenant(settings: Settings, args: argparse.Namespace) -> None:
    from backend.tenants.service import create_tenant

    async def work(db: Database) -> Any:
        return await create_tenant(
            db,
            name=args.name,
            slug=args.slug,
            admin_email=args.admin_email,
            admin_password=args.admin_password,
            require_admin_mfa=not args.no_admin_mfa,
        )

    created = asyncio.run(_with_database(settings, work))
    _print_json(
        {
            "tenant_id": created.tenant_id,
            "slug": created.slug,
            "admin_user_id": created.admin_user_id,
        }
    )


def cmd_user(settings: Settings, args: argparse.Namespace) -> None:
    from backend.tenants.service import create_user

    async def work(db: Database) -> Any:
        return await create_user(
            db,
            tenant_slug=args.tenant,
            email=args.email,
            password=args.password,
            name=args.name,
            roles=args.role,
        )

    user_id = asyncio.run(_with_database(settings, work))
    _print_json(
        {
            "user_id": user_id,
            "tenant": args.tenant,
            "email": args.email.lower(),
            "roles": args.role or ["salesperson"],
        }
    )


def cmd_keys(settings: Settings, args: argparse.Namespace) -> None:
    from backend.runtime import build_services

    async def run() -> Any:
        target = await resolve_database(settings)
        try:
            if target.embedded is not None:
                await _migrate(target)
            services = build_services(settings, target.app_url)
            try:
                if args.action == "rotate":
                    key, activates_at = await services.keys.rotate(now=args.now)
                    print(f"signing key {key.kid} signs from {activates_at}", file=sys.stderr)
                else:
                    await services.keys.load()
                return await services.keys.describe()
            finally:
                await services.db.dispose()
        finally:
            target.release()

    infos = asyncio.run(run())
    _print_json(
        {
            "keys": [
                {
                    "kid": info.kid,
                    "created_at": info.created_at,
                    "activates_at": info.activates_at,
                    "retired_at": info.retired_at,
                    "verifies_until": info.verifies_until,
                }
                for info in infos
            ]
        }
    )


def _with_services(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    from backend.runtime import build_services

    async def run() -> Any:
        target = await resolve_database(settings)
        try:
            if target.embedded is not None:
                await _migrate(target)
            services = build_services(settings, target.app_url)
            try:
                return await work(services)
            finally:
                await services.db.dispose()
        finally:
            target.release()

    return asyncio.run(run())


def cmd_audit(settings: Settings, args: argparse.Namespace) -> None:
    from backend.history import commands

    body, status = _with_services(settings, lambda services: commands.audit(services, args))
    if args.action == "verify" and not args.json:
        _print_findings(body)
    else:
        _print_json(body)
    if status:
        raise SystemExit(status)


def _print_findings(body: dict[str, Any]) -> None:
    for tenant in body["tenants"]:
        state = "ok" if tenant["ok"] else f"{len(tenant['findings'])} finding(s)"
        print(
            f"{tenant['slug']}: {tenant['seals_checked']} seals, head {tenant['head_seq']}, "
            f"{tenant['checkpoints']} checkpoints, {tenant['unsealed_pending']} pending: {state}"
        )
        for finding in tenant["findings"]:
            print(f"  {finding['problem']}: {finding['detail']}")


def cmd_history(settings: Settings, args: argparse.Namespace) -> None:
    from backend.history import commands

    body, _ = _with_services(settings, lambda services: commands.erase(services, args))
    _print_json(body)


def cmd_export(settings: Settings, args: argparse.Namespace) -> None:
    from backend.exports import commands

    run = {"list": commands.list_exports, "trace": commands.trace, "sweep": commands.sweep}
    body, status = _with_services(settings, lambda services: run[args.action](services, args))
    if args.action == "list" and not args.json:
        for item in body["exports"]:
            print(
                f"{item['tenant']}  {item['id']}  {item['status']:8} {item['entity']:12} "
                f"{item['format']:5} {item['row_count']:>7} rows  {item['requester_email']}  "
                f"{item['created_at']:%Y-%m-%d %H:%M}"
            )
    else:
        _print_json(body)
    if status:
        raise SystemExit(status)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> None:
    from backend.demo_command import cmd_demo as run

    run(settings, args)


def cmd_backup(settings: Settings, args: argparse.Namespace) -> None:
    from backend.backups.commands import cmd_backup as run

    run(settings, args)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> None:
    from backend.backups.commands import cmd_worker as run

    run(settings, args)


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], None]] = {
    "serve": cmd_serve,
    "migrate": cmd_migrate,
    "tenant": cmd_tenant,
    "user": cmd_user,
    "demo": cmd_demo,
    "keys": cmd_keys,
    "audit": cmd_audit,
    "history": cmd_history,
    "export": cmd_export,
    "backup": cmd_backup,
    "worker": cmd_worker,
}


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
        COMMANDS[args.command](settings, args)
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
