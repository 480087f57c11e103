"""Customer satisfaction: when a case becomes resolved it gets its one survey (CSAT 1-5 by
default, or NPS 0-10), for its contact and its agent (the assignee). The survey's secret link
is minted the first time an agent asks for it and shown that once (only its SHA-256 is kept);
the customer answers once, within 30 days (then 410). A low score (CSAT <= 2, NPS <= 6)
records a `case.low_satisfaction` event naming the case and agent, for the team lead."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from backend.context import RequestContext
from backend.crm.cases import public_access as access
from backend.crm.cases.replies import case_for_update
from backend.crm.cases.selfservice_models import SURVEY_KINDS, CaseSurvey
from backend.crm.cases.sla import system_context
from backend.db.base import table_of
from backend.db.session import Database
from backend.errors import CaravanError, NotFound, ValidationFailed
from backend.history.events import EventType, record_event
from backend.tenants.models import Tenant

_surveys = table_of(CaseSurvey)
_tenants = table_of(Tenant)
SCORES = {"csat": (1, 5), "nps": (0, 10)}
LOW = {"csat": 2, "nps": 6}  # at or below: an alert
MAX_COMMENT = 2000


class SurveyGone(CaravanError):
    status = 410
    code = "survey_closed"
    title = "Gone"


def _shown(row: Any) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "expires_at": row.expires_at,
        "link_issued_at": row.link_issued_at,
        "answered_at": row.answered_at,
        "score": row.score,
        "comment": row.comment,
        "agent_id": row.agent_id,
        "contact_id": row.contact_id,
    }


async def case_survey(ctx: RequestContext, case_id: str, kind: str | None) -> dict[str, Any]:
    """The case's survey; the first call mints its link and returns it as `survey_url` (never
    again). `kind` (csat|nps) may be chosen on that first call only. Needs update access to
    the case (a link lets its holder answer)."""
    if kind is not None and kind not in SURVEY_KINDS:
        raise ValidationFailed.one("kind", "invalid_choice", "must be csat or nps")
    async with ctx.session.transaction() as conn:
        case = await case_for_update(ctx, conn, case_id)
        where = (_surveys.c.tenant_id == ctx.tenant_id) & (_surveys.c.case_id == case["id"])
        token, hashed = access.new_token()
        minted = (
            await conn.execute(
                update(_surveys)
                .where(where, _surveys.c.token_hash.is_(None))
                .values(
                    token_hash=hashed,
                    link_issued_at=datetime.now(UTC),
                    **({"kind": kind} if kind is not None else {}),
                )
                .returning(*_surveys.c)
            )
        ).first()
        if minted is not None:
            slug = (
                await conn.execute(select(_tenants.c.slug).where(_tenants.c.id == ctx.tenant_id))
            ).scalar_one()
            return {**_shown(minted), "survey_url": f"/public/{slug}/surveys/{token}"}
        row = (await conn.execute(select(*_surveys.c).where(where))).first()
    if row is None:
        raise NotFound("this case has no survey yet: it is sent once the case is resolved")
    return _shown(row)


def _answer(kind: str, data: dict[str, Any]) -> tuple[int, str | None]:
    unknown = set(data) - {"score", "comment"}
    if unknown:
        raise ValidationFailed.one(sorted(unknown)[0], "unknown_field", "is not a survey field")
    low, high = SCORES[kind]
    score = data.get("score")
    if not isinstance(score, int) or isinstance(score, bool) or not low <= score <= high:
        raise ValidationFailed.one("score", "out_of_range", f"must be an integer {low}-{high}")
    comment = data.get("comment")
    if comment is not None and (
        not isinstance(comment, str) or len(comment) > MAX_COMMENT or "\x00" in comment
    ):
        raise ValidationFailed.one(
            "comment", "invalid_comment", f"must be text of at most {MAX_COMMENT} characters"
        )
    return score, comment


async def answer_survey(
    db: Database, slug: str, token: str, data: dict[str, Any], source_ip: str | None
) -> dict[str, Any]:
    """404 for a wrong token (or another tenant's), 410 once answered or expired, 422 for a
    score out of the survey's range."""
    await access.throttle(
        db, [access.source_key("public_surveys", source_ip, access.LINK_PER_SOURCE)]
    )
    tenant_id = await access.tenant_of(db, slug)
    if not access.well_formed(token):
        raise access.not_found()
    ctx = system_context(db, tenant_id)
    async with ctx.session.transaction() as conn:
        survey = (
            await conn.execute(
                select(*_surveys.c)
                .where(
                    _surveys.c.tenant_id == tenant_id,
                    _surveys.c.token_hash == access.token_hash(token),
                )
                .with_for_update()
            )
        ).first()
        if survey is None:
            raise access.not_found()
        if survey.answered_at is not None:
            raise SurveyGone("this survey has been answered already")
        now = datetime.now(UTC)
        if survey.expires_at <= now:
            raise SurveyGone("this survey has expired")
        score, comment = _answer(survey.kind, data)
        await conn.execute(
            update(_surveys)
            .where(_surveys.c.tenant_id == tenant_id, _surveys.c.id == survey.id)
            .values(answered_at=now, score=score, comment=comment, updated_at=now)
        )
        if score <= LOW[survey.kind]:
            await record_event(
                conn,
                tenant_id,
                EventType.CASE_LOW_SATISFACTION,
                subject_user_id=survey.agent_id,
                channel="system",
                request_id=ctx.request_id,
                details=_alert(survey.case_id, survey.agent_id, survey.kind, score),
            )
    return {"thanks": True}


def _alert(case_id: uuid.UUID, agent_id: uuid.UUID | None, kind: str, score: int) -> dict[str, Any]:
    return {
        "case_id": str(case_id),
        "agent_id": None if agent_id is None else str(agent_id),
        "kind": kind,
        "score": score,
    }
