"""Case numbers and routing, inside a case write's transaction: the tenant's next number, the
first assignment rule that matches a new case, the least-loaded member of a queue, and the rule
that an assignee belongs to the case's queue."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.crm.cases.models import (
    CLOSED_STATUSES,
    Case,
    CaseAssignmentRule,
    CaseCounter,
    QueueMember,
)
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.errors import ValidationFailed

_counters = table_of(CaseCounter)
_rules = table_of(CaseAssignmentRule)
_members = table_of(QueueMember)
_cases = table_of(Case)


def case_label(number: int) -> str:
    """The human-readable case number: C-000123."""
    return f"C-{number:06d}"


async def next_number(conn: AsyncConnection, tenant_id: uuid.UUID) -> int:
    """The tenant's next case number. The upsert locks the tenant's counter row until the
    create commits, so concurrent creates take numbers one after another; a create that rolls
    back takes its increment with it (no gaps)."""
    stmt = (
        insert(_counters)
        .values(tenant_id=tenant_id, id=uuid7(), last_number=1)
        .on_conflict_do_update(
            index_elements=[_counters.c.tenant_id],
            set_={"last_number": _counters.c.last_number + 1},
        )
        .returning(_counters.c.last_number)
    )
    return int((await conn.execute(stmt)).scalar_one())


def _holds(allowed: list[str], value: Any) -> bool:
    return not allowed or value in allowed


async def route_new_case(conn: AsyncConnection, tenant_id: uuid.UUID, case: dict[str, Any]) -> None:
    """Set queue_id (and assignee_id, for a round-robin rule) of a new case from the first rule
    whose conditions hold. Runs after next_number, so creates are already serialized per
    tenant and the loads counted here include every committed earlier case."""
    stmt = (
        select(_rules)
        .where(_rules.c.tenant_id == tenant_id)
        .order_by(_rules.c.position, _rules.c.id)
    )
    for rule in (await conn.execute(stmt)).mappings():
        if (
            _holds(rule["types"], case.get("type") or "question")
            and _holds(rule["priorities"], case.get("priority") or "normal")
            and _holds(rule["channels"], case.get("channel"))
        ):
            case["queue_id"] = rule["queue_id"]
            if rule["round_robin"]:
                case["assignee_id"] = await least_loaded(conn, tenant_id, rule["queue_id"])
            return


async def least_loaded(
    conn: AsyncConnection, tenant_id: uuid.UUID, queue_id: uuid.UUID
) -> uuid.UUID | None:
    """The queue member with the fewest open cases (ties: the lowest user id); None when the
    queue has no members."""
    load = func.count(_cases.c.id)
    stmt = (
        select(_members.c.user_id, load.label("load"))
        .select_from(
            _members.outerjoin(
                _cases,
                (_cases.c.tenant_id == _members.c.tenant_id)
                & (_cases.c.assignee_id == _members.c.user_id)
                & _cases.c.status.not_in(CLOSED_STATUSES),
            )
        )
        .where(_members.c.tenant_id == tenant_id, _members.c.queue_id == queue_id)
        .group_by(_members.c.user_id)
        .order_by(load, _members.c.user_id)
        .limit(1)
    )
    row = (await conn.execute(stmt)).first()
    return row.user_id if row is not None else None


async def check_member(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    queue_id: uuid.UUID | None,
    assignee_id: uuid.UUID | None,
) -> None:
    """An assignee of a case in a queue must be one of the queue's members: otherwise the same
    422 as a user who does not exist (no telling which users exist elsewhere)."""
    if queue_id is None or assignee_id is None:
        return
    stmt = select(_members.c.user_id).where(
        _members.c.tenant_id == tenant_id,
        _members.c.queue_id == queue_id,
        _members.c.user_id == assignee_id,
    )
    if (await conn.execute(stmt)).first() is None:
        raise ValidationFailed.one("assignee_id", "unknown_reference", "names no such record")
