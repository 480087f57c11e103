"""The schema keeps the two locks on tenant data: every tenant table is RLS-protected, and
every key that could cross tenants includes tenant_id (also what Citus distribution needs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from backend.db.models import TENANT_TABLES, Base
from tests.conftest import Cluster

GLOBAL_TABLES = {
    "tenants",
    "alembic_version",
    # One issuer signs every tenant's tokens and publishes one JWKS; private keys are sealed
    # with CARAVAN_SECRET_KEY and the app role may only SELECT and INSERT (never rewrite a key).
    "signing_keys",
    # Brute-force counters must also count attempts against tenants and emails that do not
    # exist (or the answers would differ) and per source address across tenants. They hold
    # only SHA-256 keys and counters.
    "auth_throttle",
    # Revoked sessions and tokens (opaque random ids and times): every server process keeps
    # the recent rows of all tenants in memory to refuse revoked access tokens at once.
    "token_revocations",
}


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture
async def owner(cluster: Cluster) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(_dsn(cluster.urls.owner_url))
    yield conn
    await conn.close()


async def test_every_table_is_a_declared_tenant_table(owner: asyncpg.Connection) -> None:
    tables = {
        r["tablename"]
        for r in await owner.fetch("select tablename from pg_tables where schemaname = 'public'")
    }
    assert tables - GLOBAL_TABLES == set(TENANT_TABLES)


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_tenant_table_has_forced_rls_with_both_clauses(
    owner: asyncpg.Connection, table: str
) -> None:
    row = await owner.fetchrow(
        "select relrowsecurity, relforcerowsecurity from pg_class where relname = $1", table
    )
    assert row is not None
    assert row["relrowsecurity"] and row["relforcerowsecurity"]
    policies = await owner.fetch(
        "select qual, with_check, cmd from pg_policies where tablename = $1", table
    )
    assert len(policies) == 1
    policy = policies[0]
    assert policy["cmd"] == "ALL"
    for clause in (policy["qual"], policy["with_check"]):
        assert "tenant_id" in clause and "current_setting('app.tenant_id'" in clause


async def _constraints(owner: asyncpg.Connection, table: str, kind: str) -> list[dict[str, Any]]:
    rows = await owner.fetch(
        """
        select c.conname,
               array(select a.attname from unnest(c.conkey) with ordinality k(n, i)
                     join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n
                     order by k.i) as columns,
               c.confrelid::regclass::text as target
        from pg_constraint c where c.conrelid = $1::regclass and c.contype = $2::text::"char"
        """,
        table,
        kind,
    )
    return [dict(r) for r in rows]


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_keys_include_tenant_id(owner: asyncpg.Connection, table: str) -> None:
    (primary,) = await _constraints(owner, table, "p")
    assert primary["columns"] == ["tenant_id", "id"]
    for unique in await _constraints(owner, table, "u"):
        assert unique["columns"][0] == "tenant_id", unique
    foreign = await _constraints(owner, table, "f")
    assert foreign, "a tenant table references its tenant"
    for fk in foreign:
        assert fk["columns"][0] == "tenant_id", fk


async def test_models_match_migrations(cluster: Cluster) -> None:
    engine = create_async_engine(cluster.urls.owner_url)
    try:
        async with engine.connect() as conn:
            diffs = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert diffs == []
