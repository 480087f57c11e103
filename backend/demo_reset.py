"""`caravan demo` run again: keep the demo tenant that exists, or drop it (`--reset`) so the
demo is seeded afresh."""

from __future__ import annotations

import asyncpg

from backend.backups import pg
from backend.demo import DEMO_TENANT_NAME
from backend.errors import Conflict


async def make_room_for_demo(owner_url: str, slug: str, *, reset: bool) -> bool:
    """True when the demo may be seeded under `slug`: no tenant has it, or `reset` dropped the
    demo tenant that had it. False when a demo tenant exists and `reset` is off. A tenant
    that is not a demo tenant is never dropped: 409 `not_a_demo_tenant`."""
    conn = await asyncpg.connect(pg.asyncpg_url(owner_url))
    try:
        async with conn.transaction():
            tenant_id = await conn.fetchval("select tenant_id_for_slug($1)", slug)
            if tenant_id is None:
                return True
            # Tenant tables answer only for the tenant set here (row-level security).
            await conn.execute("select set_config('app.tenant_id', $1, true)", str(tenant_id))
            name = await conn.fetchval("select name from tenants where id = $1", tenant_id)
            if name != DEMO_TENANT_NAME:
                raise Conflict(
                    f"tenant {slug!r} is not a demo tenant ({name!r}); it is left alone",
                    field="slug",
                    code="not_a_demo_tenant",
                )
            if not reset:
                return False
            await _drop_tenant(conn, str(tenant_id))
            return True
    finally:
        await conn.close()


async def _drop_tenant(conn: asyncpg.Connection, tenant_id: str) -> None:
    """Every row of the tenant, in one transaction: referring tables before referred ones."""
    # The append-only guard of history, events and seals lets a delete through only with this.
    await conn.execute("select set_config('caravan.audit_pruning', 'on', true)")
    for table in reversed(await pg.tenant_tables(conn)):
        # Table names come from the catalogue, quoted.
        delete = f"delete from {pg.quote(table)} where tenant_id = $1::uuid"  # noqa: S608
        await conn.execute(delete, tenant_id)
    await conn.execute("delete from tenants where id = $1::uuid", tenant_id)
    await conn.execute("select set_config('caravan.audit_pruning', '', true)")
