"""Cases on the generic record service, with what the server assigns: the number, the route
(queue and assignee from the tenant's rules), the SLA due times and `resolved_at`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.accounts.service import ACCOUNT
from backend.crm.cases.models import (
    CHANNELS,
    CLOSED_STATUSES,
    PRIORITIES,
    STATUSES,
    TYPES,
    Case,
    Queue,
)
from backend.crm.cases.routing import case_label, check_member, next_number, route_new_case
from backend.crm.cases.sla import due_times
from backend.crm.cases.survey_hook import open_survey
from backend.crm.contacts.service import CONTACT
from backend.db.base import table_of
from backend.errors import BadRequest
from backend.records.fields import OWNER, FieldSpec
from backend.records.service import Record, RecordService
from backend.records.spec import EntitySpec, ListFilter, Relation
from backend.tenants.models import User

_cases = table_of(Case)
_DURATION = re.compile(
    r"^P(?:(?P<d>[0-9]{1,4})D)?(?:T(?=[0-9])(?:(?P<h>[0-9]{1,5})H)?(?:(?P<m>[0-9]{1,6})M)?"
    r"(?:(?P<s>[0-9]{1,7})S)?)?$"
)
READ_ONLY = "Set by the server; read-only."


def parse_duration(field: str, raw: str) -> timedelta:
    """An ISO 8601 duration of days, hours, minutes and seconds (PT1H, P1DT12H, PT90M)."""
    match = _DURATION.match(raw)
    if match is None or raw in ("P", "PT"):
        raise BadRequest(
            f"{field}: must be an ISO 8601 duration, e.g. PT1H",
            field=field,
            code="invalid_duration",
        )
    parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    return timedelta(
        days=parts.get("d", 0),
        hours=parts.get("h", 0),
        minutes=parts.get("m", 0),
        seconds=parts.get("s", 0),
    )


def _sla_filter(raw: str) -> ColumnElement[bool]:
    if raw == "breached":
        return _cases.c.sla_breached_at.is_not(None)
    raise BadRequest("sla: must be 'breached'", field="sla", code="invalid_filter")


def _due_within(raw: str) -> ColumnElement[bool]:
    """Open, not yet breached, with a due time it has not met within the duration from now."""
    horizon = datetime.now(UTC) + parse_duration("sla_due_within", raw)
    return and_(
        _cases.c.status.not_in(CLOSED_STATUSES),
        _cases.c.sla_breached_at.is_(None),
        or_(
            and_(_cases.c.first_response_at.is_(None), _cases.c.first_response_due_at <= horizon),
            and_(_cases.c.resolved_at.is_(None), _cases.c.resolution_due_at <= horizon),
        ),
    )


_SLA_FIELDS = ("status", "sla_breached_at", "first_response_at", "resolved_at")
_DUE_FIELDS = ("first_response_due_at", "resolution_due_at")

CASE = EntitySpec(
    name="case",
    plural="cases",
    table=_cases,
    fields=EntitySpec.field_map(
        FieldSpec(
            "number",
            max_length=20,
            on_create=False,
            on_update=False,
            description="The case number, per tenant and sequential: C-000123. " + READ_ONLY,
        ),
        FieldSpec("subject", max_length=200, required=True),
        FieldSpec("description", max_length=20_000, multiline=True),
        FieldSpec("type", kind="choice", choices=TYPES, description="What kind of request."),
        FieldSpec("priority", kind="choice", choices=PRIORITIES),
        FieldSpec("status", kind="choice", choices=STATUSES),
        FieldSpec("channel", kind="choice", choices=CHANNELS, description="How it came in."),
        FieldSpec("account_id", kind="uuid"),
        FieldSpec("contact_id", kind="uuid"),
        FieldSpec(
            "assignee_id",
            kind="uuid",
            description="The agent working it: a member of its queue (if it has one).",
        ),
        FieldSpec("queue_id", kind="uuid", description="The queue it waits in."),
        FieldSpec("resolution", max_length=20_000, multiline=True),
        FieldSpec("first_response_at", kind="datetime"),
        FieldSpec("resolved_at", kind="datetime", on_create=False, on_update=False),
        FieldSpec("first_response_due_at", kind="datetime", on_create=False, on_update=False),
        FieldSpec("resolution_due_at", kind="datetime", on_create=False, on_update=False),
        FieldSpec("sla_breached_at", kind="datetime", on_create=False, on_update=False),
        FieldSpec("owner_id", kind="uuid", on_create=False, description=OWNER),
    ),
    search_columns=("subject",),
    filter_columns=("owner_id", "account_id", "contact_id", "assignee_id", "queue_id"),
    # Numbers follow creation: sort by created_at for number order.
    sort_columns=("id", "created_at", "updated_at"),
    references={
        "account_id": ACCOUNT,
        "contact_id": CONTACT,
        "assignee_id": table_of(User),
        "queue_id": table_of(Queue),
        "owner_id": table_of(User),
    },
    relations=(Relation("account_id"), Relation("contact_id")),
    list_filters={
        "sla": ListFilter(
            "'breached': the cases whose SLA was breached", ("sla_breached_at",), _sla_filter
        ),
        "sla_due_within": ListFilter(
            "ISO 8601 duration (PT1H): open cases due within it and not yet breached",
            (*_SLA_FIELDS, *_DUE_FIELDS),
            _due_within,
        ),
    },
)


async def prepare_case(
    conn: AsyncConnection, ctx: RequestContext, before: Record | None, values: dict[str, Any]
) -> None:
    """The values the server assigns, in the write's transaction."""
    now = datetime.now(UTC)
    if before is None:
        values["number"] = case_label(await next_number(conn, ctx.tenant_id))
        if values.get("queue_id") is None and values.get("assignee_id") is None:
            await route_new_case(conn, ctx.tenant_id, values)
    merged = {**(before or {}), **values}
    if "queue_id" in values or "assignee_id" in values:
        await check_member(conn, ctx.tenant_id, merged.get("queue_id"), merged.get("assignee_id"))
    if "status" in values:
        if values["status"] == "resolved":
            values["resolved_at"] = merged.get("resolved_at") or now
        elif values["status"] not in CLOSED_STATUSES:
            values["resolved_at"] = None  # reopened
    priority = merged.get("priority") or "normal"
    if before is None or priority != before["priority"]:
        start = before["created_at"] if before is not None else now
        values.update(await due_times(conn, ctx.tenant_id, priority, start))


cases = RecordService(CASE, prepare=(prepare_case,), hooks=(open_survey,))
