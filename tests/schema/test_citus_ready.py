"""The schema can be distributed by tenant (Citus), checked on the migrated database's catalog:
every tenant table is keyed by tenant_id, every key and link between tenant tables carries it,
and every other table is a small global (reference) table."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from backend.db.citus import REFERENCE_TABLES, distribution_script
from backend.db.models import TENANT_TABLES
from tests.conftest import Cluster

# Identity columns draw from a sequence of their own; on Citus such a sequence lives on the
# coordinator and stays unique across shards. None may carry meaning per tenant.
SEQUENCES_ALLOWED: dict[str, str] = {}


async def _fetch(cluster: Cluster, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(cluster.urls.owner_url.replace("+asyncpg", ""))
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


async def _tables(cluster: Cluster) -> dict[str, bool]:
    """Every application table, and whether it has a tenant_id column."""
    rows = await _fetch(
        cluster,
        """
        SELECT c.relname AS name,
               EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                       AND a.attname = 'tenant_id' AND NOT a.attisdropped) AS tenant
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND c.relname <> 'alembic_version' AND NOT c.relispartition
        """,
    )
    return {r["name"]: r["tenant"] for r in rows}


async def _constraints(cluster: Cluster) -> list[dict[str, Any]]:
    rows = await _fetch(
        cluster,
        """
        SELECT con.conname AS name, con.contype AS kind, c.relname AS table_name,
               ref.relname AS ref_table,
               ARRAY(SELECT a.attname FROM unnest(con.conkey) k
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k)::text[]
                   AS cols,
               ARRAY(SELECT a.attname FROM unnest(con.confkey) k
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k)::text[]
                   AS ref_cols
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_class ref ON ref.oid = con.confrelid
        WHERE n.nspname = 'public' AND con.contype IN ('p', 'u', 'f', 'x')
        """,
    )
    return [dict(r) for r in rows]


async def test_tenant_tables_are_exactly_the_tables_with_tenant_id(cluster: Cluster) -> None:
    tables = await _tables(cluster)
    with_tenant = {name for name, tenant in tables.items() if tenant}
    assert with_tenant == set(TENANT_TABLES)
    assert set(tables) - with_tenant == set(REFERENCE_TABLES), (
        "every table without tenant_id must be declared a reference table in backend/db/citus.py"
    )


async def test_every_key_of_a_tenant_table_includes_tenant_id(cluster: Cluster) -> None:
    offenders = [
        f"{c['table_name']}.{c['name']} {c['cols']}"
        for c in await _constraints(cluster)
        if c["kind"] in ("p", "u", "x")
        and c["table_name"] in TENANT_TABLES
        and "tenant_id" not in c["cols"]
    ]
    assert offenders == []
    unique_indexes = await _fetch(
        cluster,
        """
        SELECT t.relname AS table_name, i.relname AS index_name,
               pg_get_indexdef(ix.indexrelid) AS definition
        FROM pg_index ix
        JOIN pg_class i ON i.oid = ix.indexrelid
        JOIN pg_class t ON t.oid = ix.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public' AND ix.indisunique
          AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                          WHERE a.attrelid = t.oid AND a.attname = 'tenant_id'
                            AND a.attnum = ANY (ix.indkey))
        """,
    )
    assert [
        (r["table_name"], r["definition"])
        for r in unique_indexes
        if r["table_name"] in TENANT_TABLES
    ] == []


async def test_links_between_tenant_tables_carry_tenant_id_on_both_sides(
    cluster: Cluster,
) -> None:
    offenders = []
    for c in await _constraints(cluster):
        if c["kind"] != "f":
            continue
        source_tenant = c["table_name"] in TENANT_TABLES
        target_tenant = c["ref_table"] in TENANT_TABLES
        if not source_tenant and target_tenant:
            offenders.append(f"reference table {c['table_name']} points into {c['ref_table']}")
        if source_tenant and target_tenant:
            pairs = dict(zip(c["cols"], c["ref_cols"], strict=True))
            if pairs.get("tenant_id") != "tenant_id":
                offenders.append(f"{c['table_name']}.{c['name']} {c['cols']} -> {c['ref_cols']}")
    assert offenders == []


async def test_no_sequence_is_shared_by_tenants_without_a_reason(cluster: Cluster) -> None:
    rows = await _fetch(
        cluster,
        """
        SELECT c.relname AS table_name, a.attname AS column_name
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT a.attisdropped
          AND (a.attidentity <> '' OR pg_get_serial_sequence(c.relname, a.attname) IS NOT NULL)
        """,
    )
    found = {f"{r['table_name']}.{r['column_name']}" for r in rows}
    tenant_sequences = {f for f in found if f.split(".")[0] in TENANT_TABLES}
    assert tenant_sequences <= set(SEQUENCES_ALLOWED), sorted(tenant_sequences)


def test_the_checked_in_citus_script_is_current() -> None:
    from pathlib import Path

    script = Path(__file__).parents[2] / "infra" / "citus" / "distribute.sql"
    if not script.exists():
        pytest.fail("infra/citus/distribute.sql is missing: uv run python -m backend.db.citus")
    assert script.read_text() == distribution_script(), (
        "infra/citus/distribute.sql is stale: uv run python -m backend.db.citus > "
        "infra/citus/distribute.sql"
    )
