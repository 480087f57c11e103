"""The Idempotency-Key of the request running now, marked "applied" inside the request's own
writing transactions.

The key's answer is stored only after the work has committed (backend/idempotency/store.py);
a process killed between the two would leave the key "pending", and a retry taking the
abandoned claim over would do the work a second time. So every transaction that writes under
a keyed request also flips its key to "applied", atomically with the work: a retry then finds
the work done and is not run again (see `ClaimState.LOST`).
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class InFlight:
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    key: str


current: ContextVar[InFlight | None] = ContextVar("caravan_idempotency_key", default=None)

# Only a transaction that wrote something has a transaction id assigned: read-only ones (a
# policy load before the write) leave the key pending.
_MARK = text(
    "UPDATE idempotency_keys SET state = 'applied' WHERE tenant_id = :tenant_id"
    " AND user_id = :user_id AND key = :key AND state = 'pending'"
    " AND pg_current_xact_id_if_assigned() IS NOT NULL"
)


async def mark_applied(conn: AsyncConnection, tenant_id: uuid.UUID) -> None:
    """Before a tenant transaction commits: mark the running request's key, if it has one."""
    running = current.get()
    if running is None or running.tenant_id != tenant_id:
        return
    await conn.execute(
        _MARK, {"tenant_id": tenant_id, "user_id": running.user_id, "key": running.key}
    )
