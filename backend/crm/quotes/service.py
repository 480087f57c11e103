"""Quotes and their lines on the generic record service. A quote's lines are written with it
(`lines: [...]`, replaced on update) or one by one (/quote_lines); its total follows them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm import lines
from backend.crm.opportunities.service import OPPORTUNITY
from backend.crm.quotes.models import QUOTE_STATUSES, Quote, QuoteLine
from backend.db.base import table_of
from backend.errors import ValidationFailed
from backend.policy.access import entity_access
from backend.records.fields import OWNER, FieldSpec
from backend.records.service import Record, RecordService
from backend.records.spec import EntitySpec, NestedList, Relation
from backend.tenants.models import User

_users = table_of(User)
# Set only while `accept` (backend/crm/quotes/accept.py) marks a quote accepted.
ACCEPTING: ContextVar[bool] = ContextVar("accepting_quote", default=False)
READ_ONLY_TOTAL = "Computed by the server from the lines; sending it is a 422 read_only."

QUOTE_LINE_ITEM = EntitySpec.field_map(
    lines.PRODUCT_ID, lines.QUANTITY, lines.UNIT_PRICE, lines.DISCOUNT
)

QUOTE = EntitySpec(
    name="quote",
    plural="quotes",
    table=table_of(Quote),
    fields=EntitySpec.field_map(
        FieldSpec("name", max_length=200, required=True),
        FieldSpec("opportunity_id", kind="uuid", required=True),
        FieldSpec(
            "status",
            kind="choice",
            choices=QUOTE_STATUSES,
            description="`accepted` only through POST /api/v1/quotes/{id}/accept.",
        ),
        FieldSpec("currency", kind="currency", max_length=3, description="ISO 4217, e.g. EUR."),
        FieldSpec("valid_until", kind="date"),
        FieldSpec(
            "total", kind="decimal", on_create=False, on_update=False, description=READ_ONLY_TOTAL
        ),
        FieldSpec("description", max_length=10_000, multiline=True),
        FieldSpec("owner_id", kind="uuid", on_create=False, description=OWNER),
    ),
    search_columns=("name",),
    filter_columns=("owner_id", "opportunity_id"),
    sort_columns=("id", "created_at", "updated_at", "name"),
    references={"opportunity_id": OPPORTUNITY, "owner_id": _users},
    relations=(Relation("opportunity_id"),),
    nested=(
        NestedList(
            "lines",
            QUOTE_LINE_ITEM,
            "The quote's lines, written with it; on update the list replaces them all.",
        ),
    ),
)

QUOTE_LINE = lines.line_spec(table_of(QuoteLine), QUOTE, QUOTE_LINE_ITEM, "quote_id")
KIND = lines.LineKind(QUOTE_LINE, "quote_id", QUOTE, costed=False)


class QuoteService(RecordService):
    async def derive(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        values: dict[str, Any],
        before: Record | None,
        nested: Mapping[str, Any],
    ) -> None:
        if values.get("status") == "accepted" and not ACCEPTING.get():
            raise ValidationFailed.one(
                "status", "invalid_choice", "accept a quote with POST /api/v1/quotes/{id}/accept"
            )
        await derive_parent(conn, ctx, KIND, values, before, nested)


async def derive_parent(
    conn: AsyncConnection,
    ctx: RequestContext,
    kind: lines.LineKind,
    values: dict[str, Any],
    before: Record | None,
    nested: Mapping[str, Any],
) -> None:
    """A quote's or an order's lines and totals: lines sent are written (replacing the old on
    update) and the totals computed from them; a new owner takes the lines along."""
    parent_id: uuid.UUID = values["id"] if before is None else before["id"]
    owner: uuid.UUID = values.get("owner_id") or (before or {})["owner_id"]
    if "lines" in nested:
        if before is not None:
            access = await entity_access(ctx, conn, kind.spec)
            access.require("delete")
            await lines.delete_lines(conn, ctx, kind, parent_id)
        written = await lines.write_lines(conn, ctx, kind, parent_id, owner, nested["lines"])
        computed = lines.totals(written, costed=kind.costed)
        lines.check_totals(computed)
        values.update(computed)
    if before is not None and owner != before["owner_id"]:
        await lines.reassign_lines(conn, ctx, kind, parent_id, owner)


class LineService(RecordService):
    """A line written on its own: defaults from its product, owned like its parent, and the
    parent's totals follow (see lines.refresh_totals)."""

    def __init__(self, kind: lines.LineKind) -> None:
        super().__init__(kind.spec, hooks=(self._refresh,))
        self.kind = kind

    async def derive(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        values: dict[str, Any],
        before: Record | None,
        nested: Mapping[str, Any],
    ) -> None:
        if before is None:
            await lines.fill_defaults(conn, ctx, self.kind, values, "")
            parent = values[self.kind.parent_column]
            values["owner_id"] = await lines.parent_owner(conn, ctx, self.kind, parent)
        elif "product_id" in values and values["product_id"] is None:
            raise ValidationFailed.one("product_id", "required", "must not be null")

    async def _refresh(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        spec: EntitySpec,
        before: Record | None,
        after: Record | None,
    ) -> None:
        record = after if after is not None else before
        assert record is not None
        await lines.refresh_totals(conn, ctx, self.kind, record[self.kind.parent_column])


quotes = QuoteService(QUOTE, hooks=(lines.lines_go_with_parent(KIND),))
quote_lines = LineService(KIND)
