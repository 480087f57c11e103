"""Call scripts (read by everyone with `call_script` read; written per policy) and their runs.

A run is checked against the script's graph as it is now, and stores the script version it
followed. The subject is stored as given (`subject_type`, a uuid `subject_id`): linking a run
to a case is the cases module's job.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.errors import NotFound, PreconditionFailed, ValidationFailed
from backend.knowledge.access import require
from backend.knowledge.graph import check_steps, follow
from backend.knowledge.models import CallScript, ScriptRun

scripts = table_of(CallScript)
runs = table_of(ScriptRun)
MAX_NAME, MAX_DESCRIPTION = 200, 5000
_SUBJECT_TYPE = re.compile(r"^[a-z][a-z_]{0,39}$")
SCRIPT_COLUMNS = (
    scripts.c.id,
    scripts.c.version,
    scripts.c.name,
    scripts.c.description,
    scripts.c.steps,
    scripts.c.created_at,
    scripts.c.updated_at,
)
RUN_COLUMNS = (
    runs.c.id,
    runs.c.script_id,
    runs.c.script_version,
    runs.c.subject_type,
    runs.c.subject_id,
    runs.c.answers,
    runs.c.path,
    runs.c.end_reached.label("end"),
    runs.c.run_by,
    runs.c.created_at,
)


def _key(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("call script not found") from None


def _checked(data: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "name" in data or creating:
        name = data.get("name")
        if not isinstance(name, str) or not 0 < len(name.strip()) <= MAX_NAME:
            raise ValidationFailed.one("name", "required", f"1-{MAX_NAME} characters")
        values["name"] = name.strip()
    if "description" in data:
        description = data["description"]
        if description is not None and (
            not isinstance(description, str) or len(description) > MAX_DESCRIPTION
        ):
            raise ValidationFailed.one("description", "too_long", f"at most {MAX_DESCRIPTION}")
        values["description"] = description
    if "steps" in data or creating:
        values["steps"] = check_steps(data.get("steps"))
    return values


async def create_script(ctx: RequestContext, data: Mapping[str, Any]) -> dict[str, Any]:
    values = _checked(data, creating=True)
    async with ctx.session.transaction() as conn:
        await require(ctx, conn, "call_script", "create")
        stmt = insert(scripts).values(tenant_id=ctx.tenant_id, id=uuid7(), **values)
        return dict((await conn.execute(stmt.returning(*SCRIPT_COLUMNS))).mappings().one())


async def list_scripts(ctx: RequestContext) -> list[dict[str, Any]]:
    async with ctx.session.transaction() as conn:
        await require(ctx, conn, "call_script", "read")
        stmt = select(*SCRIPT_COLUMNS).where(scripts.c.tenant_id == ctx.tenant_id)
        rows = await conn.execute(stmt.order_by(scripts.c.name, scripts.c.id).limit(500))
        return [dict(r) for r in rows.mappings()]


async def get_script(ctx: RequestContext, script_id: str) -> dict[str, Any]:
    async with ctx.session.transaction() as conn:
        await require(ctx, conn, "call_script", "read")
        stmt = select(*SCRIPT_COLUMNS).where(
            scripts.c.tenant_id == ctx.tenant_id, scripts.c.id == _key(script_id)
        )
        row = (await conn.execute(stmt)).mappings().first()
    if row is None:
        raise NotFound("call script not found")
    return dict(row)


async def update_script(
    ctx: RequestContext, script_id: str, data: Mapping[str, Any], version: int
) -> dict[str, Any]:
    values = _checked(data, creating=False)
    key = _key(script_id)
    async with ctx.session.transaction() as conn:
        await require(ctx, conn, "call_script", "update")
        current = await _fetch(conn, ctx, key)
        if current["version"] != version:
            raise PreconditionFailed(
                f"call script is at version {current['version']}; reload and retry",
                field="version",
            )
        stmt = (
            update(scripts)
            .where(scripts.c.tenant_id == ctx.tenant_id, scripts.c.id == key)
            .values(**values, version=scripts.c.version + 1, updated_at=func.now())
        )
        return dict((await conn.execute(stmt.returning(*SCRIPT_COLUMNS))).mappings().one())


async def delete_script(ctx: RequestContext, script_id: str) -> None:
    key = _key(script_id)
    async with ctx.session.transaction() as conn:
        await require(ctx, conn, "call_script", "delete")
        await _fetch(conn, ctx, key)
        await conn.execute(
            delete(scripts).where(scripts.c.tenant_id == ctx.tenant_id, scripts.c.id == key)
        )


async def _fetch(
    conn: AsyncConnection, ctx: RequestContext, key: uuid.UUID, *, lock: bool = True
) -> dict[str, Any]:
    stmt = select(*SCRIPT_COLUMNS).where(scripts.c.tenant_id == ctx.tenant_id, scripts.c.id == key)
    if lock:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).mappings().first()
    if row is None:
        raise NotFound("call script not found")
    return dict(row)


def _subject(data: Mapping[str, Any]) -> tuple[str, uuid.UUID]:
    subject_type = data.get("subject_type")
    if not isinstance(subject_type, str) or not _SUBJECT_TYPE.match(subject_type):
        raise ValidationFailed.one("subject_type", "invalid", 'an entity name, e.g. "case"')
    try:
        return subject_type, uuid.UUID(str(data.get("subject_id")))
    except ValueError:
        raise ValidationFailed.one("subject_id", "invalid_uuid", "a UUID") from None


async def run_script(
    ctx: RequestContext, script_id: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Check the answers follow the script's graph and store the run (path and end)."""
    subject_type, subject_id = _subject(data)
    key = _key(script_id)
    async with ctx.session.transaction() as conn:
        await require(ctx, conn, "script_run", "create")
        script = await _fetch(conn, ctx, key, lock=False)
        path, end = follow(script["steps"], data.get("answers"))
        answers = [{"step": a["step"], "option": a["option"]} for a in data["answers"]]
        stmt = insert(runs).values(
            tenant_id=ctx.tenant_id,
            id=uuid7(),
            script_id=key,
            script_version=script["version"],
            subject_type=subject_type,
            subject_id=subject_id,
            answers=answers,
            path=path,
            end_reached=end,
            run_by=ctx.user_id,
        )
        return dict((await conn.execute(stmt.returning(*RUN_COLUMNS))).mappings().one())


async def list_runs(ctx: RequestContext, script_id: str) -> list[dict[str, Any]]:
    await get_script(ctx, script_id)
    async with ctx.session.transaction() as conn:
        stmt = (
            select(*RUN_COLUMNS)
            .where(runs.c.tenant_id == ctx.tenant_id, runs.c.script_id == _key(script_id))
            .order_by(runs.c.created_at.desc(), runs.c.id)
            .limit(200)
        )
        return [dict(r) for r in (await conn.execute(stmt)).mappings()]
