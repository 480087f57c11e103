"""SLA due times and the breach check. Due times are set when a case is created and when its
priority changes (backend/crm/cases/service.py); the breach check (`caravan service sla-check`,
and every CARAVAN_SLA_CHECK_INTERVAL seconds inside `caravan serve`) marks the open cases past a
due time, escalates them as their priority's policy says, and records an audit event."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import Principal, RequestContext
from backend.crm.cases.business_time import add_business_minutes, parse_hours
from backend.crm.cases.models import CLOSED_STATUSES, PRIORITIES, Case, QueueMember, SlaPolicy
from backend.db.base import table_of
from backend.db.session import Database
from backend.errors import ValidationFailed
from backend.history.changes import record_updated
from backend.history.events import EventType, record_event
from backend.profile.zones import TENANT_DEFAULT_ZONE, check_zone
from backend.tenants.models import Tenant

_cases = table_of(Case)
_policies = table_of(SlaPolicy)
_members = table_of(QueueMember)
_tenants = table_of(Tenant)
DUE_FIELDS = ("first_response_due_at", "resolution_due_at")


async def tenant_zone(conn: AsyncConnection, tenant_id: uuid.UUID) -> ZoneInfo:
    stmt = select(_tenants.c.time_zone).where(_tenants.c.id == tenant_id)
    name = (await conn.execute(stmt)).scalar_one_or_none() or TENANT_DEFAULT_ZONE
    try:
        return ZoneInfo(check_zone(name))
    except ValidationFailed:  # a zone a later tz database no longer knows: the default
        return ZoneInfo(TENANT_DEFAULT_ZONE)


async def due_times(
    conn: AsyncConnection, tenant_id: uuid.UUID, priority: str, start: datetime
) -> dict[str, datetime | None]:
    """The case's due times from its priority's policy (both None without a policy)."""
    stmt = select(_policies).where(
        _policies.c.tenant_id == tenant_id, _policies.c.priority == priority
    )
    policy = (await conn.execute(stmt)).mappings().first()
    if policy is None:
        return dict.fromkeys(DUE_FIELDS)
    zone = await tenant_zone(conn, tenant_id)
    hours = parse_hours(policy["business_hours"])
    holidays = set(cast(list[date], policy["holidays"]))

    def due(minutes: int) -> datetime | None:
        try:
            return add_business_minutes(start, minutes, hours, holidays, zone)
        except ValueError:  # no business time ahead (all days holidays): no deadline
            return None

    return {
        "first_response_due_at": due(policy["first_response_minutes"]),
        "resolution_due_at": due(policy["resolution_minutes"]),
    }


def raised(priority: str) -> str:
    """One level up (urgent stays urgent)."""
    index = PRIORITIES.index(priority) if priority in PRIORITIES else 1
    return PRIORITIES[min(index + 1, len(PRIORITIES) - 1)]


def breached_condition(now: datetime) -> Any:
    """Open cases past a due time they have not met."""
    return and_(
        _cases.c.status.not_in(CLOSED_STATUSES),
        or_(
            and_(_cases.c.first_response_at.is_(None), _cases.c.first_response_due_at <= now),
            and_(_cases.c.resolved_at.is_(None), _cases.c.resolution_due_at <= now),
        ),
    )


def system_context(db: Database, tenant_id: uuid.UUID) -> RequestContext:
    """The breach check acts as no user: its history rows carry no actor (NULL), channel
    "system"."""
    principal = Principal(user_id=cast(uuid.UUID, None), tenant_id=tenant_id)
    return RequestContext(principal=principal, db=db, channel="system")


async def escalation(
    conn: AsyncConnection, tenant_id: uuid.UUID, case: dict[str, Any], policy: Any | None
) -> dict[str, Any]:
    """What escalating `case` changes under its priority's policy (no policy: raise the
    priority). Moving queue keeps the assignee only if they are a member of the new queue."""
    changes: dict[str, Any] = {}
    up = raised(case["priority"])
    if (policy is None or policy["escalate_priority"]) and up != case["priority"]:
        changes["priority"] = up
    queue = policy["escalation_queue_id"] if policy is not None else None
    if queue is not None and queue != case["queue_id"]:
        changes["queue_id"] = queue
        if case["assignee_id"] is not None:
            member = select(_members.c.user_id).where(
                _members.c.tenant_id == tenant_id,
                _members.c.queue_id == queue,
                _members.c.user_id == case["assignee_id"],
            )
            if (await conn.execute(member)).first() is None:
                changes["assignee_id"] = None
    return changes


async def policy_for(conn: AsyncConnection, tenant_id: uuid.UUID, priority: str) -> Any | None:
    stmt = select(_policies).where(
        _policies.c.tenant_id == tenant_id, _policies.c.priority == priority
    )
    return (await conn.execute(stmt)).mappings().first()


async def check_breaches(
    db: Database, tenant_id: uuid.UUID, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Mark, escalate and audit every open case of the tenant past a due time and not yet
    marked; returns what was done per case. Rows another checker holds are skipped (SKIP
    LOCKED), so several server processes may run it at once."""
    moment = now or datetime.now(UTC)
    ctx = system_context(db, tenant_id)
    done: list[dict[str, Any]] = []
    async with db.tenant_transaction(tenant_id) as conn:
        columns = [c for c in _cases.c if c.name != "tenant_id"]
        stmt = (
            select(*columns)
            .where(
                _cases.c.tenant_id == tenant_id,
                _cases.c.sla_breached_at.is_(None),
                breached_condition(moment),
            )
            .order_by(_cases.c.created_at, _cases.c.id)
            .with_for_update(skip_locked=True)
        )
        for before in [dict(r) for r in (await conn.execute(stmt)).mappings()]:
            policy = await policy_for(conn, tenant_id, before["priority"])
            changes = await escalation(conn, tenant_id, before, policy)
            write = (
                update(_cases)
                .where(_cases.c.tenant_id == tenant_id, _cases.c.id == before["id"])
                .values(
                    **changes,
                    sla_breached_at=moment,
                    version=_cases.c.version + 1,
                    updated_at=moment,
                )
                .returning(*columns)
            )
            after = dict((await conn.execute(write)).mappings().one())
            await record_updated(conn, ctx, "case", before, after)
            details = {
                "case_id": str(before["id"]),
                "number": before["number"],
                "escalated": {k: str(v) if v is not None else None for k, v in changes.items()},
            }
            await record_event(
                conn,
                tenant_id,
                EventType.CASE_SLA_BREACHED,
                channel="system",
                request_id=ctx.request_id,
                details=details,
            )
            done.append(details)
    return done
