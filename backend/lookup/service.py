"""Caller lookup: an incoming phone number -> the contact or account card the caller may see,
with the notes of its last few activities. Reads go through the record services, so the
caller's scope and field masks apply; a match outside them is the same 404 as no match."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import case, select

from backend.context import RequestContext
from backend.crm.accounts.service import accounts
from backend.crm.activities.service import activities
from backend.crm.contacts.service import contacts
from backend.db.base import table_of
from backend.errors import BadRequest, Forbidden, NotFound
from backend.lookup.models import PhoneNumber
from backend.lookup.phones import tenant_region, to_e164
from backend.records.listing import build_list_query
from backend.records.service import WITHHELD, Record

RECENT_ACTIVITIES = 5
MAX_CANDIDATES = 20
_numbers = table_of(PhoneNumber)
_SERVICES = {"contact": contacts, "account": accounts}


async def lookup_phone(ctx: RequestContext, number: str) -> dict[str, Any]:
    async with ctx.session.transaction() as conn:
        e164 = to_e164(number, await tenant_region(conn, ctx))
        if e164 is None:
            raise BadRequest("not a phone number", field="number", code="invalid_phone")
        # A person before a company: the contact is who is calling.
        stmt = (
            select(_numbers.c.entity, _numbers.c.record_id, _numbers.c.field)
            .where(_numbers.c.tenant_id == ctx.tenant_id, _numbers.c.e164 == e164)
            .order_by(case((_numbers.c.entity == "contact", 0), else_=1), _numbers.c.record_id)
            .limit(MAX_CANDIDATES)
        )
        candidates = (await conn.execute(stmt)).all()
    for entity, record_id, field in candidates:
        record = await _readable(ctx, entity, record_id, field)
        if record is not None:
            return {
                "number": e164,
                "entity": entity,
                "record": record,
                "activities": await _recent_activities(ctx, entity, record_id),
            }
    raise NotFound("no record with this number", field="number")


async def _readable(
    ctx: RequestContext, entity: str, record_id: uuid.UUID, field: str
) -> Record | None:
    """The record, if it is in the caller's read scope and the field that matched is one the
    caller may read (else the match itself would reveal a hidden number)."""
    try:
        record = await _SERVICES[entity].get(ctx, record_id)
    except (NotFound, Forbidden):  # out of scope, or an entity the caller may not read
        return None
    if field.startswith("custom."):  # a custom phone field: live and readable, or no match
        return record if field.removeprefix("custom.") in record.get("custom", {}) else None
    return None if field in record[WITHHELD] else record


async def _recent_activities(
    ctx: RequestContext, entity: str, record_id: uuid.UUID
) -> list[Record]:
    query = build_list_query(
        activities.spec,
        limit=RECENT_ACTIVITIES,
        after=None,
        search=None,
        filters={f"{entity}_id": str(record_id)},
        updated_since=None,
        sort="-created_at",
    )
    try:
        return (await activities.list(ctx, query)).items
    except Forbidden:
        return []  # the card still helps a caller who may not read activities
