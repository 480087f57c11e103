"""Fast seeding for the benchmarks: server-side INSERT ... SELECT generate_series (no round trip
per row) as the superuser, so row-level security does not filter the bulk writes.

Rows per tenant grow 10k -> 100k -> 1M for the benchmark tenant; the tenant axis adds 9 or 9,999
other tenants holding the same total rows with Zipf-skewed sizes (tenant k holds ~1/k)."""

from __future__ import annotations

import uuid

import asyncpg

_CONTACTS = """
INSERT INTO contacts (tenant_id, id, first_name, last_name, email, phone, title, owner_id,
                      notes, tags, created_at, updated_at)
SELECT t.tenant, gen_random_uuid(), 'First' || g, 'Last' || g || $4::text,
       'p' || g || '@bench.example', '+1 415 555 ' || lpad((g % 10000)::text, 4, '0'),
       'Title ' || (g % 17), t.owner, 'Some notes about contact ' || g, '{bench}',
       now() - make_interval(secs => g), now() - make_interval(secs => g)
FROM unnest($1::uuid[], $2::uuid[], $3::int[]) AS t(tenant, owner, n),
     generate_series(1, t.n) AS g
"""


async def add_contacts(
    conn: asyncpg.Connection, tenant: uuid.UUID, owner: uuid.UUID, count: int, tag: str = ""
) -> None:
    await conn.execute(_CONTACTS, [tenant], [owner], [count], tag)
    await conn.execute("ANALYZE contacts")


async def count_contacts(conn: asyncpg.Connection, tenant: uuid.UUID) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM contacts WHERE tenant_id = $1", tenant))


async def nested(
    conn: asyncpg.Connection,
    tenant: uuid.UUID,
    owner: uuid.UUID,
    accounts: int = 10,
    contacts: int = 10,
    deals: int = 5,
) -> None:
    """accounts x contacts x opportunities for the nested GraphQL page (ids sort first: the
    accounts and their rows are the tenant's first by id)."""
    await conn.execute(
        """
        WITH a AS (
          INSERT INTO accounts (tenant_id, id, name, owner_id)
          SELECT $1, ('00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
                 'Account ' || i, $2
          FROM generate_series(1, $3) i RETURNING id
        ), c AS (
          INSERT INTO contacts (tenant_id, id, last_name, account_id, owner_id)
          SELECT $1, gen_random_uuid(), 'Nested ' || j, a.id, $2 FROM a, generate_series(1, $4) j
          RETURNING id, account_id
        )
        INSERT INTO opportunities (tenant_id, id, name, stage, close_date, account_id,
                                   contact_id, owner_id, amount, currency)
        SELECT $1, gen_random_uuid(), 'Deal ' || k, 'prospecting', current_date + k, c.account_id,
               c.id, $2, 1000.00, 'EUR'
        FROM c, generate_series(1, $5) k
        """,
        tenant,
        owner,
        accounts,
        contacts,
        deals,
    )


def zipf_sizes(tenants: int, total: int) -> list[int]:
    weights = [1.0 / k for k in range(1, tenants + 1)]
    scale = total / sum(weights)
    return [max(1, round(w * scale)) for w in weights]


async def add_tenants(conn: asyncpg.Connection, start: int, count: int) -> list[uuid.UUID]:
    """`count` bare tenants, each with one user (who owns its rows and never signs in)."""
    ids = [uuid.uuid4() for _ in range(count)]
    await conn.execute(
        """
        INSERT INTO tenants (id, name, slug)
        SELECT t, 'Bulk ' || n, 'bulk-' || n
        FROM unnest($1::uuid[]) WITH ORDINALITY AS x(t, o), LATERAL (SELECT $2 + o AS n) s
        """,
        ids,
        start,
    )
    await conn.execute(
        """
        INSERT INTO users (tenant_id, id, email, password_hash)
        SELECT t, t, 'owner@bulk.example', 'not-a-hash' FROM unnest($1::uuid[]) AS x(t)
        """,
        ids,
    )
    return ids


async def fill_tenants(conn: asyncpg.Connection, tenants: list[uuid.UUID], total: int) -> None:
    """Replace the rows of these tenants by `total` rows, Zipf-skewed across them."""
    await conn.execute("DELETE FROM contacts WHERE tenant_id = ANY($1::uuid[])", tenants)
    await conn.execute(_CONTACTS, tenants, tenants, zipf_sizes(len(tenants), total), "")
    await conn.execute("VACUUM ANALYZE contacts")
