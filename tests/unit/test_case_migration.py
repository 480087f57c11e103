"""Upgrading to 0019_cases: tenants that predate it get the case lines of the built-in roles
(support agents work cases, marketing sees none), not only tenants created afterwards."""

from __future__ import annotations

import uuid

import asyncpg

from backend.db.ids import uuid7
from backend.db.migrate import migrate
from tests.conftest import Cluster


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def test_existing_tenants_get_the_case_rules(cluster: Cluster) -> None:
    urls = await cluster.pg.bootstrap(cluster.urls.port, database=f"cases_{uuid.uuid4().hex[:8]}")
    await migrate(urls.owner_url, "caravan_app", revision="0002")
    tenant = uuid7()
    owner = await asyncpg.connect(_dsn(urls.owner_url))
    try:
        async with owner.transaction():
            await owner.execute("select set_config('app.tenant_id', $1, true)", str(tenant))
            await owner.execute(
                "insert into tenants (id, name, slug) values ($1, 'Old', 'old-cases')", tenant
            )
        await migrate(urls.owner_url, "caravan_app", revision="0021_ops")
        async with owner.transaction():
            await owner.execute("select set_config('app.tenant_id', $1, true)", str(tenant))
            # As the tenant was before roles.toml knew cases.
            await owner.execute("delete from role_rules where object like 'case%'")
            version = await owner.fetchval("select policy_version from tenants")
        # Just this migration: later ones bump the policy version again for their own rules.
        await migrate(urls.owner_url, "caravan_app", revision="0019_cases")
        async with owner.transaction():
            await owner.execute("select set_config('app.tenant_id', $1, true)", str(tenant))
            rows = await owner.fetch(
                "select r.name, rr.effect, rr.object, rr.action from role_rules rr"
                " join roles r on r.tenant_id = rr.tenant_id and r.id = rr.role_id"
                " where rr.object like 'case%'"
            )
            bumped = await owner.fetchval("select policy_version from tenants")
            zone = await owner.fetchval("select time_zone from tenants")
    finally:
        await owner.close()
    lines = {(r["name"], r["effect"], r["object"], r["action"]) for r in rows}
    assert ("support_agent", "allow", "case", "update") in lines
    assert ("marketing", "deny", "case", "*") in lines
    assert ("salesperson", "deny", "case", "delete") in lines
    assert bumped == version + 1
    assert zone == "UTC"
