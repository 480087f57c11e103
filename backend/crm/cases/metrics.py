"""Service metrics (`GET /api/v1/service/metrics`): per agent, queue or month, over the cases
created in a date range that the caller may read (their record scope), computed in one SQL
query. CSAT is the mean answered CSAT score; NPS is % promoters (9-10) minus % detractors
(0-6) of the answered NPS surveys; times are seconds from the case's creation; SLA attainment
is the share of the cases with a resolution target whose outcome is known (resolved, or
breached) that met both targets."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Float, Integer, Numeric, Text, and_, cast, extract, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from backend.context import RequestContext
from backend.crm.cases.selfservice_models import CaseSurvey
from backend.crm.cases.service import cases
from backend.db.base import table_of
from backend.errors import ValidationFailed

_surveys = table_of(CaseSurvey)
_cases = cases.table
GROUPS = {"agent": "assignee_id", "queue": "queue_id", "month": "created_at"}
MAX_DAYS = 3660


def _day(raw: str | None) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        return None


def _range(raw_from: str | None, raw_to: str | None) -> tuple[datetime | None, datetime | None]:
    start, end = _day(raw_from), _day(raw_to)
    for name, raw, parsed in (("from", raw_from, start), ("to", raw_to, end)):
        if raw is not None and parsed is None:
            raise ValidationFailed.one(name, "invalid_date", "must be a date, YYYY-MM-DD")
    if start is not None and end is not None and not start <= end <= start + timedelta(MAX_DAYS):
        raise ValidationFailed.one("to", "invalid_range", "must be on or after from (≤ 10 years)")
    low = datetime.combine(start, time(), tzinfo=UTC) if start else None
    high = datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC) if end else None
    return low, high


def _seconds(later: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.round(cast(func.avg(extract("epoch", later - _cases.c.created_at)), Float))


async def service_metrics(
    ctx: RequestContext, raw_from: str | None, raw_to: str | None, group_by: str | None
) -> dict[str, Any]:
    """`from`/`to`: dates (UTC), both inclusive; `group_by`: agent (default), queue or month."""
    group = group_by or "agent"
    if group not in GROUPS:
        raise ValidationFailed.one("group_by", "invalid_choice", "must be agent, queue or month")
    low, high = _range(raw_from, raw_to)
    async with ctx.session.transaction() as conn:
        rights = await cases.access(ctx, conn, "read")
        # Grouping by a field the caller may not read would show it: refused, naming it.
        rights.require_fields("read", {GROUPS[group]})
        key: ColumnElement[Any] = (
            func.to_char(func.timezone("UTC", _cases.c.created_at), "YYYY-MM")
            if group == "month"
            else cast(_cases.c[GROUPS[group]], Text)
        )
        conditions = [cases.visible(ctx, rights, "read")]
        if low is not None:
            conditions.append(_cases.c.created_at >= low)
        if high is not None:
            conditions.append(_cases.c.created_at < high)
        answered = _surveys.c.answered_at.is_not(None)
        nps = and_(answered, _surveys.c.kind == "nps")
        decided = and_(
            _cases.c.resolution_due_at.is_not(None),
            or_(_cases.c.resolved_at.is_not(None), _cases.c.sla_breached_at.is_not(None)),
        )
        responded = func.coalesce(_cases.c.first_response_at, _cases.c.resolved_at)
        met = and_(
            decided,
            _cases.c.sla_breached_at.is_(None),
            _cases.c.resolved_at <= _cases.c.resolution_due_at,
            or_(
                _cases.c.first_response_due_at.is_(None),
                responded <= _cases.c.first_response_due_at,
            ),
        )

        def count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
            return cast(func.count().filter(condition), Float)

        stmt = (
            select(
                key.label("key"),
                cast(func.count(_cases.c.id), Integer).label("cases"),
                func.round(
                    cast(
                        func.avg(_surveys.c.score).filter(answered, _surveys.c.kind == "csat"),
                        Numeric,
                    ),
                    2,
                ).label("csat_avg"),
                (
                    100
                    * (
                        count(and_(nps, _surveys.c.score >= 9))
                        - count(and_(nps, _surveys.c.score <= 6))
                    )
                    / func.nullif(count(nps), 0)
                ).label("nps"),
                _seconds(_cases.c.first_response_at).label("first_response_seconds_avg"),
                _seconds(_cases.c.resolved_at).label("resolution_seconds_avg"),
                (count(met) / func.nullif(count(decided), 0)).label("sla_attainment"),
            )
            .select_from(
                _cases.outerjoin(
                    _surveys,
                    and_(
                        _surveys.c.tenant_id == _cases.c.tenant_id,
                        _surveys.c.case_id == _cases.c.id,
                    ),
                )
            )
            .where(*conditions)
            .group_by(key)
            .order_by(key.asc().nulls_last())
        )
        rows = (await conn.execute(stmt)).mappings().all()
    return {"group_by": group, "items": [_row(r) for r in rows]}


def _row(row: Any) -> dict[str, Any]:
    def num(value: Any, digits: int) -> float | None:
        return None if value is None else round(float(value), digits)

    return {
        "key": row["key"],
        "cases": row["cases"],
        "csat_avg": num(row["csat_avg"], 2),
        "nps": num(row["nps"], 1),
        "first_response_seconds_avg": num(row["first_response_seconds_avg"], 0),
        "resolution_seconds_avg": num(row["resolution_seconds_avg"], 0),
        "sla_attainment": num(row["sla_attainment"], 4),
    }
