"""REST for the calendar feed (a secret iCalendar URL per user) and a contact's vCard.
Parse -> call a service -> shape."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from backend.calendar.feeds import issue_feed, render_feed, revoke_feed
from backend.context import RequestContext
from backend.crm.contacts.service import contacts
from backend.crm.contacts.vcard import vcard
from backend.errors import NotFound

Ctx = NamedDependency[RequestContext]
FEED_PATH = "/calendar"
# Calendar apps poll; the feed must not sit in shared caches (its URL is a credential).
_PRIVATE = {"Cache-Control": "private, no-store"}


class CalendarFeedController(Controller):
    path = "/api/v1/me/calendar-feed"
    tags = ["calendar"]

    @post(
        "/",
        summary="Create or regenerate your secret calendar feed URL (the old one stops working)",
        status_code=HTTP_201_CREATED,
    )
    async def issue(self, ctx: Ctx, request: Request[Any, Any, Any]) -> Response[Any]:
        token = await issue_feed(ctx)
        url = str(request.base_url).rstrip("/") + f"{FEED_PATH}/{token}.ics"
        return Response({"url": url}, status_code=HTTP_201_CREATED, headers=_PRIVATE)

    @delete("/", summary="Revoke your calendar feed URL", status_code=HTTP_204_NO_CONTENT)
    async def revoke(self, ctx: Ctx) -> None:
        await revoke_feed(ctx)


@get(
    f"{FEED_PATH}/{{feed:str}}",
    summary="A calendar feed (iCalendar): the secret in the URL is the credential",
    tags=["calendar"],
)
async def calendar_feed(state: State, feed: FromPath[str]) -> Response[str]:
    if not feed.endswith(".ics"):
        raise NotFound("no such calendar feed")
    body = await render_feed(state.services.db, feed.removesuffix(".ics"))
    return Response(body, media_type="text/calendar; charset=utf-8", headers=_PRIVATE)


class VCardController(Controller):
    path = "/api/v1/contacts"
    tags = ["contacts"]

    @get("/{record_id:str}/vcard", summary="One contact as a vCard 4.0 (the fields you may read)")
    async def contact_vcard(self, ctx: Ctx, record_id: FromPath[str]) -> Response[str]:
        record = await contacts.get(ctx, record_id)
        return Response(
            vcard(record),
            media_type="text/vcard; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{record["id"]}.vcf"'},
        )
