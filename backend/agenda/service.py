"""A rep's agenda: their own meetings, calls and tasks in a window of their day, plus their open
tasks that fell due before it. The caller's own rows are chosen by id in SQL; the records are
then read through the activity record service (scope, field masks, read budget) and placed
from what the caller may read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.agenda.timing import (
    AGENDA_KINDS,
    happens_at,
    is_open,
    scheduled_at,
)
from backend.agenda.window import Window, agenda_window
from backend.context import RequestContext
from backend.crm.activities.service import activities
from backend.profile.zones import user_zone, zone
from backend.records.service import Record

MAX_ITEMS = 500  # in the window
MAX_OVERDUE = 100  # the most recently due of the overdue tasks
_a = activities.table


@dataclass(frozen=True)
class AgendaItem:
    kind: str
    at: datetime
    overdue: bool
    activity: Record


@dataclass(frozen=True)
class Agenda:
    window: Window
    time_zone: str
    items: list[AgendaItem]
    # More matched than one answer carries: the latest in the window, or the oldest overdue
    # tasks, were left out.
    truncated: bool


def _place(record: Record, window: Window) -> AgendaItem | None:
    at = happens_at(record)
    if record.get("kind") not in AGENDA_KINDS or at is None or at >= window.end:
        return None
    overdue = at < window.start
    if overdue and (record["kind"] != "task" or not is_open(record)):
        return None
    return AgendaItem(kind=record["kind"], at=at, overdue=overdue, activity=record)


async def _ids(conn: AsyncConnection, stmt: Select[Any], limit: int) -> tuple[list[Any], bool]:
    """The first `limit` ids, and whether there were more."""
    ids = list((await conn.execute(stmt.limit(limit + 1))).scalars())
    return ids[:limit], len(ids) > limit


async def agenda(
    ctx: RequestContext, raw_from: str | None, raw_to: str | None, now: datetime | None = None
) -> Agenda:
    async with ctx.session.transaction() as conn:
        await activities.access(ctx, conn, "read")  # refused before anything is selected
        zone_name = await user_zone(conn, ctx.tenant_id, ctx.user_id)
        window = agenda_window(raw_from, raw_to, zone(zone_name), now or datetime.now(UTC))
        mine = select(_a.c.id).where(
            _a.c.tenant_id == ctx.tenant_id,
            _a.c.owner_id == ctx.user_id,
            _a.c.kind.in_(AGENDA_KINDS),
        )
        # Two selections, so that a long tail of old tasks cannot crowd out the window.
        in_window, more_in_window = await _ids(
            conn,
            mine.where(scheduled_at >= window.start, scheduled_at < window.end).order_by(
                scheduled_at, _a.c.id
            ),
            MAX_ITEMS,
        )
        overdue, more_overdue = await _ids(
            conn,
            mine.where(
                _a.c.kind == "task", _a.c.completed_at.is_(None), scheduled_at < window.start
            ).order_by(scheduled_at.desc(), _a.c.id),  # the most recently due first
            MAX_OVERDUE,
        )
        ids = overdue + in_window
        records = await activities.read_many(ctx, conn, ids, "agenda")
    placed = (_place(records[i], window) for i in ids if i in records)
    items = sorted(
        (p for p in placed if p is not None), key=lambda p: (p.at, str(p.activity["id"]))
    )
    truncated = more_in_window or more_overdue
    return Agenda(window=window, time_zone=zone_name, items=items, truncated=truncated)


def agenda_body(found: Agenda) -> dict[str, Any]:
    """The REST shape (the GraphQL one names the same things in camelCase)."""
    return {
        "from": found.window.local(found.window.start).isoformat(),
        "to": found.window.local(found.window.end).isoformat(),
        "time_zone": found.time_zone,
        "truncated": found.truncated,
        "items": [
            {"kind": i.kind, "at": i.at, "overdue": i.overdue, "activity": i.activity}
            for i in found.items
        ],
    }
