"""Writing a verified archive back: pg_restore for a full backup, COPY for one tenant.

Callers pass a plaintext stream only after the whole archive was authenticated and its checksums
matched (see BackupService.open): nothing is written from an archive that fails any check.
A tenant restore runs in ONE transaction as the owner role with the tenant set (row-level
security confines every statement to it): delete the tenant's rows, copy the archived rows in,
commit, or roll everything back.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import asyncpg

from backend.backups import pg
from backend.backups.dump import FRAME, NAME, TENANT_FORMAT
from backend.backups.errors import BackupError, BackupRefused
from backend.backups.stream import BlockReader

# Sign-in state is never brought back: a restore would revive sessions and refresh tokens that
# were revoked after the backup (a stolen device signed out would be signed in again). These
# tables are emptied for the restored tenant instead; its users sign in again.
SESSION_TABLES = ("refresh_tokens", "authorization_codes", "auth_flows", "auth_sessions")
# Security events are facts about the past (who signed in, who ran the bad import): a tenant
# restore keeps the events logged since the backup and adds back the archived ones. Their seals
# are replaced by the archived chain, so the newer events are simply sealed again, after it.
KEPT_TABLES = ("security_events",)


async def pg_restore(url: str, bin_dir: Path | None, blocks: Iterable[bytes]) -> None:
    dsn, env = pg.libpq_url(url)
    process = await asyncio.create_subprocess_exec(
        pg.binary(bin_dir, "pg_restore"),
        "--clean",
        "--if-exists",
        "--single-transaction",
        "--exit-on-error",
        "--no-password",
        f"--dbname={dsn}",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdin is not None and process.stderr is not None
    errors = asyncio.create_task(process.stderr.read())
    try:
        for block in blocks:
            process.stdin.write(block)
            await process.stdin.drain()
        process.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass  # pg_restore stopped early: its exit code and stderr say why
    except BaseException:
        # The archive failed a check mid-stream: kill pg_restore, its transaction rolls back.
        process.kill()
        await process.wait()
        errors.cancel()
        raise
    code = await process.wait()
    stderr = (await errors).decode(errors="replace").strip()
    if code != 0:
        last = stderr.splitlines()[-1] if stderr else f"exit code {code}"
        raise BackupError(f"pg_restore failed: {last}")


async def end_sessions(url: str) -> None:
    """After a full restore: delete every sign-in session and token."""
    conn = await asyncpg.connect(pg.asyncpg_url(url))
    try:
        present = set(await pg.public_tables(conn))
        async with conn.transaction():
            for table in SESSION_TABLES:
                if table in present:
                    await conn.execute(f"delete from {pg.quote(table)}")
    finally:
        await conn.close()


async def _frames(reader: BlockReader) -> AsyncIterator[bytes]:
    while True:
        (length,) = FRAME.unpack(reader.exact(FRAME.size))
        if length == 0:
            return
        yield reader.exact(length)


async def restore_tenant(
    owner_url: str,
    blocks: Iterable[bytes],
    *,
    tenant_id: str,
    new_slug: str | None = None,
) -> str:
    """Replace the tenant's rows (or, with new_slug, load them as a new tenant): returns the
    id of the tenant written."""
    reader = BlockReader(blocks)
    try:
        header = json.loads(reader.line())
    except ValueError:
        raise BackupRefused("the tenant archive's header is not JSON") from None
    if header.get("format") != TENANT_FORMAT or header.get("tenant_id") != tenant_id:
        raise BackupRefused("the tenant archive's header does not match its manifest")
    target = str(uuid.uuid4()) if new_slug else tenant_id
    try:
        conn = await asyncpg.connect(pg.asyncpg_url(owner_url))
    except (OSError, asyncpg.PostgresError) as exc:
        raise BackupError(f"cannot connect to the database: {exc}") from None
    try:
        async with conn.transaction():
            await _load(conn, reader, header, target, new_slug)
    except asyncpg.UniqueViolationError as exc:
        raise BackupError(f"restore refused by the database: {exc}", field="tenant") from None
    except asyncpg.PostgresError as exc:
        raise BackupError(f"restore failed and was rolled back: {exc}") from None
    finally:
        await conn.close()
    return target


async def _load(
    conn: asyncpg.Connection,
    reader: BlockReader,
    header: dict[str, object],
    target: str,
    new_slug: str | None,
) -> None:
    tables = list(header["tables"])  # type: ignore[call-overload]
    archived = dict(header["columns"])  # type: ignore[call-overload]
    await conn.execute("select set_config('app.tenant_id', $1, true)", target)
    # The append-only guard of history, events and seals lets a delete through only here.
    await conn.execute("select set_config('caravan.audit_pruning', 'on', true)")
    for table in tables:
        if await pg.columns(conn, table) != archived[table]:
            raise BackupRefused(
                f"table {table} differs from the backup's schema: migrate to the backup's "
                "schema version first"
            )
    if new_slug is None:
        for table in reversed(tables[1:]):
            if table in KEPT_TABLES:
                continue
            await conn.execute(f"delete from {pg.quote(table)} where tenant_id = $1::uuid", target)
    for index, table in enumerate(tables):
        name = reader.exact(NAME.unpack(reader.exact(NAME.size))[0]).decode()
        if name != table:
            raise BackupRefused(f"the archive holds {name} where {table} was expected")
        stage = f"caravan_stage_{index}"
        await conn.execute(
            f"create temp table {stage} (like public.{pg.quote(table)}) on commit drop"
        )
        await conn.copy_to_table(stage, source=_frames(reader), format="binary")
        if new_slug is not None and table == "audit_seals":
            continue  # seals hash the old tenant id: the copy's rows are sealed afresh
        if table in SESSION_TABLES:
            continue
        await _insert(conn, table, stage, archived[table], target, new_slug)
    await conn.execute("select set_config('caravan.audit_pruning', '', true)")


async def _insert(
    conn: asyncpg.Connection,
    table: str,
    stage: str,
    columns: list[str],
    target: str,
    new_slug: str | None,
) -> None:
    names = ", ".join(pg.quote(c) for c in columns)
    if table == "tenants":
        replaced = {"id": "$1::uuid"}
        args: list[str] = [target]
        if new_slug is not None:
            replaced["slug"] = "$2::text"
            args.append(new_slug)
        select = ", ".join(replaced.get(c, pg.quote(c)) for c in columns)
        updates = ", ".join(f"{pg.quote(c)} = excluded.{pg.quote(c)}" for c in columns if c != "id")
        await conn.execute(
            f"insert into tenants ({names}) select {select} from {stage} "
            f"on conflict (id) do update set {updates}",
            *args,
        )
        return
    select = ", ".join("$1::uuid" if c == "tenant_id" else pg.quote(c) for c in columns)
    keep = " on conflict do nothing" if table in KEPT_TABLES and new_slug is None else ""
    await conn.execute(
        f"insert into {pg.quote(table)} ({names}) select {select} from {stage}{keep}", target
    )
