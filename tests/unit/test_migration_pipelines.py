"""Upgrading a database that already holds tenants and opportunities to pipelines: each tenant
gets the default pipeline, each opportunity the stage of its `stage` string and one open stay,
and the built-in salesperson role may no longer edit pipelines."""

from __future__ import annotations

import uuid

import asyncpg

from backend.db.ids import uuid7
from backend.db.migrate import migrate
from tests.conftest import Cluster


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def test_existing_opportunities_get_the_default_pipeline(cluster: Cluster) -> None:
    urls = await cluster.pg.bootstrap(cluster.urls.port, database=f"pipes_{uuid.uuid4().hex[:8]}")
    await migrate(urls.owner_url, "caravan_app", revision="0003")
    tenant, admin, deal = uuid7(), uuid7(), uuid7()
    owner = await asyncpg.connect(_dsn(urls.owner_url))
    try:
        async with owner.transaction():
            await owner.execute("select set_config('app.tenant_id', $1, true)", str(tenant))
            await owner.execute(
                "insert into tenants (id, name, slug) values ($1, 'Old', 'old-pipes')", tenant
            )
            await owner.execute(
                "insert into users (tenant_id, id, email, password_hash)"
                " values ($1, $2, 'a@old.example', 'x')",
                tenant,
                admin,
            )
        await migrate(urls.owner_url, "caravan_app", revision="0022_team_nesting")
        async with owner.transaction():
            await owner.execute("select set_config('app.tenant_id', $1, true)", str(tenant))
            await owner.execute(
                "insert into opportunities (tenant_id, id, name, stage, close_date, owner_id)"
                " values ($1, $2, 'Old deal', 'negotiation', '2026-02-01', $3)",
                tenant,
                deal,
                admin,
            )
            version = await owner.fetchval("select policy_version from tenants")
        # Just this migration: later ones bump the policy version again for their own rules.
        await migrate(urls.owner_url, "caravan_app", revision="0014_pipelines")
        async with owner.transaction():
            await owner.execute("select set_config('app.tenant_id', $1, true)", str(tenant))
            stages = await owner.fetch(
                "select s.name, s.kind, s.probability from pipeline_stages s"
                " join pipelines p on p.id = s.pipeline_id where p.is_default order by s.position"
            )
            row = await owner.fetchrow(
                "select o.stage, s.name, o.pipeline_id = s.pipeline_id as same from opportunities o"
                " join pipeline_stages s on s.id = o.stage_id"
            )
            stays = await owner.fetch("select stage_id, left_at from opportunity_stages")
            denied = await owner.fetch(
                "select rr.action from role_rules rr join roles r on r.id = rr.role_id"
                " where r.name = 'salesperson' and rr.object = 'pipeline' and rr.effect = 'deny'"
            )
            bumped = await owner.fetchval("select policy_version from tenants")
    finally:
        await owner.close()
    assert [(s["name"], s["kind"], s["probability"]) for s in stages] == [
        ("prospecting", "open", 10),
        ("qualification", "open", 20),
        ("proposal", "open", 50),
        ("negotiation", "open", 80),
        ("closed_won", "won", 100),
        ("closed_lost", "lost", 0),
    ]
    assert row is not None and (row["stage"], row["name"], row["same"]) == (
        "negotiation",
        "negotiation",
        True,
    )
    assert len(stays) == 1 and stays[0]["left_at"] is None
    assert sorted(r["action"] for r in denied) == ["create", "delete", "update"]
    assert bumped == version + 1
