"""Privacy erasure: redact the values in one record's change history, keeping the chain valid.

The chain covers each history row's salted value digests, never the values, so setting the
values to NULL changes no link. The app role has no UPDATE right on record_history; the one
way to change it is the owner-defined `caravan_erase_history(entity, record)`, which sets a
transaction-local flag that the append-only trigger honours for exactly this: old/new values of
the current tenant's rows set to NULL, every other column unchanged. The erasure itself is
recorded as a security event (entity and record id, no values).
"""

from __future__ import annotations

import uuid

from sqlalchemy import text

from backend.crm.registry import ENTITIES
from backend.db.session import Database
from backend.errors import ValidationFailed
from backend.history.events import EventType, record_event


async def erase_record_history(
    db: Database,
    tenant_id: uuid.UUID,
    entity: str,
    record_id: uuid.UUID,
    *,
    actor_user_id: uuid.UUID | None = None,
    actor_client_id: uuid.UUID | None = None,
    request_id: str | None = None,
    channel: str = "cli",
) -> int:
    """Redact every history value of the record; returns how many rows were redacted."""
    if entity not in ENTITIES:
        raise ValidationFailed.one("entity", "invalid_entity", f"one of {sorted(ENTITIES)}")
    async with db.tenant_transaction(tenant_id) as conn:
        result = await conn.execute(
            text("select caravan_erase_history(:entity, :record)"),
            {"entity": entity, "record": record_id},
        )
        redacted = int(result.scalar_one())
        await record_event(
            conn,
            tenant_id,
            EventType.HISTORY_ERASED,
            actor_user_id=actor_user_id,
            actor_client_id=actor_client_id,
            request_id=request_id,
            channel=channel,
            details={"entity": entity, "record_id": str(record_id), "rows": redacted},
        )
    return redacted
