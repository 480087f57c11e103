"""REST for a rep's day: my profile (`/api/v1/me`: name and time zone), my agenda, and my
reminders. Parse -> call a service -> shape."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from msgspec import UNSET, UnsetType

from backend.agenda.reminders import dismiss_reminder, due_reminders, reminder_body
from backend.agenda.service import agenda, agenda_body
from backend.context import RequestContext
from backend.profile.service import get_profile, set_time_zone

Ctx = NamedDependency[RequestContext]
_BOUND = "ISO 8601 date or date-time; a date is a whole day in your time zone"


class ProfileBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    time_zone: str | UnsetType | None = UNSET  # null: back to the tenant's default


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["me"]

    @get("/", summary="Your name and time zone")
    async def read(self, ctx: Ctx) -> dict[str, Any]:
        return asdict(await get_profile(ctx))

    @patch("/", summary="Change your time zone (an IANA name, or null for the tenant default)")
    async def change(self, ctx: Ctx, data: JSONBody[ProfileBody]) -> dict[str, Any]:
        if isinstance(data.time_zone, UnsetType):
            return asdict(await get_profile(ctx))
        return asdict(await set_time_zone(ctx, data.time_zone))


class AgendaController(Controller):
    path = "/api/v1/agenda"
    tags = ["agenda"]

    @get(
        "/",
        summary="Your meetings, calls and tasks in a window (default: today in your time zone), "
        "with your open tasks that are overdue",
    )
    async def read(
        self,
        ctx: Ctx,
        from_: Annotated[str | None, QueryParameter(name="from", description=_BOUND)] = None,
        to: Annotated[str | None, QueryParameter(description=_BOUND)] = None,
    ) -> dict[str, Any]:
        return agenda_body(await agenda(ctx, from_, to))


class RemindersController(Controller):
    path = "/api/v1/reminders"
    tags = ["agenda"]

    @get("/due", summary="Your reminders whose time has come, not dismissed")
    async def due(self, ctx: Ctx) -> dict[str, Any]:
        return {"items": [reminder_body(r) for r in await due_reminders(ctx)]}

    @post(
        "/{reminder_id:str}/dismiss",
        summary="Dismiss a reminder (again: no change)",
        status_code=200,
    )
    async def dismiss(self, ctx: Ctx, reminder_id: FromPath[str]) -> dict[str, Any]:
        return asdict(await dismiss_reminder(ctx, reminder_id))


AGENDA_CONTROLLERS = (MeController, AgendaController, RemindersController)
