"""A benchmark-only Litestar app (NOT the product): the baselines the product is compared with,
served by the same server the product runs in.

- B2: `GET /b2/ping`, no database.
- B1: raw asyncpg on the same tables: `/b1/...` as the app role under row-level security (the
  tenant set in the same message as BEGIN, like the product), `/b1n/...` the same statements as
  the superuser, which bypasses RLS: the pair's ratio is the cost of the policies.

No authentication: the tenant and owner come in the query string. Started by servers.py as
`create_baseline_app` (a factory) with BENCH_APP_DSN and BENCH_BYPASS_DSN in the environment.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException

CONTACT_COLUMNS = (
    "id, version, first_name, last_name, email, phone, mobile_phone, title, account_id, "
    "owner_id, notes, tags, created_at, updated_at"
)
BEGIN = "BEGIN; SELECT set_config('app.tenant_id', '{tenant}', true)"
GET_ONE = f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE tenant_id = $1 AND id = $2"  # noqa: S608
PAGE = (
    f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE tenant_id = $1 AND owner_id = $2"  # noqa: S608
    " ORDER BY id LIMIT $3"
)
CHANGED = (
    f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE tenant_id = $1"  # noqa: S608
    " AND owner_id = $2 ORDER BY updated_at, id LIMIT $3"
)
INSERT_CONTACT = (
    "INSERT INTO contacts (tenant_id, id, first_name, last_name, email, owner_id)"  # noqa: S608
    f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {CONTACT_COLUMNS}"
)
INSERT_HISTORY = (
    "INSERT INTO record_history (tenant_id, id, entity, record_id, event, new_value,"
    " value_salt, actor_user_id, channel) VALUES ($1, $2, 'contact', $3, 'created', $4::jsonb,"
    " $5, $6, 'api')"
)
MASKED = ("email",)  # the field the benchmark role may not read


def connect_dsn(url: str) -> str:
    """An asyncpg DSN from a SQLAlchemy URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def read_one(conn: asyncpg.Connection, tenant: uuid.UUID, key: uuid.UUID) -> Any:
    await conn.execute(BEGIN.format(tenant=tenant))
    try:
        return await conn.fetchrow(GET_ONE, tenant, key)
    finally:
        await conn.execute("COMMIT")


async def read_page(
    conn: asyncpg.Connection, tenant: uuid.UUID, owner: uuid.UUID, limit: int, sql: str = PAGE
) -> list[dict[str, Any]]:
    await conn.execute(BEGIN.format(tenant=tenant))
    try:
        rows = await conn.fetch(sql, tenant, owner, limit)
    finally:
        await conn.execute("COMMIT")
    return [{k: v for k, v in row.items() if k not in MASKED} for row in rows]


async def create_two_inserts(
    conn: asyncpg.Connection, tenant: uuid.UUID, owner: uuid.UUID, body: dict[str, Any]
) -> dict[str, Any]:
    """The bare cost of a create with its history: two INSERTs in one transaction."""
    await conn.execute(BEGIN.format(tenant=tenant))
    try:
        row = await conn.fetchrow(
            INSERT_CONTACT,
            tenant,
            uuid.uuid4(),
            body.get("first_name"),
            body["last_name"],
            body.get("email"),
            owner,
        )
        assert row is not None
        await conn.execute(
            INSERT_HISTORY,
            tenant,
            uuid.uuid4(),
            row["id"],
            '{"last_name": "%s"}' % body["last_name"],  # noqa: UP031 - fixed shape
            "s" * 32,
            owner,
        )
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")
    return dict(row)


def _routes(prefix: str, pool_key: str) -> list[Any]:
    async def pool_of(state: State) -> asyncpg.Pool:
        return state[pool_key]

    @get(f"/{prefix}/contacts/{{key:uuid}}", name=f"{prefix}-get")
    async def one(state: State, key: uuid.UUID, tenant: uuid.UUID) -> dict[str, Any]:
        async with (await pool_of(state)).acquire() as conn:
            row = await read_one(conn, tenant, key)
        if row is None:
            raise NotFoundException()
        return {k: v for k, v in row.items() if k not in MASKED}

    @get(f"/{prefix}/contacts", name=f"{prefix}-page")
    async def page(
        state: State, tenant: uuid.UUID, owner: uuid.UUID, limit: int = 50
    ) -> dict[str, Any]:
        async with (await pool_of(state)).acquire() as conn:
            return {"items": await read_page(conn, tenant, owner, limit), "next": None}

    @get(f"/{prefix}/changes", name=f"{prefix}-changes")
    async def changes(
        state: State, tenant: uuid.UUID, owner: uuid.UUID, limit: int = 1000
    ) -> dict[str, Any]:
        async with (await pool_of(state)).acquire() as conn:
            rows = await read_page(conn, tenant, owner, limit, CHANGED)
        return {"changes": rows, "cursor": None, "has_more": False}

    @post(f"/{prefix}/contacts", name=f"{prefix}-create")
    async def create(
        state: State, tenant: uuid.UUID, owner: uuid.UUID, data: dict[str, Any]
    ) -> dict[str, Any]:
        async with (await pool_of(state)).acquire() as conn:
            return await create_two_inserts(conn, tenant, owner, data)

    return [one, page, changes, create]


@get("/b2/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}


def create_baseline_app() -> Litestar:
    size = int(os.environ.get("BENCH_POOL_SIZE", "10"))

    @asynccontextmanager
    async def pools(app: Litestar) -> AsyncIterator[None]:
        rls = await asyncpg.create_pool(
            connect_dsn(os.environ["BENCH_APP_DSN"]), min_size=size, max_size=size
        )
        bypass = await asyncpg.create_pool(
            connect_dsn(os.environ["BENCH_BYPASS_DSN"]), min_size=size, max_size=size
        )
        app.state["rls"], app.state["bypass"] = rls, bypass
        try:
            yield
        finally:
            await rls.close()
            await bypass.close()

    return Litestar(
        route_handlers=[ping, *_routes("b1", "rls"), *_routes("b1n", "bypass")],
        lifespan=[pools],
        debug=False,
    )
