"""The sales forecast: the open opportunities closing in a period, counted and summed per
owner, team or stage, with their weighted amount (amount x probability / 100; the probability
is the opportunity's own, else its stage's default). One SQL statement, in the caller's
record scope for reading opportunities (managers: their teams; salespeople: their own)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, literal, null, select, union_all

from backend.context import RequestContext
from backend.crm.opportunities.service import opportunities
from backend.crm.pipelines.models import PipelineStage
from backend.db.base import table_of
from backend.errors import ValidationFailed
from backend.policy.models import TeamMember

GROUPS = ("owner", "team", "stage")
_QUARTER = re.compile(r"^([0-9]{4})-Q([1-4])$")
_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
_CENTS = Decimal("0.01")
_stages, _members = table_of(PipelineStage), table_of(TeamMember)


@dataclass(frozen=True)
class Period:
    name: str
    first: date
    last: date


def parse_period(raw: str | None) -> Period:
    """`2026-Q1` (a quarter) or `2026-03` (a month)."""
    text = raw or ""
    if quarter := _QUARTER.match(text):
        year, q = int(quarter.group(1)), int(quarter.group(2))
        first_month, last_month = 3 * q - 2, 3 * q
    elif month := _MONTH.match(text):
        year, first_month = int(month.group(1)), int(month.group(2))
        last_month = first_month
    else:
        raise ValidationFailed.one(
            "period", "invalid_period", "a quarter (2026-Q1) or a month (2026-03)"
        )
    if year < 1:
        raise ValidationFailed.one("period", "invalid_period", "the year must be 1 or later")
    after_last = date(year + 1, 1, 1) if last_month == 12 else date(year, last_month + 1, 1)
    return Period(text, date(year, first_month, 1), date.fromordinal(after_last.toordinal() - 1))


def _money(value: Any) -> str:
    return str(Decimal(value or 0).quantize(_CENTS))


def _row(row: Any) -> dict[str, Any]:
    return {
        "count": row.count,
        "amount": _money(row.amount),
        "weighted_amount": _money(row.weighted),
    }


async def forecast(
    ctx: RequestContext, period_raw: str | None, group_by: str | None
) -> dict[str, Any]:
    period = parse_period(period_raw)
    if group_by not in GROUPS:
        raise ValidationFailed.one("group_by", "invalid_choice", f"one of {', '.join(GROUPS)}")
    o = opportunities.table
    async with ctx.session.transaction() as conn:
        access = await opportunities.access(ctx, conn, "read")
        grouped = {"owner": "owner_id", "team": "owner_id", "stage": "stage_id"}[group_by]
        access.require_fields("read", {"amount", "probability", "close_date", grouped})
        probability = func.coalesce(o.c.probability, _stages.c.probability)
        base = (
            select(
                o.c.id,
                o.c.owner_id,
                o.c.stage_id,
                o.c.amount,
                (o.c.amount * probability).label("weight"),
            )
            .join(_stages, (_stages.c.tenant_id == o.c.tenant_id) & (_stages.c.id == o.c.stage_id))
            .where(
                opportunities.visible(ctx, access, "read"),
                _stages.c.kind == "open",
                o.c.close_date.between(period.first, period.last),
            )
            .cte("open_deals")
        )
        source: Any = base
        key: ColumnElement[Any] = base.c.owner_id if group_by == "owner" else base.c.stage_id
        if group_by == "team":  # a deal counts once in each team of its owner; none: key null
            source = base.outerjoin(
                _members,
                (_members.c.tenant_id == ctx.tenant_id) & (_members.c.user_id == base.c.owner_id),
            )
            key = _members.c.team_id

        def sums(rows: Any) -> list[Any]:
            return [
                func.count().label("count"),
                func.sum(rows.amount).label("amount"),
                func.round(func.sum(rows.weight) / 100, 2).label("weighted"),
            ]

        per_key = (
            select(literal(False).label("total"), key.label("key"), *sums(base.c))
            .select_from(source)
            .group_by(key)
        )
        total = select(literal(True).label("total"), null().label("key"), *sums(base.c))
        result = (await conn.execute(union_all(per_key, total))).all()
    rows = sorted((r for r in result if not r.total), key=lambda r: (r.key is None, str(r.key)))
    [totals] = [r for r in result if r.total]
    return {
        "period": period.name,
        "group_by": group_by,
        "from": period.first,
        "to": period.last,
        "rows": [{"key": str(r.key) if r.key is not None else None, **_row(r)} for r in rows],
        "total": _row(totals),
    }
