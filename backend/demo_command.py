"""`caravan demo`: seed the demo tenant; run again, keep the demo tenant that exists, or drop it
(`--reset`) so the demo is seeded afresh."""

from __future__ import annotations

import argparse
import asyncio
import secrets
from typing import Any

import asyncpg

from backend.backups import pg
from backend.db.migrate import migrate
from backend.db.session import Database
from backend.db.target import resolve_database
from backend.demo import DEMO_TENANT_NAME, seed_demo
from backend.errors import Conflict
from backend.settings import Settings


def cmd_demo(settings: Settings, args: argparse.Namespace) -> None:
    password = args.password or secrets.token_urlsafe(12)

    async def run() -> Any:
        target = await resolve_database(settings)
        try:
            assert target.owner_url is not None
            if target.embedded is not None:
                await migrate(target.owner_url, target.app_role)
            if not await make_room_for_demo(target.owner_url, args.slug, reset=args.reset):
                return None
            db = Database(target.app_url, pool_size=2)
            try:
                return await seed_demo(
                    db,
                    slug=args.slug,
                    email=args.email,
                    password=password,
                    n_accounts=args.accounts,
                    size=args.size,
                )
            finally:
                await db.dispose()
        finally:
            target.release()

    result = asyncio.run(run())
    base = settings.issuer  # CARAVAN_PUBLIC_URL, or where `caravan serve` listens by default
    if result is None:
        print(
            f"The demo tenant '{args.slug}' exists already; nothing changed. Sign in with the "
            f"password it was made with, or start it over:\n  caravan demo --reset"
            + (f" --slug {args.slug}" if args.slug != "demo" else "")
        )
        return
    print(
        f"Demo tenant '{result.slug}': {result.accounts} accounts, {result.contacts} contacts, "
        f"{result.opportunities} opportunities, {result.activities} activities, "
        f"{result.leads} leads ({result.converted} converted), {result.quotes} quotes, "
        f"{result.orders} orders, {result.cases} cases.\n"
        f"Sign in with tenant={result.slug} email={result.email} password={password}\n"
        + "".join(f"  or as {rep} with the same password\n" for rep in result.reps)
        + f"  curl -s -X POST {base}/auth/sign-in "
        "-H 'content-type: application/json' "
        f'-d \'{{"tenant":"{result.slug}","email":"{result.email}","password":"{password}"}}\''
    )


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
