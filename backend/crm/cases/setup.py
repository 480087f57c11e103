"""The tenant's service set-up: queues with their members, the ordered assignment rules and
the SLA policies. Agents who may read cases may read it; only tenant admins change it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.cases.business_time import parse_hours
from backend.crm.cases.models import (
    CHANNELS,
    PRIORITIES,
    TYPES,
    CaseAssignmentRule,
    Queue,
    QueueMember,
    SlaPolicy,
)
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.policy.access import entity_access
from backend.policy.admin import admin_policy
from backend.tenants.models import User

queues_table = table_of(Queue)
members_table = table_of(QueueMember)
rules_table = table_of(CaseAssignmentRule)
policies_table = table_of(SlaPolicy)
_users = table_of(User)
MAX_MINUTES = 525_600  # a year


def _bad(field: str, message: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed.one(field, code, message)


async def may_read_cases(conn: AsyncConnection, ctx: RequestContext) -> None:
    from backend.crm.cases.service import CASE

    (await entity_access(ctx, conn, CASE)).require("read")


def _uuid(field: str, raw: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise _bad(field, "names no such record", "unknown_reference") from None


async def _exists(conn: AsyncConnection, table: Table, tenant_id: uuid.UUID, key: Any) -> bool:
    stmt = select(table.c.id).where(table.c.tenant_id == tenant_id, table.c.id == key)
    return (await conn.execute(stmt)).first() is not None


async def _queue_ref(conn: AsyncConnection, ctx: RequestContext, field: str, raw: Any) -> Any:
    if raw is None:
        return None
    key = _uuid(field, raw)
    if not await _exists(conn, queues_table, ctx.tenant_id, key):
        raise _bad(field, "names no such record", "unknown_reference")
    return key


# -- queues ----------------------------------------------------------------------------------
async def _queue_out(conn: AsyncConnection, row: Any) -> dict[str, Any]:
    stmt = (
        select(members_table.c.user_id)
        .where(members_table.c.tenant_id == row["tenant_id"], members_table.c.queue_id == row["id"])
        .order_by(members_table.c.user_id)
    )
    members = [str(u) for u in (await conn.execute(stmt)).scalars()]
    return {
        "id": row["id"],
        "version": row["version"],
        "name": row["name"],
        "description": row["description"],
        "member_ids": members,
    }


def _queue_values(data: Mapping[str, Any], creating: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "name" in data or creating:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise _bad("name", "must be 1 to 100 characters", "required")
        values["name"] = name.strip()
    if "description" in data:
        text = data["description"]
        if text is not None and (not isinstance(text, str) or len(text) > 2000):
            raise _bad("description", "must be at most 2000 characters")
        values["description"] = text
    return values


async def _set_members(
    conn: AsyncConnection, ctx: RequestContext, queue_id: uuid.UUID, raw: Any
) -> None:
    if not isinstance(raw, list) or len(raw) > 500:
        raise _bad("member_ids", "must be a list of user ids (at most 500)")
    ids = {_uuid("member_ids", u) for u in raw}
    if ids:
        stmt = select(_users.c.id).where(_users.c.tenant_id == ctx.tenant_id, _users.c.id.in_(ids))
        if set((await conn.execute(stmt)).scalars()) != ids:  # another tenant's: as missing
            raise _bad("member_ids", "names no such record", "unknown_reference")
    await conn.execute(
        delete(members_table).where(
            members_table.c.tenant_id == ctx.tenant_id, members_table.c.queue_id == queue_id
        )
    )
    if ids:
        rows = [
            {"tenant_id": ctx.tenant_id, "id": uuid7(), "queue_id": queue_id, "user_id": u}
            for u in ids
        ]
        await conn.execute(insert(members_table), rows)


async def list_queues(ctx: RequestContext) -> list[dict[str, Any]]:
    async with ctx.session.transaction() as conn:
        await may_read_cases(conn, ctx)
        stmt = (
            select(queues_table)
            .where(queues_table.c.tenant_id == ctx.tenant_id)
            .order_by(queues_table.c.name)
        )
        return [await _queue_out(conn, r) for r in (await conn.execute(stmt)).mappings().all()]


async def save_queue(
    ctx: RequestContext, data: Mapping[str, Any], queue_id: str | None = None
) -> dict[str, Any]:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        values = _queue_values(data, creating=queue_id is None)
        if values.get("name") is not None:
            clash = select(queues_table.c.id).where(
                queues_table.c.tenant_id == ctx.tenant_id, queues_table.c.name == values["name"]
            )
            found = (await conn.execute(clash)).scalar_one_or_none()
            if found is not None and str(found) != queue_id:
                raise Conflict("a queue with this name exists", code="duplicate", field="name")
        if queue_id is None:
            key = uuid7()
            stmt: Any = insert(queues_table).values(tenant_id=ctx.tenant_id, id=key, **values)
        else:
            key = _found(queue_id)
            stmt = (
                update(queues_table)
                .where(queues_table.c.tenant_id == ctx.tenant_id, queues_table.c.id == key)
                .values(**values, version=queues_table.c.version + 1, updated_at=func.now())
            )
        stmt = stmt.returning(*queues_table.c)
        row = (await conn.execute(stmt)).mappings().first()
        if row is None:
            raise NotFound("queue not found")
        if "member_ids" in data:
            await _set_members(conn, ctx, key, data["member_ids"])
        return await _queue_out(conn, row)


def _found(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("not found") from None


async def delete_row(ctx: RequestContext, table: Table, raw_id: str) -> None:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        stmt = delete(table).where(table.c.tenant_id == ctx.tenant_id, table.c.id == _found(raw_id))
        if (await conn.execute(stmt)).rowcount == 0:
            raise NotFound("not found")


# -- assignment rules ------------------------------------------------------------------------
def _choices(field: str, raw: Any, allowed: tuple[str, ...]) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or any(v not in allowed for v in raw):
        raise _bad(field, f"must be a list of: {', '.join(allowed)}", "invalid_choice")
    return sorted(set(raw))


def _rule_out(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "version": row["version"],
        "position": row["position"],
        "conditions": {
            "type": row["types"],
            "priority": row["priorities"],
            "channel": row["channels"],
        },
        "queue_id": row["queue_id"],
        "round_robin": row["round_robin"],
    }


async def list_rules(ctx: RequestContext) -> list[dict[str, Any]]:
    async with ctx.session.transaction() as conn:
        await may_read_cases(conn, ctx)
        stmt = (
            select(rules_table)
            .where(rules_table.c.tenant_id == ctx.tenant_id)
            .order_by(rules_table.c.position, rules_table.c.id)
        )
        return [_rule_out(r) for r in (await conn.execute(stmt)).mappings().all()]


async def create_rule(ctx: RequestContext, data: Mapping[str, Any]) -> dict[str, Any]:
    conditions = data.get("conditions") or {}
    if not isinstance(conditions, Mapping) or set(conditions) - {"type", "priority", "channel"}:
        raise _bad("conditions", "may hold only type, priority and channel")
    position = data.get("position")
    if position is not None and (not isinstance(position, int) or not 0 <= position <= 10_000):
        raise _bad("position", "must be an integer from 0 to 10000")
    round_robin = data.get("round_robin", False)
    if not isinstance(round_robin, bool):
        raise _bad("round_robin", "must be true or false")
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        queue = await _queue_ref(conn, ctx, "queue_id", data.get("queue_id"))
        if queue is None:
            raise _bad("queue_id", "is required", "required")
        if position is None:  # after the last rule
            last = select(func.coalesce(func.max(rules_table.c.position), -1)).where(
                rules_table.c.tenant_id == ctx.tenant_id
            )
            position = int((await conn.execute(last)).scalar_one()) + 1
        stmt = (
            insert(rules_table)
            .values(
                tenant_id=ctx.tenant_id,
                id=uuid7(),
                position=position,
                types=_choices("conditions.type", conditions.get("type"), TYPES),
                priorities=_choices("conditions.priority", conditions.get("priority"), PRIORITIES),
                channels=_choices("conditions.channel", conditions.get("channel"), CHANNELS),
                queue_id=queue,
                round_robin=round_robin,
            )
            .returning(*rules_table.c)
        )
        return _rule_out((await conn.execute(stmt)).mappings().one())


# -- SLA policies ----------------------------------------------------------------------------
def _minutes(field: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_MINUTES:
        raise _bad(
            field, f"must be a whole number of minutes from 1 to {MAX_MINUTES}", "out_of_range"
        )
    return raw


def policy_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """A whole policy checked; 422 naming the first impossible field."""
    priority = data.get("priority")
    if priority not in PRIORITIES:
        raise _bad("priority", f"must be one of {', '.join(PRIORITIES)}", "invalid_choice")
    first = _minutes("first_response_minutes", data.get("first_response_minutes"))
    resolution = _minutes("resolution_minutes", data.get("resolution_minutes"))
    if resolution < first:
        raise _bad("resolution_minutes", "must not be less than first_response_minutes")
    try:
        parse_hours(data.get("business_hours"))
    except ValueError as exc:
        field, _, message = str(exc).partition("|")
        raise _bad(field, message, "invalid_hours") from None
    raw_days = data.get("holidays") or []
    if not isinstance(raw_days, list) or len(raw_days) > 1000:
        raise _bad("holidays", "must be a list of dates (YYYY-MM-DD)", "invalid_date")
    try:
        holidays = sorted({date.fromisoformat(d) for d in raw_days if isinstance(d, str)})
    except ValueError:
        raise _bad("holidays", "must be a list of dates (YYYY-MM-DD)", "invalid_date") from None
    if len(holidays) != len(set(raw_days)):
        raise _bad("holidays", "must be a list of dates (YYYY-MM-DD)", "invalid_date")
    escalate_priority = data.get("escalate_priority", True)
    if not isinstance(escalate_priority, bool):
        raise _bad("escalate_priority", "must be true or false")
    return {
        "priority": priority,
        "first_response_minutes": first,
        "resolution_minutes": resolution,
        "business_hours": dict(data["business_hours"]),
        "holidays": holidays,
        "escalate_priority": escalate_priority,
    }


def _policy_out(row: Any) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("tenant_id", "created_at", "updated_at")}
    out["holidays"] = [d.isoformat() for d in row["holidays"]]
    return out


async def list_policies(ctx: RequestContext) -> list[dict[str, Any]]:
    async with ctx.session.transaction() as conn:
        await may_read_cases(conn, ctx)
        stmt = select(policies_table).where(policies_table.c.tenant_id == ctx.tenant_id)
        rows = (await conn.execute(stmt)).mappings().all()
    order = {p: i for i, p in enumerate(PRIORITIES)}
    return sorted((_policy_out(r) for r in rows), key=lambda p: order[p["priority"]])


async def save_policy(
    ctx: RequestContext, data: Mapping[str, Any], policy_id: str | None = None
) -> dict[str, Any]:
    values = policy_values(data)
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        values["escalation_queue_id"] = await _queue_ref(
            conn, ctx, "escalation_queue_id", data.get("escalation_queue_id")
        )
        clash = select(policies_table.c.id).where(
            policies_table.c.tenant_id == ctx.tenant_id,
            policies_table.c.priority == values["priority"],
        )
        found = (await conn.execute(clash)).scalar_one_or_none()
        if found is not None and str(found) != policy_id:
            raise Conflict("this priority has a policy", code="duplicate", field="priority")
        if policy_id is None:
            stmt: Any = insert(policies_table).values(tenant_id=ctx.tenant_id, id=uuid7(), **values)
        else:
            stmt = (
                update(policies_table)
                .where(
                    policies_table.c.tenant_id == ctx.tenant_id,
                    policies_table.c.id == _found(policy_id),
                )
                .values(**values, version=policies_table.c.version + 1, updated_at=func.now())
            )
        row = (await conn.execute(stmt.returning(*policies_table.c))).mappings().first()
        if row is None:
            raise NotFound("SLA policy not found")
        return _policy_out(row)
