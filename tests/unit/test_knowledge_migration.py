"""Migration 0020_knowledge gives tenants that predate it the new rules of their built-in
roles (skipping rules a role already holds), and bumps their policy version."""

from __future__ import annotations

import uuid

import asyncpg

from backend.db.ids import uuid7
from backend.db.migrate import migrate
from tests.conftest import Cluster


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def test_earlier_tenants_get_the_knowledge_rules(cluster: Cluster) -> None:
    urls = await cluster.pg.bootstrap(cluster.urls.port, database=f"kb_{uuid.uuid4().hex[:8]}")
    await migrate(urls.owner_url, "caravan_app", revision="0019_cases")
    tenant = uuid7()
    owner = await asyncpg.connect(_dsn(urls.owner_url))
    try:
        async with owner.transaction():
            await owner.execute("select set_config('app.tenant_id', $1, true)", str(tenant))
            await owner.execute(
                "insert into tenants (id, name, slug) values ($1, 'Old', 'old')", tenant
            )
            await owner.execute(
                "insert into roles (tenant_id, id, name, description, builtin)"
                " values ($1, $2, 'support_agent', 'd', true), ($1, $3, 'marketing', 'd', true)",
                tenant,
                uuid7(),
                uuid7(),
            )
            # One rule already held: not added twice.
            await owner.execute(
                "insert into role_rules (tenant_id, id, role_id, effect, object, action)"
                " select $1, $2, id, 'allow', 'script_run', 'create' from roles"
                " where name = 'support_agent'",
                tenant,
                uuid7(),
            )
            before = await owner.fetchval(
                "select policy_version from tenants where id = $1", tenant
            )
        await migrate(urls.owner_url, "caravan_app", revision="0020_knowledge")
        async with owner.transaction():
            await owner.execute("select set_config('app.tenant_id', $1, true)", str(tenant))
            rules = await owner.fetch(
                "select r.name, x.effect, x.object, x.action from role_rules x"
                " join roles r on r.id = x.role_id and r.tenant_id = x.tenant_id"
            )
            after = await owner.fetchval("select policy_version from tenants where id = $1", tenant)
    finally:
        await owner.close()
    got = sorted((r["name"], r["effect"], r["object"], r["action"]) for r in rules)
    assert got == sorted(
        [
            ("marketing", "allow", "article.public", "create"),
            ("marketing", "allow", "article.public", "update"),
            ("support_agent", "allow", "article.*", "create"),
            ("support_agent", "allow", "article.*", "update"),
            ("support_agent", "allow", "call_script", "create"),
            ("support_agent", "allow", "call_script", "update"),
            ("support_agent", "allow", "script_run", "create"),
        ]
    )
    assert after == before + 1
