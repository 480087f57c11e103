"""Teams: the unit of the `team` record scope. Tenant admins manage them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.history.events import EventType
from backend.policy.admin import admin_policy, policy_event
from backend.policy.models import Team, TeamMember
from backend.tenants.models import User

_teams, _members, _users = table_of(Team), table_of(TeamMember), table_of(User)
_HIERARCHY_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


@dataclass(frozen=True)
class TeamView:
    id: uuid.UUID
    name: str
    member_ids: list[uuid.UUID]
    parent_team_id: uuid.UUID | None = None


async def _views(conn: AsyncConnection, team_id: uuid.UUID | None = None) -> list[TeamView]:
    teams_q = select(_teams.c.id, _teams.c.name, _teams.c.parent_team_id).order_by(_teams.c.name)
    members_q = select(_members.c.team_id, _members.c.user_id).order_by(_members.c.user_id)
    if team_id is not None:
        teams_q = teams_q.where(_teams.c.id == team_id)
        members_q = members_q.where(_members.c.team_id == team_id)
    members: dict[uuid.UUID, list[uuid.UUID]] = {}
    for m in (await conn.execute(members_q)).all():
        members.setdefault(m.team_id, []).append(m.user_id)
    return [
        TeamView(t.id, t.name, members.get(t.id, []), t.parent_team_id)
        for t in (await conn.execute(teams_q)).all()
    ]


async def _one(conn: AsyncConnection, team_id: uuid.UUID) -> TeamView:
    found = await _views(conn, team_id)
    if not found:
        raise NotFound("team not found")
    return found[0]


async def list_teams(ctx: RequestContext) -> list[TeamView]:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        return await _views(conn)


async def get_team(ctx: RequestContext, team_id: uuid.UUID) -> TeamView:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        return await _one(conn, team_id)


async def create_team(
    ctx: RequestContext, name: str, parent_team_id: uuid.UUID | None = None
) -> TeamView:
    if not name.strip() or len(name) > 100 or "\x00" in name:
        raise ValidationFailed.one("name", "invalid_name", "1 to 100 characters")
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        if parent_team_id is not None:
            await _parent(conn, parent_team_id)
        team_id = uuid7()
        try:
            async with conn.begin_nested():
                await conn.execute(
                    insert(_teams).values(
                        tenant_id=ctx.tenant_id,
                        id=team_id,
                        name=name.strip(),
                        parent_team_id=parent_team_id,
                    )
                )
        except IntegrityError:
            raise Conflict("a team with this name exists", field="name", code="duplicate") from None
        await policy_event(
            conn,
            ctx,
            EventType.TEAM_CHANGED,
            change="created",
            team_id=str(team_id),
            name=name.strip(),
        )
        return await _one(conn, team_id)


async def delete_team(ctx: RequestContext, team_id: uuid.UUID) -> None:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        team = await _one(conn, team_id)
        await conn.execute(delete(_teams).where(_teams.c.id == team_id))
        await policy_event(
            conn,
            ctx,
            EventType.TEAM_CHANGED,
            change="deleted",
            team_id=str(team_id),
            name=team.name,
        )


async def set_members(
    ctx: RequestContext, team_id: uuid.UUID, user_ids: list[uuid.UUID]
) -> TeamView:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        await _one(conn, team_id)
        wanted = list(dict.fromkeys(user_ids))
        known = set(
            (await conn.execute(select(_users.c.id).where(_users.c.id.in_(wanted)))).scalars()
        )
        unknown = [u for u in wanted if u not in known]
        if unknown:
            raise ValidationFailed.one("user_ids", "unknown_user", f"no user {unknown[0]}")
        await conn.execute(delete(_members).where(_members.c.team_id == team_id))
        for user_id in wanted:
            await conn.execute(
                insert(_members).values(
                    tenant_id=ctx.tenant_id, id=uuid7(), team_id=team_id, user_id=user_id
                )
            )
        await policy_event(
            conn,
            ctx,
            EventType.TEAM_CHANGED,
            change="members",
            team_id=str(team_id),
            members=",".join(str(u) for u in wanted),
        )
        return await _one(conn, team_id)


async def _parent(conn: AsyncConnection, parent_team_id: uuid.UUID) -> TeamView:
    """The named parent team; another tenant's or a missing one: the same 422."""
    found = await _views(conn, parent_team_id)
    if not found:
        raise ValidationFailed.one("parent_team_id", "unknown_team", "no such team")
    return found[0]


async def _ancestors(conn: AsyncConnection, team_id: uuid.UUID) -> set[uuid.UUID]:
    """`team_id` and every team above it."""
    columns = (_teams.c.tenant_id, _teams.c.id, _teams.c.parent_team_id)
    chain = select(*columns).where(_teams.c.id == team_id).cte("ancestors", recursive=True)
    parents = select(*columns).where(
        _teams.c.tenant_id == chain.c.tenant_id, _teams.c.id == chain.c.parent_team_id
    )
    chain = chain.union(parents)
    return set((await conn.execute(select(chain.c.id))).scalars())


async def set_parent(
    ctx: RequestContext, team_id: uuid.UUID, parent_team_id: uuid.UUID | None
) -> TeamView:
    """Put a team under another (or at the top, with None). A team may not end up beneath
    itself: 422 `cycle`."""
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        # One hierarchy change per tenant at a time: two concurrent moves (A under B, B under
        # A) would each pass the cycle check alone.
        await conn.execute(_HIERARCHY_LOCK, {"key": f"teams:{ctx.tenant_id}"})
        team = await _one(conn, team_id)
        if parent_team_id is not None:
            await _parent(conn, parent_team_id)
            if team_id in await _ancestors(conn, parent_team_id):
                raise ValidationFailed.one(
                    "parent_team_id", "cycle", "a team cannot be placed beneath itself"
                )
        await conn.execute(
            update(_teams).where(_teams.c.id == team_id).values(parent_team_id=parent_team_id)
        )
        await policy_event(
            conn,
            ctx,
            EventType.TEAM_CHANGED,
            change="parent",
            team_id=str(team_id),
            name=team.name,
            parent_team_id=str(parent_team_id) if parent_team_id else "",
        )
        return await _one(conn, team_id)
