"""Per-user secret calendar feed URLs: issue (or regenerate, which invalidates the old URL),
revoke (by the user, or by a tenant admin cutting the user off: `drop_feed`), and render the
feed as its user, through the record service (scope and field masks).

The secret is the only credential a phone's calendar app can send, so: 256 random bits, only a
SHA-256 stored, one feed per user, and the feed reads with a read-only ceiling. The tenant's id
prefixes the token so the lookup runs inside that tenant's row-level-security transaction.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.calendar.ical import calendar
from backend.calendar.models import CalendarFeed
from backend.context import Principal, RequestContext
from backend.crm.activities.service import activities
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import Database
from backend.errors import Forbidden, NotFound
from backend.history.events import EventType, record_event
from backend.records.listing import MAX_LIMIT, build_list_query
from backend.records.service import Record
from backend.tenants.models import User

MAX_ITEMS = 1000  # the most recently changed activities a feed carries
_TOKEN = re.compile(r"^([0-9a-f]{32})([A-Za-z0-9_-]{43})$")
_feeds = table_of(CalendarFeed)
_users = table_of(User)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _first_party(ctx: RequestContext) -> None:
    # A feed URL is a long-lived credential: only the user's own session may mint one.
    if ctx.principal.scopes is not None:
        raise Forbidden(
            "calendar feeds are managed from a first-party session", code="first_party_only"
        )


async def issue_feed(ctx: RequestContext) -> str:
    """A new secret token for the caller's feed; any earlier one stops working."""
    _first_party(ctx)
    token = ctx.tenant_id.hex + secrets.token_urlsafe(32)
    stmt = insert(_feeds).values(
        tenant_id=ctx.tenant_id, id=uuid7(), user_id=ctx.user_id, token_hash=_hash(token)
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[_feeds.c.tenant_id, _feeds.c.user_id],
        set_={
            "token_hash": stmt.excluded.token_hash,
            "version": _feeds.c.version + 1,
            "updated_at": func.now(),
        },
    )
    async with ctx.session.transaction() as conn:
        await conn.execute(stmt)
        await record_event(
            conn,
            ctx.tenant_id,
            EventType.CALENDAR_FEED_ISSUED,
            actor_user_id=ctx.user_id,
            subject_user_id=ctx.user_id,
            request_id=ctx.request_id,
            channel=ctx.channel,
        )
    return token


async def revoke_feed(ctx: RequestContext) -> None:
    _first_party(ctx)
    async with ctx.session.transaction() as conn:
        gone = await conn.execute(
            delete(_feeds).where(
                _feeds.c.tenant_id == ctx.tenant_id, _feeds.c.user_id == ctx.user_id
            )
        )
        if gone.rowcount == 0:
            raise NotFound("you have no calendar feed")
        await record_event(
            conn,
            ctx.tenant_id,
            EventType.CALENDAR_FEED_REVOKED,
            actor_user_id=ctx.user_id,
            subject_user_id=ctx.user_id,
            request_id=ctx.request_id,
            channel=ctx.channel,
        )


async def drop_feed(
    conn: AsyncConnection, ctx: RequestContext, user_id: uuid.UUID, reason: str
) -> bool:
    """A tenant admin revokes a user's feed (with all their sessions, or deactivating them),
    in the caller's transaction. False when the user had none."""
    gone = await conn.execute(delete(_feeds).where(_feeds.c.user_id == user_id))
    if not gone.rowcount:
        return False
    await record_event(
        conn,
        ctx.tenant_id,
        EventType.CALENDAR_FEED_REVOKED,
        actor_user_id=ctx.user_id,
        actor_client_id=ctx.principal.client_id,
        subject_user_id=user_id,
        details={"reason": reason},
        request_id=ctx.request_id,
        channel=ctx.channel,
    )
    return True


async def _feed_owner(db: Database, token: str) -> tuple[uuid.UUID, uuid.UUID]:
    """(tenant, user) of a live feed token; unknown, revoked or replaced tokens are 404."""
    match = _TOKEN.match(token)
    if match is None:
        raise NotFound("no such calendar feed")
    tenant_id = uuid.UUID(match.group(1))
    async with db.tenant_transaction(tenant_id) as conn:
        stmt = (
            select(_feeds.c.user_id)
            .join(
                _users,
                (_users.c.tenant_id == _feeds.c.tenant_id) & (_users.c.id == _feeds.c.user_id),
            )
            .where(
                _feeds.c.tenant_id == tenant_id,
                _feeds.c.token_hash == _hash(token),
                _users.c.active.is_(True),
            )
        )
        user_id = (await conn.execute(stmt)).scalar_one_or_none()
    if user_id is None:
        raise NotFound("no such calendar feed")
    return tenant_id, user_id


async def render_feed(db: Database, token: str) -> str:
    tenant_id, user_id = await _feed_owner(db, token)
    # The user's own meetings and tasks, read as the user with a read-only ceiling.
    ctx = RequestContext(
        principal=Principal(user_id=user_id, tenant_id=tenant_id, scopes=frozenset({"crm.read"})),
        db=db,
        channel="rest",
    )
    records: list[Record] = []
    after: str | None = None
    while len(records) < MAX_ITEMS:
        query = build_list_query(
            activities.spec,
            limit=MAX_LIMIT,
            after=after,
            filters={"owner_id": user_id},
            sort="-updated_at",
        )
        page = await activities.list(ctx, query)
        records.extend(page.items)
        if page.next_cursor is None:
            break
        after = page.next_cursor
    return calendar(records[:MAX_ITEMS], datetime.now(UTC), "Caravan CRM")
