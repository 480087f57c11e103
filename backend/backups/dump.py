"""What goes into a backup: the whole database (pg_dump), or one tenant's rows (COPY).

Full: pg_dump custom format, run as a role that reads every tenant with row security OFF (so a
role that RLS would filter makes the dump fail instead of silently dropping rows), inside a
snapshot exported from our own REPEATABLE READ transaction, in which the row counts and digests
of the manifest are computed: the manifest describes exactly what the dump holds.

Tenant: the tenant's row from `tenants` and its rows of every table with a tenant_id column
(records, history, audit events, seals, users, policy ...), read as the owner role with the
tenant set, in COPY binary format. Stream layout: a JSON header line, then per table
`[u16 name length][name]` followed by `[u32 length][COPY bytes]` frames ending in a 0 length.
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import asyncpg

from backend.backups import pg
from backend.backups.errors import BackupError, BackupNotFound
from backend.backups.manifest import TableCount

READ = 256 * 1024
NAME = struct.Struct(">H")
FRAME = struct.Struct(">I")
TENANT_FORMAT = 1


class Sink(Protocol):
    def write(self, data: bytes) -> int: ...


@dataclass
class Dumped:
    tables: dict[str, TableCount]
    schema_version: list[str]
    tenant_slug: str | None = None


async def _connect(url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(pg.asyncpg_url(url))
    except (OSError, asyncpg.PostgresError) as exc:
        raise BackupError(f"cannot connect to the database: {exc}") from None


async def dump_full(url: str, bin_dir: Path | None, sink: Sink) -> Dumped:
    conn = await _connect(url)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute("set local row_security = off")
            snapshot = await conn.fetchval("select pg_export_snapshot()")
            version = await pg.schema_version(conn)
            tables = await pg.digests(conn, await pg.public_tables(conn))
            await _pg_dump(url, bin_dir, snapshot, sink)
    except asyncpg.PostgresError as exc:
        raise BackupError(f"the database refused the backup: {exc}") from None
    finally:
        await conn.close()
    return Dumped(tables, version)


async def _pg_dump(url: str, bin_dir: Path | None, snapshot: str, sink: Sink) -> None:
    dsn, env = pg.libpq_url(url)
    process = await asyncio.create_subprocess_exec(
        pg.binary(bin_dir, "pg_dump"),
        "--format=custom",
        "--compress=0",  # zstd compresses later, before encryption
        f"--snapshot={snapshot}",
        "--no-password",
        f"--dbname={dsn}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    errors = asyncio.create_task(process.stderr.read())
    try:
        while chunk := await process.stdout.read(READ):
            sink.write(chunk)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    code = await process.wait()
    stderr = (await errors).decode(errors="replace").strip()
    if code != 0:
        last = stderr.splitlines()[-1] if stderr else f"exit code {code}"
        raise BackupError(f"pg_dump failed: {last}")


async def export_tenant(owner_url: str, slug: str, sink: Sink) -> tuple[str, Dumped]:
    conn = await _connect(owner_url)
    try:
        tenant_id = await conn.fetchval("select tenant_id_for_slug($1)", slug)
        if tenant_id is None:
            raise BackupNotFound(f"no tenant {slug!r}", field="tenant")
        tenant = str(tenant_id)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute("select set_config('app.tenant_id', $1, true)", tenant)
            tables = ["tenants", *await pg.tenant_tables(conn)]
            version = await pg.schema_version(conn)
            counts = await pg.digests(conn, tables, tenant)
            header = {
                "format": TENANT_FORMAT,
                "tenant_id": tenant,
                "tables": tables,
                "columns": {t: await pg.columns(conn, t) for t in tables},
            }
            sink.write(json.dumps(header).encode() + b"\n")
            for table in tables:
                await _copy_table(conn, table, tenant, sink)
    except asyncpg.PostgresError as exc:
        raise BackupError(f"the database refused the tenant export: {exc}") from None
    finally:
        await conn.close()
    return tenant, Dumped(counts, version, slug)


async def _copy_table(conn: asyncpg.Connection, table: str, tenant: str, sink: Sink) -> None:
    name = table.encode()
    sink.write(NAME.pack(len(name)) + name)
    column = "id" if table == "tenants" else "tenant_id"

    async def frame(data: bytes) -> None:
        if data:
            sink.write(FRAME.pack(len(data)) + data)

    await conn.copy_from_query(
        f"select * from {pg.quote(table)} where {column} = $1::uuid",
        tenant,
        output=frame,
        format="binary",
    )
    sink.write(FRAME.pack(0))
