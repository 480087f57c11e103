"""Retention: per-tenant limits on how long sealed history and security events are kept.

`prune_tenant` deletes sealed rows whose seals are older than the tenant's retention, but
first writes a signed `prune` checkpoint that summarises the range (the first seq, the last
seq of each kind pruned, and the hash the remaining chain links to), so `caravan audit verify`
still validates what is left. A source kept forever (NULL) is never pruned; seals are deleted
only for a prefix of the chain where both kinds were pruned, and the head seal always stays.
The deletion itself goes through the owner-defined `caravan_prune_audit`, which re-checks the
boundaries against the retention: the app role cannot delete anything younger.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from joserfc.jwk import ECKey
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.db.base import table_of
from backend.db.session import Database
from backend.errors import ValidationFailed
from backend.history.checkpoints import PRUNE, CheckpointStore, sign
from backend.history.events import EventType, record_event
from backend.history.sealer import SOURCES, chain_head
from backend.history.seals import EVENT, HISTORY, seals
from backend.tenants.models import Tenant

_tenants = table_of(Tenant)
MAX_DAYS = 36500


@dataclass(frozen=True)
class Retention:
    history_days: int | None
    audit_days: int | None


@dataclass(frozen=True)
class PruneResult:
    tenant_id: uuid.UUID
    rows_deleted: int
    history_through: int
    events_through: int
    seals_through: int
    checkpoint: str | None


def _check_days(name: str, days: int | None) -> None:
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise ValidationFailed.one(name, "out_of_range", f"between 1 and {MAX_DAYS} days, or none")


async def get_retention(db: Database, tenant_id: uuid.UUID) -> Retention:
    async with db.tenant_transaction(tenant_id) as conn:
        row = (
            await conn.execute(
                select(_tenants.c.history_retention_days, _tenants.c.audit_retention_days).where(
                    _tenants.c.id == tenant_id
                )
            )
        ).one()
    return Retention(row[0], row[1])


async def set_retention(
    db: Database,
    tenant_id: uuid.UUID,
    retention: Retention,
    *,
    actor_user_id: uuid.UUID | None = None,
    channel: str = "cli",
) -> Retention:
    _check_days("history_days", retention.history_days)
    _check_days("audit_days", retention.audit_days)
    async with db.tenant_transaction(tenant_id) as conn:
        await conn.execute(
            update(_tenants)
            .where(_tenants.c.id == tenant_id)
            .values(
                history_retention_days=retention.history_days,
                audit_retention_days=retention.audit_days,
            )
        )
        await record_event(
            conn,
            tenant_id,
            EventType.AUDIT_RETENTION_CHANGED,
            actor_user_id=actor_user_id,
            channel=channel,
            details={"history_days": retention.history_days, "audit_days": retention.audit_days},
        )
    return retention


async def _boundary(conn: AsyncConnection, days: int | None) -> int:
    """The last seq whose seal (and every earlier one) is older than `days` days."""
    if days is None:
        return 0
    cutoff = func.now() - func.make_interval(0, 0, 0, days)
    young = (
        await conn.execute(select(func.min(seals.c.id)).where(seals.c.sealed_at >= cutoff))
    ).scalar_one()
    if young is not None:
        return int(young) - 1
    return int((await conn.execute(select(func.coalesce(func.max(seals.c.id), 0)))).scalar_one())


async def _anything_to_prune(
    conn: AsyncConnection, through: dict[str, int], seals_through: int
) -> bool:
    if (
        seals_through
        and (
            await conn.execute(select(seals.c.id).where(seals.c.id <= seals_through).limit(1))
        ).first()
    ):
        return True
    for source, table in SOURCES.items():
        if not through[source]:
            continue
        found = await conn.execute(
            select(table.c.id)
            .join(
                seals,
                (seals.c.tenant_id == table.c.tenant_id)
                & (seals.c.row_id == table.c.id)
                & (seals.c.source == source),
            )
            .where(seals.c.id <= through[source])
            .limit(1)
        )
        if found.first():
            return True
    return False


async def prune_tenant(
    db: Database, key: ECKey, store: CheckpointStore, tenant_id: uuid.UUID
) -> PruneResult:
    retention = await get_retention(db, tenant_id)
    async with db.tenant_transaction(tenant_id) as conn:
        head = await chain_head(conn)
        through = {
            HISTORY: await _boundary(conn, retention.history_days),
            EVENT: await _boundary(conn, retention.audit_days),
        }
        seals_through = max(0, min(through[HISTORY], through[EVENT], head.seq - 1))
        if not await _anything_to_prune(conn, through, seals_through):
            return PruneResult(tenant_id, 0, through[HISTORY], through[EVENT], 0, None)
        first = (await conn.execute(select(func.min(seals.c.id)))).scalar_one()
        # The hash the remaining chain starts from: what seal seals_through + 1 links to.
        boundary_hash = (
            await conn.execute(select(seals.c.prev_hash).where(seals.c.id == seals_through + 1))
        ).scalar_one()
    pruned = {
        "first_seq": int(first),
        "seals_through": seals_through,
        "history_through": through[HISTORY],
        "events_through": through[EVENT],
    }
    name, data = sign(key, tenant_id, seals_through, boundary_hash, kind=PRUNE, pruned=pruned)
    await store.put(tenant_id, name, data)  # before anything is deleted
    async with db.tenant_transaction(tenant_id) as conn:
        deleted = (
            await conn.execute(
                text("select caravan_prune_audit(:h, :e, :s)"),
                {"h": through[HISTORY], "e": through[EVENT], "s": seals_through},
            )
        ).scalar_one()
        await record_event(
            conn, tenant_id, EventType.AUDIT_PRUNED, channel="system", details=pruned
        )
    return PruneResult(
        tenant_id, int(deleted), through[HISTORY], through[EVENT], seals_through, name
    )
