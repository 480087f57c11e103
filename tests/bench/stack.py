"""Everything one benchmark run stands on: the embedded PostgreSQL (migrated), tenants A and B
with signed-in users, seeded rows, the product and baseline servers, and the growth steps."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event

from backend.db.embedded import EmbeddedPostgres
from backend.db.migrate import migrate
from backend.runtime import Services, build_services
from backend.settings import Settings
from backend.tenants.service import create_tenant, create_user
from tests.bench import seed
from tests.bench.baseline_app import GET_ONE, PAGE, connect_dsn
from tests.bench.dbstate import DbState
from tests.bench.harness import Harness, Timing
from tests.bench.inprocess import PASSWORD, lift_read_limits, sign_in
from tests.bench.measure import postmaster_pid
from tests.bench.servers import BASELINE, PRODUCT, Server, launch, wait_ready

TOKEN_TTL = 7200  # one token per user lasts the whole run


@dataclass(frozen=True)
class Sizes:
    rows: int  # tenant A's rows at the base step
    other_rows: int  # held by the other tenants, Zipf-skewed
    tenants: tuple[int, int]  # tenant axis: few -> many, same total rows
    row_steps: tuple[int, ...]  # tenant A grows to these
    export_rows: int
    drift_requests: int
    sample_ids: int


SMOKE_SIZES = Sizes(300, 700, (10, 100), (2_000,), 1_000, 100, 50)
FULL_SIZES = Sizes(10_000, 90_000, (10, 10_000), (100_000, 1_000_000), 100_000, 10_000, 1_000)


@dataclass
class Stack:
    harness: Harness
    pg: EmbeddedPostgres
    data_dir: Path
    services: Services
    superuser_dsn: str
    app_dsn: str
    b0_pool: asyncpg.Pool
    product: Server
    baseline: Server
    server_kind: str
    tenant_a: uuid.UUID
    rep_a: uuid.UUID
    tenant_b: uuid.UUID
    rep_headers: dict[str, str]
    admin_headers: dict[str, str]
    b_headers: dict[str, str]
    alt_product: Server | None = None
    alt_kind: str = ""
    sample_ids: list[uuid.UUID] = field(default_factory=list)
    bulk_tenants: list[uuid.UUID] = field(default_factory=list)

    @asynccontextmanager
    async def superuser(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await asyncpg.connect(self.superuser_dsn)
        try:
            yield conn
        finally:
            await conn.close()

    async def refresh_sample(self, count: int) -> None:
        async with self.superuser() as conn:
            rows = await conn.fetch(
                "SELECT id FROM contacts WHERE tenant_id = $1 AND owner_id = $2"
                " AND account_id IS NULL ORDER BY random() LIMIT $3",
                self.tenant_a,
                self.rep_a,
                count,
            )
        self.sample_ids = [r["id"] for r in rows]

    async def count_statements(self, *queries: str) -> list[int]:
        """SQL statements the product sends per GraphQL query (a hook on its engine, in this
        process: pg_stat_statements needs a preload the embedded cluster does not have)."""
        from backend.app import create_app

        counted = [0]

        def count(*_: Any) -> None:
            counted[0] += 1

        engine = self.services.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        app = create_app(self.services)
        found: list[int] = []
        try:
            transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                # Once uncounted: the first request loads the key ring and the policy.
                await client.post("/graphql", json={"query": queries[0]}, headers=self.rep_headers)
                for query in queries:
                    counted[0] = 0
                    got = await client.post(
                        "/graphql", json={"query": query}, headers=self.rep_headers
                    )
                    assert got.status_code == 200 and not got.json().get("errors"), got.text
                    found.append(counted[0])
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return found

    async def explain(self) -> dict[str, str]:
        """Plans of the get-by-id and page reads as the app role under RLS: a Seq Scan on
        contacts where an index scan is expected is a plan regression."""
        conn = await asyncpg.connect(connect_dsn(self.app_dsn))
        plans: dict[str, str] = {}
        try:
            async with conn.transaction():
                await conn.execute(
                    "SELECT set_config('app.tenant_id', $1, true)", str(self.tenant_a)
                )
                key = self.sample_ids[0]
                for name, sql, args in (
                    ("get by id", GET_ONE, (self.tenant_a, key)),
                    ("page of 50", PAGE, (self.tenant_a, self.rep_a, 50)),
                ):
                    plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
                    plans[name] = _scans(plan)
                # The product's reads under a salesperson's scope as prepared statements run
                # them once they switch to the generic plan (asyncpg prepares every statement):
                # planned without the values, executed with them.
                await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                for name, sql, values in (
                    (
                        "get by id, generic plan",
                        "SELECT id FROM contacts WHERE tenant_id = $1 AND owner_id = $2"
                        " AND id = $3",
                        f"'{self.tenant_a}', '{self.rep_a}', '{key}'",
                    ),
                    (
                        "page of 50, generic plan",
                        "SELECT id FROM contacts WHERE tenant_id = $1 AND owner_id = $2"
                        " ORDER BY id LIMIT $3",
                        f"'{self.tenant_a}', '{self.rep_a}', 51",
                    ),
                ):
                    await conn.execute(f"PREPARE bench_q AS {sql}")
                    plan = await conn.fetchval(
                        f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE bench_q({values})"
                    )
                    await conn.execute("DEALLOCATE bench_q")
                    parsed = json.loads(plan) if isinstance(plan, str) else plan
                    ms = parsed[0].get("Execution Time", 0.0)
                    plans[name] = f"{_scans(plan)} ({ms:.2f} ms)"
        finally:
            await conn.close()
        return plans

    async def grow_rows(self, target: int) -> int:
        async with self.superuser() as conn:
            have = await seed.count_contacts(conn, self.tenant_a)
            if target > have:
                await seed.add_contacts(conn, self.tenant_a, self.rep_a, target - have, "g")
            count = await seed.count_contacts(conn, self.tenant_a)
        await self.settle()
        return count

    async def settle(self) -> None:
        """After any seeding: vacuumed, analysed, checkpointed (see tests/bench/dbstate.py)."""
        if self.harness.db is not None:
            await self.harness.db.settle_after_seed()

    async def set_tenants(self, tenants: int, other_rows: int) -> None:
        """`tenants` in all (A, B and bulk ones), the bulk ones holding `other_rows`."""
        async with self.superuser() as conn:
            want = max(tenants - 2, 1)
            if want > len(self.bulk_tenants):
                self.bulk_tenants += await seed.add_tenants(
                    conn, len(self.bulk_tenants), want - len(self.bulk_tenants)
                )
            await seed.fill_tenants(conn, self.bulk_tenants, other_rows)
        await self.settle()

    async def close(self) -> None:
        for server in (self.product, self.baseline, self.alt_product):
            if server is not None:
                server.stop()
        await self.b0_pool.close()
        await self.services.db.dispose()
        self.pg.stop()


async def _preload_statements(port: int, superuser_pw: str) -> None:
    """pg_stat_statements (shipped with the embedded server) needs a preload and a restart."""
    dsn = f"postgresql://postgres:{superuser_pw}@127.0.0.1:{port}/postgres"
    async with _connect(dsn) as conn:
        await conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        await conn.execute("ALTER SYSTEM SET pg_stat_statements.track_planning = on")


@asynccontextmanager
async def _connect(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


def _scans(plan: Any) -> str:
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("Relation Name") == "contacts" or "Index Name" in node:
            found.append(
                f"{node['Node Type']}" + (f" {node['Index Name']}" if "Index Name" in node else "")
            )
        for child in node.get("Plans", []):
            walk(child)

    walk((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
    return "; ".join(found)


async def _mask_email(client: httpx.AsyncClient, admin: dict[str, str], rep: uuid.UUID) -> None:
    """The rep is a salesperson plus a custom role that denies contact.email: a real mask."""
    role = await client.post(
        "/api/v1/roles",
        headers=admin,
        json={
            "name": "no_email",
            "rules": [{"effect": "deny", "object": "contact.email", "action": "*"}],
        },
    )
    assert role.status_code == 201, role.text
    roles = {
        r["name"]: r["id"]
        for r in (await client.get("/api/v1/roles", headers=admin)).json()["items"]
    }
    assign = await client.put(
        f"/api/v1/users/{rep}/roles",
        headers=admin,
        json={"role_ids": [roles["salesperson"], roles["no_email"]]},
    )
    assert assign.status_code == 200, assign.text


async def build(sizes: Sizes, timing: Timing, loadgen: str, server: str, alt: bool) -> Stack:
    data_dir = Path(tempfile.mkdtemp(prefix="caravan-bench-"))
    os.chmod(data_dir, 0o711)  # noqa: S103 - the server user must traverse it
    pg = EmbeddedPostgres(data_dir)
    urls = await pg.bootstrap(pg.start(), database="bench")
    superuser_pw = (data_dir / "secrets" / "superuser.password").read_text().strip()
    await _preload_statements(urls.port, superuser_pw)
    pg.stop()  # restarted with pg_stat_statements loaded (on a new port)
    urls = await pg.bootstrap(pg.start(), database="bench")
    await migrate(urls.owner_url, "caravan_app")
    superuser_dsn = f"postgresql://postgres:{superuser_pw}@127.0.0.1:{urls.port}/bench"
    async with _connect(superuser_dsn) as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    settings = Settings(
        environment="test",
        data_dir=data_dir,
        database_url=urls.app_url,
        access_token_ttl_seconds=TOKEN_TTL,  # the servers' tokens must verify here too
        seal_interval_seconds=0,
        checkpoint_interval_seconds=0,
    )
    services = build_services(settings, urls.app_url)
    a = await create_tenant(
        services.db,
        name="Bench A",
        slug="bench-a",
        admin_email="admin@a.example",
        admin_password=PASSWORD,
        require_admin_mfa=False,
    )
    rep = await create_user(
        services.db, tenant_slug="bench-a", email="rep@a.example", password=PASSWORD
    )
    b = await create_tenant(
        services.db,
        name="Bench B",
        slug="bench-b",
        admin_email="admin@b.example",
        admin_password=PASSWORD,
        require_admin_mfa=False,
    )
    conn = await asyncpg.connect(superuser_dsn)
    try:
        await seed.add_contacts(conn, a.tenant_id, rep, sizes.rows)
        await seed.nested(conn, a.tenant_id, rep)
        await seed.add_contacts(conn, b.tenant_id, b.admin_user_id, 100, "b")
    finally:
        await conn.close()
    db_state = DbState(superuser_dsn, postmaster_pid(pg.cluster_dir))
    await db_state.settle_after_seed()
    env = {
        "CARAVAN_ENV": "test",
        "CARAVAN_DATA_DIR": str(data_dir),
        "CARAVAN_DATABASE_URL": urls.app_url,
        "CARAVAN_ACCESS_TOKEN_TTL": str(TOKEN_TTL),
        "BENCH_APP_DSN": urls.app_url,
        "BENCH_BYPASS_DSN": superuser_dsn,
        "BENCH_LOG_DIR": str(data_dir),
    }
    alt_kind = "granian" if server == "uvicorn" else "uvicorn"
    launched = [
        launch("product", server, PRODUCT, env),
        launch("baseline", server, BASELINE, env),
        *([launch("product-alt", alt_kind, PRODUCT, env)] if alt else []),
    ]
    product = wait_ready(launched[0], "/health")
    baseline = wait_ready(launched[1], "/b2/ping")
    alt_product = wait_ready(launched[2], "/health") if alt else None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{product.port}", timeout=60) as client:
        admin = await sign_in(client, "admin@a.example", "bench-a")
        rep_headers = await sign_in(client, "rep@a.example", "bench-a")
        b_headers = await sign_in(client, "admin@b.example", "bench-b")
        await _mask_email(client, admin, rep)
        for tenant_admin in (admin, b_headers):
            await lift_read_limits(client, tenant_admin)
    b0_pool = await asyncpg.create_pool(connect_dsn(urls.app_url), min_size=10, max_size=10)
    harness = Harness(timing, loadgen, postmaster_pid(pg.cluster_dir))
    harness.db = db_state
    stack = Stack(
        harness=harness,
        pg=pg,
        data_dir=data_dir,
        services=services,
        superuser_dsn=superuser_dsn,
        app_dsn=urls.app_url,
        b0_pool=b0_pool,
        product=product,
        baseline=baseline,
        server_kind=server,
        tenant_a=a.tenant_id,
        rep_a=rep,
        tenant_b=b.tenant_id,
        rep_headers=rep_headers,
        admin_headers=admin,
        b_headers=b_headers,
        alt_product=alt_product,
        alt_kind=alt_kind,
    )
    await stack.refresh_sample(sizes.sample_ids)
    return stack
