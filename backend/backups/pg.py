"""PostgreSQL plumbing for backups: libpq URLs, the client binaries, table order, digests."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import asyncpg

from backend.backups.manifest import TableCount
from backend.db.embedded import find_bin_dir


def libpq_url(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without its password, and the environment that carries the password
    (never on a command line, where `ps` would show it)."""
    parsed = urlparse(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    env = dict(os.environ)
    if parsed.password:
        from urllib.parse import unquote

        env["PGPASSWORD"] = unquote(parsed.password)
    netloc = parsed.hostname or ""
    if parsed.username:
        netloc = f"{parsed.username}@{netloc}"
    if parsed.port:
        netloc = f"{netloc}:{parsed.port}"
    return urlunparse(parsed._replace(netloc=netloc)), env


def asyncpg_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def with_database(url: str, database: str) -> str:
    parsed = urlparse(asyncpg_url(url))
    return urlunparse(parsed._replace(path=f"/{database}"))


def database_name(url: str) -> str:
    return urlparse(asyncpg_url(url)).path.lstrip("/")


def binary(bin_dir: Path | None, name: str) -> str:
    return str(find_bin_dir(bin_dir) / name)


async def public_tables(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "select tablename from pg_tables where schemaname = 'public' order by tablename"
    )
    return [row["tablename"] for row in rows]


async def tenant_tables(conn: asyncpg.Connection) -> list[str]:
    """Tables with a tenant_id column, referenced tables before the tables that refer to them."""
    rows = await conn.fetch(
        "select table_name from information_schema.columns "
        "where table_schema = 'public' and column_name = 'tenant_id' order by table_name"
    )
    tables = [row["table_name"] for row in rows]
    edges = await conn.fetch(
        "select c.conrelid::regclass::text as child, c.confrelid::regclass::text as parent "
        "from pg_constraint c where c.contype = 'f' and c.connamespace = 'public'::regnamespace"
    )
    parents: dict[str, set[str]] = {t: set() for t in tables}
    for edge in edges:
        child, parent = edge["child"].strip('"'), edge["parent"].strip('"')
        if child in parents and parent in parents and parent != child:
            parents[child].add(parent)
    ordered: list[str] = []
    while parents:
        ready = sorted(t for t, deps in parents.items() if not deps - set(ordered))
        if not ready:  # a cycle: keep the rest in name order (FKs checked at statement end)
            ready = sorted(parents)
        for table in ready:
            ordered.append(table)
            del parents[table]
    return ordered


async def columns(conn: asyncpg.Connection, table: str) -> list[str]:
    """The columns a tenant backup copies out and back in: not the generated ones (a search
    document), which PostgreSQL computes again on the way in and refuses to be given."""
    rows = await conn.fetch(
        "select column_name from information_schema.columns "
        "where table_schema = 'public' and table_name = $1 and is_generated = 'NEVER' "
        "order by ordinal_position",
        table,
    )
    return [row["column_name"] for row in rows]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# Order-independent: the sum of each row's 60-bit md5 prefix, with the row count.
_DIGEST = (
    "select count(*) as n, coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)"
    "::bigint::numeric), 0)::text as d from {table} t"
)


async def table_digest(
    conn: asyncpg.Connection, table: str, tenant_id: str | None = None
) -> TableCount:
    sql = _DIGEST.format(table=quote(table))
    if tenant_id is None:
        row = await conn.fetchrow(sql)
    else:
        column = "id" if table == "tenants" else "tenant_id"
        row = await conn.fetchrow(f"{sql} where t.{column} = $1::uuid", tenant_id)
    assert row is not None
    return TableCount(int(row["n"]), f"{int(row['n'])}:{row['d']}")


async def digests(
    conn: asyncpg.Connection, tables: list[str], tenant_id: str | None = None
) -> dict[str, TableCount]:
    return {table: await table_digest(conn, table, tenant_id) for table in tables}


async def schema_version(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("select version_num from alembic_version order by 1")
    return [row["version_num"] for row in rows]
