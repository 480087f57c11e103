"""The case service's write hook that opens a case's satisfaction survey when the case
becomes resolved (backend/crm/cases/surveys.py serves and answers it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.cases.selfservice_models import CaseSurvey
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.records.spec import EntitySpec

_surveys = table_of(CaseSurvey)
SURVEY_DAYS = 30


async def open_survey(
    conn: AsyncConnection,
    ctx: RequestContext,
    spec: EntitySpec,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Write hook of the case service: a case that becomes resolved gets its survey (once;
    a case resolved again keeps the first)."""
    if after is None or after.get("status") != "resolved":
        return
    if before is not None and before.get("status") == "resolved":
        return
    stmt = (
        insert(_surveys)
        .values(
            tenant_id=ctx.tenant_id,
            id=uuid7(),
            case_id=after["id"],
            contact_id=after.get("contact_id"),
            agent_id=after.get("assignee_id"),
            kind="csat",
            expires_at=datetime.now(UTC) + timedelta(days=SURVEY_DAYS),
        )
        .on_conflict_do_nothing(index_elements=[_surveys.c.tenant_id, _surveys.c.case_id])
    )
    await conn.execute(stmt)
