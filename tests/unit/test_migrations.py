"""Upgrading a database that already holds tenants: they get the built-in roles, their first
user becomes the tenant admin, everyone else a salesperson."""

from __future__ import annotations

import uuid

import asyncpg

from backend.db.ids import uuid7
from backend.db.migrate import migrate
from backend.policy.builtin import builtin_roles
from tests.conftest import Cluster


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def test_existing_tenants_get_roles_on_upgrade(cluster: Cluster) -> None:
    urls = await cluster.pg.bootstrap(cluster.urls.port, database=f"upgrade_{uuid.uuid4().hex[:8]}")
    await migrate(urls.owner_url, "caravan_app", revision="0002")
    tenant, first, second = uuid7(), uuid7(), uuid7()
    owner = await asyncpg.connect(_dsn(urls.owner_url))
    try:
        async with owner.transaction():
            await owner.execute("select set_config('app.tenant_id', $1, true)", str(tenant))
            await owner.execute(
                "insert into tenants (id, name, slug) values ($1, 'Old', 'old')", tenant
            )
        # The admin comes with the tenant; the others join in later transactions.
        for user_id, email in ((first, "first@old.example"), (second, "second@old.example")):
            async with owner.transaction():
                await owner.execute("select set_config('app.tenant_id', $1, true)", str(tenant))
                await owner.execute(
                    "insert into users (tenant_id, id, email, password_hash, created_at)"
                    " values ($1, $2, $3, 'x', clock_timestamp())",
                    tenant,
                    user_id,
                    email,
                )
        await migrate(urls.owner_url, "caravan_app")
        async with owner.transaction():
            await owner.execute("select set_config('app.tenant_id', $1, true)", str(tenant))
            names = {r["name"] for r in await owner.fetch("select name from roles")}
            held = {
                r["user_id"]: r["name"]
                for r in await owner.fetch(
                    "select ur.user_id, r.name from user_roles ur join roles r on r.id = ur.role_id"
                )
            }
            rules = await owner.fetchval("select count(*) from role_rules")
    finally:
        await owner.close()
    assert names == set(builtin_roles())
    assert held == {first: "tenant_admin", second: "salesperson"}
    assert rules == sum(len(r.rules) for r in builtin_roles().values())


async def test_phone_numbers_already_stored_are_indexed_on_upgrade(cluster: Cluster) -> None:
    urls = await cluster.pg.bootstrap(cluster.urls.port, database=f"phones_{uuid.uuid4().hex[:8]}")
    await migrate(urls.owner_url, "caravan_app", revision="0007")
    tenant, user, contact, account = uuid7(), uuid7(), uuid7(), uuid7()
    owner = await asyncpg.connect(_dsn(urls.owner_url))
    try:
        async with owner.transaction():
            await owner.execute("select set_config('app.tenant_id', $1, true)", str(tenant))
            await owner.execute(
                "insert into tenants (id, name, slug) values ($1, 'Old', 'old-phones')", tenant
            )
            await owner.execute(
                "insert into users (tenant_id, id, email, password_hash)"
                " values ($1, $2, 'u@old.example', 'x')",
                tenant,
                user,
            )
            await owner.execute(
                "insert into contacts (tenant_id, id, last_name, phone, mobile_phone, owner_id)"
                " values ($1, $2, 'Caller', '415-555-0100', 'not a number', $3)",
                tenant,
                contact,
                user,
            )
            await owner.execute(
                "insert into accounts (tenant_id, id, name, phone, owner_id)"
                " values ($1, $2, 'Acme', '+44 20 7946 0958', $3)",
                tenant,
                account,
                user,
            )
        await migrate(urls.owner_url, "caravan_app")
        async with owner.transaction():
            await owner.execute("select set_config('app.tenant_id', $1, true)", str(tenant))
            indexed = {
                (r["entity"], r["record_id"], r["field"], r["e164"])
                for r in await owner.fetch(
                    "select entity, record_id, field, e164 from phone_numbers"
                )
            }
    finally:
        await owner.close()
    assert indexed == {
        ("contact", contact, "phone", "+14155550100"),
        ("account", account, "phone", "+442079460958"),
    }
