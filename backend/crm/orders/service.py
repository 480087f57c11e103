"""Orders and their lines on the generic record service. An order's lines are written with it
(`lines: [...]`, replaced on update) or one by one (/order_lines); total, total_cost and margin
are the server's, from the lines (backend/crm/lines.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm import lines
from backend.crm.accounts.service import ACCOUNT
from backend.crm.contacts.service import CONTACT
from backend.crm.opportunities.service import OPPORTUNITY
from backend.crm.orders.models import ORDER_STATUSES, Order, OrderLine
from backend.crm.quotes.service import QUOTE, READ_ONLY_TOTAL, LineService, derive_parent
from backend.db.base import table_of
from backend.records.fields import OWNER, FieldSpec
from backend.records.service import Record, RecordService
from backend.records.spec import EntitySpec, NestedList, Relation
from backend.tenants.models import User

_users = table_of(User)

ORDER_LINE_ITEM = EntitySpec.field_map(
    lines.PRODUCT_ID, lines.QUANTITY, lines.UNIT_PRICE, lines.UNIT_COST, lines.DISCOUNT
)


def _computed(name: str, description: str) -> FieldSpec:
    return FieldSpec(
        name, kind="decimal", on_create=False, on_update=False, description=description
    )


ORDER = EntitySpec(
    name="order",
    plural="orders",
    table=table_of(Order),
    fields=EntitySpec.field_map(
        FieldSpec("account_id", kind="uuid", required=True),
        FieldSpec("contact_id", kind="uuid"),
        FieldSpec("opportunity_id", kind="uuid"),
        FieldSpec("quote_id", kind="uuid", description="The accepted quote, if any."),
        FieldSpec("ordered_at", kind="datetime", description="Default: now."),
        FieldSpec("status", kind="choice", choices=ORDER_STATUSES, description="Default: open."),
        FieldSpec("currency", kind="currency", max_length=3, description="ISO 4217, e.g. EUR."),
        _computed("total", READ_ONLY_TOTAL),
        _computed("total_cost", "Sum of quantity x unit_cost. " + READ_ONLY_TOTAL),
        _computed("margin", "total - total_cost. " + READ_ONLY_TOTAL),
        FieldSpec("owner_id", kind="uuid", on_create=False, description=OWNER),
    ),
    filter_columns=("owner_id", "account_id", "contact_id", "opportunity_id", "quote_id"),
    sort_columns=("id", "created_at", "updated_at", "ordered_at"),
    references={
        "account_id": ACCOUNT,
        "contact_id": CONTACT,
        "opportunity_id": OPPORTUNITY,
        "quote_id": QUOTE,
        "owner_id": _users,
    },
    relations=(
        Relation("account_id"),
        Relation("contact_id"),
        Relation("opportunity_id"),
        Relation("quote_id"),
    ),
    nested=(
        NestedList(
            "lines",
            ORDER_LINE_ITEM,
            "The order's lines, written with it; on update the list replaces them all.",
        ),
    ),
)

ORDER_LINE = lines.line_spec(table_of(OrderLine), ORDER, ORDER_LINE_ITEM, "order_id")
KIND = lines.LineKind(ORDER_LINE, "order_id", ORDER, costed=True)


class OrderService(RecordService):
    async def derive(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        values: dict[str, Any],
        before: Record | None,
        nested: Mapping[str, Any],
    ) -> None:
        await derive_parent(conn, ctx, KIND, values, before, nested)


orders = OrderService(ORDER, hooks=(lines.lines_go_with_parent(KIND),))
order_lines = LineService(KIND)
