"""What decides which records and fields a caller sees, as one short stamp.

Most of what a phone holds changes through record changes, which the change history carries.
Some does not: the caller's roles, field rules or scopes change, or (for the team scope) who
their teammates are. Such a change touches no record, so the history cannot say which records
came into view or left it. The sync cursor carries this stamp; when it no longer matches, the
sync starts over with a fresh working set and tells the phone to drop its copy first (`reset`).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.db.base import table_of
from backend.policy.access import entity_access
from backend.policy.models import TeamMember
from backend.sync.entities import synced

_members = table_of(TeamMember)


async def visibility_stamp(ctx: RequestContext, conn: AsyncConnection) -> str:
    parts: list[str] = []
    team_scope = False
    for name, service in synced().items():
        access = await entity_access(ctx, conn, service.spec)
        scope = access.scopes.get("read", "own") if access.may("read") else "none"
        team_scope = team_scope or scope == "team"
        parts.append(f"{name}:{scope}:{','.join(sorted(access.readable('read')))}")
    if team_scope:
        mine = select(_members.c.team_id).where(_members.c.user_id == ctx.user_id)
        teammates = (
            await conn.execute(
                select(_members.c.user_id)
                .distinct()
                .where(_members.c.team_id.in_(mine))
                .order_by(_members.c.user_id)
            )
        ).scalars()
        parts.append("team:" + ",".join(str(u) for u in teammates))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
