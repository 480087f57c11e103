"""Reminders of the caller's own open activities: due once their time (`remind_minutes_before`
before the activity happens) has come, until dismissed or a week old. Dismissing remembers the
reminder time dismissed, so an activity moved to a new time reminds again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.agenda.models import ReminderDismissal
from backend.agenda.timing import is_open, remind_time, reminds_at, scheduled_at
from backend.context import RequestContext
from backend.crm.activities.service import activities
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.errors import NotFound
from backend.policy.scopes import require_scope
from backend.records.service import Record

LAPSE = timedelta(days=7)  # an undismissed reminder older than this stops showing
MAX_DUE = 200
_a = activities.table
_dismissed = table_of(ReminderDismissal)


@dataclass(frozen=True)
class Reminder:
    remind_at: datetime
    at: datetime
    activity: Record

    @property
    def id(self) -> uuid.UUID:
        uid: uuid.UUID = self.activity["id"]
        return uid


@dataclass(frozen=True)
class Dismissal:
    id: uuid.UUID
    remind_at: datetime
    dismissed_at: datetime


def _own(ctx: RequestContext) -> Any:
    return and_(
        _a.c.tenant_id == ctx.tenant_id,
        _a.c.owner_id == ctx.user_id,
        _a.c.completed_at.is_(None),
        _a.c.remind_minutes_before.is_not(None),
    )


def _reminder(record: Record) -> Reminder | None:
    """The record's reminder, placed from the fields the caller may read (or None)."""
    remind_at = reminds_at(record)
    if remind_at is None or not is_open(record):
        return None
    at = remind_at + timedelta(minutes=record["remind_minutes_before"])
    return Reminder(remind_at=remind_at, at=at, activity=record)


async def due_reminders(ctx: RequestContext, now: datetime | None = None) -> list[Reminder]:
    moment = now or datetime.now(UTC)
    async with ctx.session.transaction() as conn:
        await activities.access(ctx, conn, "read")
        dismissed = select(_dismissed.c.id).where(
            _dismissed.c.tenant_id == _a.c.tenant_id,
            _dismissed.c.user_id == ctx.user_id,
            _dismissed.c.activity_id == _a.c.id,
            _dismissed.c.remind_at == remind_time,
        )
        stmt = (
            select(_a.c.id)
            .where(
                _own(ctx), remind_time <= moment, remind_time > moment - LAPSE, ~dismissed.exists()
            )
            .order_by(remind_time, _a.c.id)
            .limit(MAX_DUE)
        )
        ids = list((await conn.execute(stmt)).scalars())
        records = await activities.read_many(ctx, conn, ids, "reminders")
    found = (_reminder(records[i]) for i in ids if i in records)
    return [r for r in found if r is not None and r.remind_at <= moment]


async def _own_reminder(ctx: RequestContext, conn: AsyncConnection, key: uuid.UUID) -> Reminder:
    stmt = select(_a.c.id).where(_own(ctx), _a.c.id == key, scheduled_at.is_not(None))
    if (await conn.execute(stmt)).first() is None:
        raise NotFound("reminder not found")
    record = (await activities.read_many(ctx, conn, [key], "reminders")).get(key)
    reminder = None if record is None else _reminder(record)
    if reminder is None:
        raise NotFound("reminder not found")
    return reminder


async def dismiss_reminder(ctx: RequestContext, reminder_id: uuid.UUID | str) -> Dismissal:
    """Idempotent: dismissing again keeps the first dismissal's time. Another user's or
    tenant's activity, or one without a reminder, is the same 404 as a missing one."""
    key = activities.parse_id(reminder_id)
    async with ctx.session.transaction() as conn:
        require_scope(ctx, "update")  # it changes the user's state: an app needs crm.write
        await activities.access(ctx, conn, "read")
        reminder = await _own_reminder(ctx, conn, key)
        stmt = insert(_dismissed).values(
            tenant_id=ctx.tenant_id,
            id=uuid7(),
            user_id=ctx.user_id,
            activity_id=key,
            remind_at=reminder.remind_at,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[_dismissed.c.tenant_id, _dismissed.c.user_id, _dismissed.c.activity_id],
            set_={
                "remind_at": stmt.excluded.remind_at,
                "dismissed_at": func.now(),
                "version": _dismissed.c.version + 1,
                "updated_at": func.now(),
            },
            # The same reminder dismissed again: nothing changes.
            where=_dismissed.c.remind_at != stmt.excluded.remind_at,
        )
        await conn.execute(stmt)
        row = (
            await conn.execute(
                select(_dismissed.c.remind_at, _dismissed.c.dismissed_at).where(
                    _dismissed.c.tenant_id == ctx.tenant_id,
                    _dismissed.c.user_id == ctx.user_id,
                    _dismissed.c.activity_id == key,
                )
            )
        ).one()
    return Dismissal(id=key, remind_at=row.remind_at, dismissed_at=row.dismissed_at)


def reminder_body(reminder: Reminder) -> dict[str, Any]:
    return {
        "id": reminder.id,
        "remind_at": reminder.remind_at,
        "at": reminder.at,
        "activity": reminder.activity,
    }
