"""What every `caravan` command is made of, and the ways a command reaches the database.

Each package with commands exposes them the same way: `COMMANDS`, a tuple of `Command` in its
`commands` module (backend/tenants, auth, history, exports, backups); backend/cli.py adds
every one to the parser in one loop and runs the one named.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backend.db.migrate import migrate
from backend.db.session import Database
from backend.db.target import DatabaseTarget, resolve_database
from backend.settings import Settings

if TYPE_CHECKING:
    from backend.runtime import Services

Run = Callable[[Settings, argparse.Namespace], None]


def no_arguments(_: argparse.ArgumentParser) -> None:
    pass


@dataclass(frozen=True)
class Command:
    """`caravan <name>`: its one-line help, the arguments it takes, and what runs it."""

    name: str
    help: str
    run: Run
    arguments: Callable[[argparse.ArgumentParser], None] = no_arguments


async def migrate_target(target: DatabaseTarget) -> None:
    assert target.owner_url is not None
    await migrate(target.owner_url, target.app_role)


async def with_database(
    settings: Settings, work: Callable[[Database], Awaitable[Any]], *, migrate_first: bool = True
) -> Any:
    """`work` on a small pool of the configured database (migrated first if embedded)."""
    target = await resolve_database(settings)
    try:
        if migrate_first and target.embedded is not None:
            await migrate_target(target)
        db = Database(
            target.app_url,
            pool_size=2,
            pgbouncer=settings.db_pgbouncer,
            listen_url=settings.listen_database_url,
        )
        try:
            return await work(db)
        finally:
            await db.dispose()
    finally:
        target.release()


def with_services(settings: Settings, work: Callable[[Services], Awaitable[Any]]) -> Any:
    """`work` with the services a server process holds (its read hooks installed too)."""
    from backend.runtime import build_services

    async def run() -> Any:
        target = await resolve_database(settings)
        try:
            if target.embedded is not None:
                await migrate_target(target)
            services = build_services(settings, target.app_url)
            try:
                return await work(services)
            finally:
                await services.db.dispose()
        finally:
            target.release()

    return asyncio.run(run())


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))
