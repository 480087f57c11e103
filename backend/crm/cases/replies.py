"""Agents' replies on a case: public ones show on the submitter's status page, internal ones
never leave the CRM. Replying needs update access to the case (a 404 when the case is out of
the caller's reach); the first public reply sets the case's `first_response_at`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.cases.selfservice import REPLY
from backend.crm.cases.selfservice_models import CaseReply, CaseStatusLink
from backend.crm.cases.service import cases
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.errors import NotFound, ValidationFailed
from backend.records.fields import validate_changes
from backend.records.service import Record

_replies = table_of(CaseReply)
_links = table_of(CaseStatusLink)


async def case_for_update(ctx: RequestContext, conn: AsyncConnection, case_id: str) -> Record:
    """The case, if the caller may update it (else the same 404 as a missing case)."""
    rights = await cases.access(ctx, conn, "update")
    case = await cases.fetch(conn, cases.visible(ctx, rights, "update"), cases.parse_id(case_id))
    if case is None:
        raise NotFound("case not found")
    return case


def _reply(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "from": row.author_kind,
        "author_id": row.author_id,
        "body": row.body,
        "public": row.public,
        "created_at": row.created_at,
    }


async def add_reply(ctx: RequestContext, case_id: str, data: dict[str, Any]) -> dict[str, Any]:
    public = data.get("public", False)
    if not isinstance(public, bool):
        raise ValidationFailed.one("public", "invalid_type", "must be true or false")
    body = validate_changes(REPLY, {k: v for k, v in data.items() if k != "public"}, creating=True)
    async with ctx.session.request_scope():
        async with ctx.session.transaction() as conn:
            case = await case_for_update(ctx, conn, case_id)
            stmt = (
                insert(_replies)
                .values(
                    tenant_id=ctx.tenant_id,
                    id=uuid7(),
                    case_id=case["id"],
                    author_kind="agent",
                    author_id=ctx.user_id,
                    body=body["body"],
                    public=public,
                )
                .returning(*_replies.c)
            )
            row = (await conn.execute(stmt)).one()
        if public and case["first_response_at"] is None:
            await cases.update(
                ctx,
                case["id"],
                {},
                case["version"],
                server_values={"first_response_at": datetime.now(UTC)},
            )
    return _reply(row)


async def list_replies(ctx: RequestContext, case_id: str) -> dict[str, Any]:
    """Every reply (public and internal), oldest first, and who submitted a web case."""
    async with ctx.session.request_scope():
        case = await cases.get(ctx, case_id)  # read access and scope; 404 otherwise
        async with ctx.session.transaction() as conn:
            rows = await conn.execute(
                select(*_replies.c)
                .where(_replies.c.tenant_id == ctx.tenant_id, _replies.c.case_id == case["id"])
                .order_by(_replies.c.created_at, _replies.c.id)
            )
            items = [_reply(r) for r in rows]
            link = (
                await conn.execute(
                    select(_links.c.submitter_name, _links.c.submitter_email).where(
                        _links.c.tenant_id == ctx.tenant_id, _links.c.case_id == case["id"]
                    )
                )
            ).first()
    submitter = None if link is None else {"name": link[0], "email": link[1]}
    return {"submitter": submitter, "items": items}
