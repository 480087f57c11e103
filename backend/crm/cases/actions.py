"""Assigning and escalating a case: updates through the record service (so policy, scope,
history and sync apply as to any edit), in one transaction with their audit event."""

from __future__ import annotations

import uuid
from typing import Any

from backend.context import RequestContext
from backend.crm.cases.service import cases
from backend.crm.cases.sla import escalation, policy_for
from backend.errors import ValidationFailed
from backend.history.events import EventType, record_event
from backend.records.service import Record

_ABSENT = object()


def _id(field: str, raw: Any) -> uuid.UUID | None:
    if raw is None:
        return None
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise ValidationFailed.one(field, "unknown_reference", "names no such record") from None


async def assign(ctx: RequestContext, case_id: str, data: dict[str, Any]) -> Record:
    """`{"assignee_id"?, "queue_id"?}`: a new queue without an assignee clears the assignee
    (who may not be one of its members); an assignee must be a member of the case's queue."""
    if not data.keys() & {"assignee_id", "queue_id"} or data.keys() - {"assignee_id", "queue_id"}:
        raise ValidationFailed.one(
            "assignee_id", "required", "send assignee_id and/or queue_id, nothing else"
        )
    changes: dict[str, Any] = {}
    if "queue_id" in data:
        changes["queue_id"] = _id("queue_id", data["queue_id"])
        changes["assignee_id"] = None
    if "assignee_id" in data:
        changes["assignee_id"] = _id("assignee_id", data["assignee_id"])
    async with ctx.session.request_scope():
        current = await cases.get(ctx, case_id)
        return await cases.update(ctx, case_id, changes, current["version"])


async def escalate(ctx: RequestContext, case_id: str) -> Record:
    """Raise the priority one level and/or move to the escalation queue, as the SLA policy of
    the case's priority says (no policy: raise the priority); recorded as an audit event."""
    async with ctx.session.request_scope():
        current = await cases.get(ctx, case_id)
        async with ctx.session.transaction() as conn:
            full = {
                "priority": current.get("priority", "normal"),
                "queue_id": current.get("queue_id"),
                "assignee_id": current.get("assignee_id"),
            }
            changes = await escalation(
                conn, ctx.tenant_id, full, await policy_for(conn, ctx.tenant_id, full["priority"])
            )
        record = await cases.update(ctx, case_id, changes, current["version"])
        async with ctx.session.transaction() as conn:
            await record_event(
                conn,
                ctx.tenant_id,
                EventType.CASE_ESCALATED,
                actor_user_id=ctx.user_id,
                request_id=ctx.request_id,
                channel=ctx.channel,
                details={
                    "case_id": str(record["id"]),
                    "escalated": {k: None if v is None else str(v) for k, v in changes.items()},
                },
            )
        return record
