"""The sealer: appends committed history rows and security events to their tenant's chain.

Writers never touch the chain: request transactions insert their rows unsealed (each row
carries its transaction id, `txid`), so a tenant's writes never queue on a chain head. The
sealer, per tenant and under a transaction-scoped advisory lock (two processes never seal one
tenant at once), takes the rows of every transaction older than its snapshot's xmin - those
transactions are final: committed (visible) or rolled back (never visible) - in
(txid, id) order after the last sealed row, and appends one seal per row.

A long-running transaction anywhere in the cluster holds xmin back, so rows of later
transactions wait (that is what `caravan audit verify --max-unsealed-age` watches for);
sealing never skips a row that commits late, because its txid is below any later xmin.
"""

from __future__ import annotations

import hashlib
import heapq
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, insert, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.db.base import table_of
from backend.db.session import Database
from backend.history.audit_tenants import audit_tenants
from backend.history.chain import COLUMNS, GENESIS, link
from backend.history.changes import RecordChange
from backend.history.events import SecurityEvent
from backend.history.seals import EVENT, HISTORY, seals

BATCH = 2000
SOURCES: dict[str, Table] = {
    HISTORY: table_of(RecordChange),
    EVENT: table_of(SecurityEvent),
}
_XMIN = text("select (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint")


@dataclass(frozen=True)
class SealResult:
    tenant_id: uuid.UUID
    sealed: int
    head_seq: int
    busy: bool = False  # another process held the tenant's sealing lock


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    row_txid: int | None
    row_id: uuid.UUID | None


def lock_key(tenant_id: uuid.UUID) -> int:
    digest = hashlib.sha256(b"caravan.audit.seal:" + tenant_id.bytes).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def chain_head(conn: AsyncConnection) -> Head:
    """The last seal of the transaction's tenant (seq 0 and the genesis hash when none)."""
    row = (
        await conn.execute(
            select(seals.c.id, seals.c.hash, seals.c.row_txid, seals.c.row_id)
            .order_by(seals.c.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return Head(0, GENESIS, None, None)
    return Head(row.id, row.hash, row.row_txid, row.row_id)


async def _unsealed(
    conn: AsyncConnection, source: str, head: Head, xmin: int, limit: int
) -> list[dict[str, Any]]:
    table = SOURCES[source]
    stmt = select(table.c.txid, *(table.c[name] for name in COLUMNS[source])).where(
        table.c.txid < xmin
    )
    if head.row_txid is not None:
        stmt = stmt.where(tuple_(table.c.txid, table.c.id) > tuple_(head.row_txid, head.row_id))
    stmt = stmt.order_by(table.c.txid, table.c.id).limit(limit)
    return [{**row, "_source": source} for row in (await conn.execute(stmt)).mappings()]


async def _seal_batch(db: Database, tenant_id: uuid.UUID, batch: int) -> tuple[int, int] | None:
    """Seal up to `batch` rows in one transaction: (rows sealed, head seq), or None if busy."""
    async with db.tenant_transaction(tenant_id) as conn:
        locked = await conn.execute(select(func.pg_try_advisory_xact_lock(lock_key(tenant_id))))
        if not locked.scalar_one():
            return None
        head = await chain_head(conn)
        xmin = (await conn.execute(_XMIN)).scalar_one()
        found = [await _unsealed(conn, source, head, xmin, batch) for source in SOURCES]
        rows = list(heapq.merge(*found, key=lambda r: (r["txid"], r["id"])))[:batch]
        if not rows:
            return 0, head.seq
        values = []
        prev, seq = head.hash, head.seq
        for row in rows:
            seq += 1
            chained = link(prev, seq, row["_source"], row)
            values.append(
                {
                    "tenant_id": tenant_id,
                    "id": seq,
                    "source": row["_source"],
                    "row_id": row["id"],
                    "row_txid": row["txid"],
                    "prev_hash": prev,
                    "hash": chained,
                }
            )
            prev = chained
        await conn.execute(insert(seals), values)
        return len(rows), seq


async def seal_tenant(db: Database, tenant_id: uuid.UUID, *, batch: int = BATCH) -> SealResult:
    total = 0
    head_seq = 0
    while True:
        done = await _seal_batch(db, tenant_id, batch)
        if done is None:
            return SealResult(tenant_id, total, head_seq, busy=True)
        sealed, head_seq = done
        total += sealed
        if sealed < batch:
            return SealResult(tenant_id, total, head_seq)


async def seal_all(db: Database, slug: str | None = None) -> list[SealResult]:
    return [await seal_tenant(db, tenant.id) for tenant in await audit_tenants(db, slug)]
