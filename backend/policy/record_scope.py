"""Record scope as SQL: which rows of a table are within the caller's own / team / tenant
scope. The record service, history reads and delta sync all narrow their queries with it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, or_, select, true

from backend.context import RequestContext
from backend.db.base import table_of
from backend.policy.models import Team, TeamMember

_members, _teams = table_of(TeamMember), table_of(Team)


def owner_scope(owner: ColumnElement[Any], ctx: RequestContext, scope: str) -> ColumnElement[bool]:
    """Whether `owner` is within the caller's scope: own (the caller), team (shares one of the
    caller's teams), tenant (anyone in the tenant)."""
    if scope == "tenant":
        return true()
    if scope == "own":
        return owner == ctx.user_id
    teammates = select(_members.c.user_id).where(
        _members.c.tenant_id == ctx.tenant_id, _members.c.team_id.in_(visible_teams(ctx))
    )
    return or_(owner == ctx.user_id, owner.in_(teammates))


def visible_teams(ctx: RequestContext) -> Select[tuple[Any]]:
    """The caller's teams and every team beneath them (business units nest): a manager of a
    parent team sees the child teams' records under the team scope, never the other way."""
    mine = (
        select(_members.c.team_id.label("id"))
        .where(_members.c.tenant_id == ctx.tenant_id, _members.c.user_id == ctx.user_id)
        .cte("visible_teams", recursive=True)
    )
    below = select(_teams.c.id).where(
        _teams.c.tenant_id == ctx.tenant_id, _teams.c.parent_team_id == mine.c.id
    )
    # UNION (not UNION ALL) ends the recursion even if a cycle slipped in.
    visible = mine.union(below)
    return select(visible.c.id)


def scope_condition(table: Table, ctx: RequestContext, scope: str) -> ColumnElement[bool]:
    """The caller's tenant, narrowed to the records in `scope` (own / team / tenant)."""
    condition = table.c.tenant_id == ctx.tenant_id
    if "owner_id" not in table.c:
        return condition
    return and_(condition, owner_scope(table.c.owner_id, ctx, scope))
