"""`caravan backup run|list|verify|restore|prune|rotate-key` and `caravan worker`.

Every failure exits non-zero with one line on stderr (backend/cli.py prints CaravanError);
progress goes to stderr on a terminal; --json prints machine-readable results on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from backend.backups.errors import BackupError
from backend.backups.masterkey import LocalKeyFiles
from backend.backups.service import BackupService
from backend.commandline import Command, migrate_target
from backend.errors import CaravanError
from backend.settings import Settings

log = logging.getLogger("caravan.backups")


def _backup_arguments(backup: argparse.ArgumentParser) -> None:
    actions = backup.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="take a backup now (full, or one tenant)")
    run.add_argument("--tenant", metavar="SLUG", help="back up one tenant only")
    run.add_argument("--json", action="store_true")
    listing = actions.add_parser("list", help="list the backups in the store")
    listing.add_argument("--json", action="store_true")
    verify = actions.add_parser(
        "verify", help="prove a backup restorable: a restore drill into a scratch database"
    )
    verify.add_argument("id")
    verify.add_argument("--json", action="store_true")
    restore = actions.add_parser(
        "restore", help="verify, then restore a backup (the whole database or one tenant)"
    )
    restore.add_argument("id")
    restore.add_argument("--tenant", metavar="SLUG", help="the tenant a tenant backup is of")
    restore.add_argument(
        "--as-new-tenant", metavar="SLUG", help="load a tenant backup as a new tenant"
    )
    restore.add_argument("--target-database", metavar="URL", help="restore into this database")
    restore.add_argument("--json", action="store_true")
    prune = actions.add_parser("prune", help="delete backups the retention policy drops")
    prune.add_argument("--json", action="store_true")
    actions.add_parser("rotate-key", help="add a new local master key (old ones are kept)")


def _worker_arguments(worker: argparse.ArgumentParser) -> None:
    worker.add_argument("--once", action="store_true", help="one backup and prune, then exit")


async def _with_backups(settings: Settings, work: Callable[[BackupService], Awaitable[Any]]) -> Any:
    from backend.backups.config import build_backups
    from backend.db.session import Database
    from backend.db.target import resolve_database

    target = await resolve_database(settings)
    try:
        if target.embedded is not None:
            await migrate_target(target)
        db = Database(
            target.app_url,
            pool_size=2,
            pgbouncer=settings.db_pgbouncer,
            listen_url=settings.listen_database_url,
        )
        try:
            return await work(build_backups(settings, target, db))
        finally:
            await db.dispose()
    finally:
        target.release()


class _Bar:
    """Bytes processed, on one stderr line, only on a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.on = sys.stderr.isatty()
        self.last = 0

    def __call__(self, done: int) -> None:
        if self.on and done - self.last >= 4 << 20:
            self.last = done
            print(f"\r{self.label}: {done / (1 << 20):8.1f} MiB", end="", file=sys.stderr)

    def end(self) -> None:
        if self.on and self.last:
            print(file=sys.stderr)


def _out(args: argparse.Namespace, body: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(body, indent=2, default=str))
    else:
        print(text)


def cmd_backup(settings: Settings, args: argparse.Namespace) -> None:
    if args.action == "rotate-key":
        if settings.backup_kms_key_id:
            raise BackupError("KMS keys rotate in KMS; rotate-key adds local key files only")
        key_id = LocalKeyFiles(settings.data_dir / "backup-keys").rotate()
        print(f"new backups are wrapped by {key_id}; older keys are kept")
        return
    try:
        status = asyncio.run(_with_backups(settings, lambda s: _backup(s, args)))
    except CaravanError:
        raise
    except Exception as exc:  # one clear line, never a stack trace
        raise BackupError(f"{type(exc).__name__}: {exc}") from exc
    if status:
        raise SystemExit(status)


async def _backup(service: BackupService, args: argparse.Namespace) -> int:
    if args.action == "run":
        bar = _Bar("backing up")
        manifest = await service.run(args.tenant, bar)
        bar.end()
        _out(
            args,
            manifest.as_dict(),
            f"backup {manifest.id}: {manifest.kind}, {manifest.ciphertext_bytes} bytes "
            f"encrypted, stored in {service.config.store.description}",
        )
        return 0
    if args.action == "list":
        manifests = await service.list_backups()
        lines = [
            f"{m.id}  {m.kind:6}  {m.tenant_slug or '-':20}  {m.ciphertext_bytes:>12} bytes"
            for m in manifests
        ]
        _out(args, [m.as_dict() for m in manifests], "\n".join(lines) or "no backups")
        return 0
    if args.action == "prune":
        pruned = await service.prune()
        _out(
            args,
            pruned,
            f"kept {len(pruned['kept'])}, deleted {len(pruned['deleted'])}, "
            f"locked {len(pruned['locked'])}",
        )
        return 0
    if args.action == "verify":
        result = await service.verify(args.id)
    else:
        result = await service.restore(
            args.id,
            tenant=args.tenant,
            as_new_tenant=args.as_new_tenant,
            target_database=args.target_database,
        )
    ok = result.tables_match and result.chain_ok is not False
    verb = "verified" if args.action == "verify" else "restored"
    chain = {True: "history chain verifies", False: "HISTORY CHAIN BROKEN", None: "chain n/a"}
    _out(
        args,
        result.as_dict(),
        f"backup {result.backup_id} {verb} into {result.target}: "
        + ("every table matches its manifest" if result.tables_match else "TABLES DIFFER: ")
        + "; ".join(result.mismatches)
        + f"; {chain[result.chain_ok]}",
    )
    if not ok:
        print(
            f"caravan: backup_mismatch: backup {result.backup_id} {verb} with differences",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> None:
    from backend.backups.scheduler import BackupScheduler

    async def work(service: BackupService) -> None:
        scheduler = BackupScheduler(
            service, settings.backup_interval_seconds, tenants=settings.backup_tenants
        )
        if args.once:
            if await scheduler.tick() is None:
                raise BackupError("another process holds the backup lock")
            return
        await scheduler.start()
        assert scheduler._task is not None
        await scheduler._task

    try:
        asyncio.run(_with_backups(settings, work))
    except CaravanError:
        raise
    except Exception as exc:
        raise BackupError(f"{type(exc).__name__}: {exc}") from exc


COMMANDS = (
    Command(
        "backup", "encrypted backups: run, list, verify, restore", cmd_backup, _backup_arguments
    ),
    Command("worker", "run scheduled backups in this process", cmd_worker, _worker_arguments),
)
