"""Alembic environment. Runs as the owner role.

A caller that already holds a connection (the `caravan migrate` command, test fixtures) passes
it in `config.attributes["connection"]`; otherwise a URL is taken from
`config.attributes["url"]` or CARAVAN_MIGRATION_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from backend.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_url(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.attributes.get("url") or os.environ.get("CARAVAN_MIGRATION_DATABASE_URL")
    if not url:
        raise RuntimeError("no database to migrate: use `caravan migrate`")
    asyncio.run(_run_with_url(url))


if context.is_offline_mode():
    raise RuntimeError("offline migrations are not supported; run `caravan migrate`")
run_migrations_online()
