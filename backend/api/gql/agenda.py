"""GraphQL for a rep's day: `agenda(from, to)`, `dueReminders` and `dismissReminder(id)`. The same
services as GET /api/v1/agenda, GET /api/v1/reminders/due and POST .../dismiss."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

from backend.agenda.reminders import Reminder, dismiss_reminder, due_reminders
from backend.agenda.service import agenda
from backend.api.gql.entities import entity_types
from backend.api.gql.payloads import FieldError, GqlInfo, payload_call

_ACTIVITY = entity_types("activity")


def _type(name: str, fields: dict[str, Any], values: dict[str, Any], doc: str) -> Any:
    """An object type naming the generated Activity type (built like the entity types)."""
    return strawberry.type(
        type(name, (), {"__module__": __name__, "__annotations__": fields, **values}),
        description=doc,
    )


AgendaItem: Any = _type(
    "AgendaItem",
    {"kind": str, "at": datetime, "overdue": bool, "activity": _ACTIVITY.type},
    {
        "at": strawberry.field(description="When it happens: a task's due time, else its start."),
        "overdue": strawberry.field(description="An open task due before the window starts."),
    },
    "One meeting, call or task on your agenda",
)
Agenda: Any = _type(
    "Agenda",
    {
        "from_": datetime,
        "to": datetime,
        "time_zone": str,
        "truncated": bool,
        "items": list[AgendaItem],
    },
    {
        "from_": strawberry.field(name="from", description="Window start, in your time zone."),
        "to": strawberry.field(description="Window end (exclusive), in your time zone."),
        "truncated": strawberry.field(description="More matched than one answer carries."),
    },
    "Your meetings, calls and tasks in a window, with your overdue open tasks, by time",
)
DueReminder: Any = _type(
    "Reminder",
    {"id": strawberry.ID, "remind_at": datetime, "at": datetime, "activity": _ACTIVITY.type},
    {"id": strawberry.field(description="The activity's id (what dismissReminder takes).")},
    "A reminder of one of your open activities whose time has come",
)


@strawberry.type(description="A dismissed reminder")
class ReminderDismissal:
    id: strawberry.ID
    remind_at: datetime
    dismissed_at: datetime


@strawberry.type
class DismissReminderPayload:
    dismissal: ReminderDismissal | None
    errors: list[FieldError]


def _reminder(reminder: Reminder) -> Any:
    return DueReminder(
        id=strawberry.ID(str(reminder.id)),
        remind_at=reminder.remind_at,
        at=reminder.at,
        activity=_ACTIVITY.node(reminder.activity),
    )


async def resolve_agenda(
    info: GqlInfo,
    from_: Annotated[str | None, strawberry.argument(name="from")] = None,
    to: str | None = None,
) -> Any:
    found = await agenda(info.context.require(), from_, to)
    window = found.window
    return Agenda(
        from_=window.local(window.start),
        to=window.local(window.end),
        time_zone=found.time_zone,
        truncated=found.truncated,
        items=[
            AgendaItem(kind=i.kind, at=i.at, overdue=i.overdue, activity=_ACTIVITY.node(i.activity))
            for i in found.items
        ],
    )


async def resolve_due_reminders(info: GqlInfo) -> list[Any]:
    return [_reminder(r) for r in await due_reminders(info.context.require())]


@strawberry.type
class AgendaQuery:
    agenda: Any = strawberry.field(
        resolver=resolve_agenda,
        graphql_type=Agenda,
        description="Your agenda: `from` and `to` are ISO dates (a whole day in your time "
        "zone) or date-times; by default today, 00:00-24:00 in your time zone.",
    )
    due_reminders: Any = strawberry.field(
        resolver=resolve_due_reminders,
        graphql_type=list[DueReminder],
        description="Your reminders whose time has come and that you have not dismissed.",
    )


@strawberry.type
class AgendaMutation:
    @strawberry.mutation(description="Dismiss a reminder (idempotent)")  # type: ignore[untyped-decorator]
    async def dismiss_reminder(self, info: GqlInfo, id: strawberry.ID) -> DismissReminderPayload:
        done, errors = await payload_call(
            info, lambda: dismiss_reminder(info.context.require(), str(id))
        )
        dismissal = (
            None
            if done is None
            else ReminderDismissal(
                id=strawberry.ID(str(done.id)),
                remind_at=done.remind_at,
                dismissed_at=done.dismissed_at,
            )
        )
        return DismissReminderPayload(dismissal=dismissal, errors=errors)
