"""Running Alembic migrations from code, and checking whether the schema is current."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

ROOT = Path(__file__).resolve().parents[2]


def alembic_config() -> Config:
    config = Config(str(ROOT / "alembic.ini")) if (ROOT / "alembic.ini").exists() else Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return config


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


async def migrate(owner_url: str, app_role: str, revision: str = "heads") -> None:
    """Upgrade the schema as the owner role, granting the app role its table rights."""
    engine = create_async_engine(owner_url)
    try:
        async with engine.connect() as conn:

            def upgrade(sync_conn: Connection) -> None:
                config = alembic_config()
                config.attributes["connection"] = sync_conn
                config.attributes["app_role"] = app_role
                command.upgrade(config, revision)

            await conn.run_sync(upgrade)
            await conn.commit()
    finally:
        await engine.dispose()


async def current_revisions(conn: AsyncConnection) -> set[str]:
    result = await conn.execute(text("select version_num from alembic_version"))
    return set(result.scalars().all())
