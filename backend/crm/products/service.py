"""Products and price books on the generic record service."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.products.models import PriceBook, PriceBookEntry, Product
from backend.db.base import table_of
from backend.errors import Conflict
from backend.history.changes import record_deleted
from backend.records.fields import OWNER, FieldSpec
from backend.records.service import Record, RecordService
from backend.records.spec import EntitySpec, Relation
from backend.tenants.models import User

MAX_MONEY = 999_999_999_999  # Numeric(14, 2)
_users = table_of(User)

PRODUCT = EntitySpec(
    name="product",
    plural="products",
    table=table_of(Product),
    fields=EntitySpec.field_map(
        FieldSpec("name", max_length=200, required=True),
        FieldSpec(
            "sku",
            max_length=64,
            required=True,
            description="Stock keeping unit: unique in the tenant.",
        ),
        FieldSpec("description", max_length=10_000, multiline=True),
        FieldSpec("unit_price", kind="decimal", minimum=0, maximum=MAX_MONEY),
        FieldSpec(
            "unit_cost",
            kind="decimal",
            minimum=0,
            maximum=MAX_MONEY,
            description="What one unit costs us (purchase or production).",
        ),
        FieldSpec("currency", kind="currency", max_length=3, description="ISO 4217, e.g. EUR."),
        FieldSpec("active", kind="boolean", description="Still sold; default true."),
        FieldSpec(
            "category", max_length=100, description="A product group, e.g. for basket analysis."
        ),
        FieldSpec("owner_id", kind="uuid", on_create=False, description=OWNER),
    ),
    search_columns=("name", "sku", "category"),
    sort_columns=("id", "created_at", "updated_at", "name", "sku"),
    references={"owner_id": _users},
    unique_fields=("sku",),
)

PRICE_BOOK = EntitySpec(
    name="price_book",
    plural="price_books",
    table=table_of(PriceBook),
    fields=EntitySpec.field_map(
        FieldSpec("name", max_length=200, required=True),
        FieldSpec("currency", kind="currency", max_length=3, description="ISO 4217, e.g. EUR."),
        FieldSpec(
            "is_default",
            kind="boolean",
            description="The tenant's default book: its prices are the default line prices. "
            "At most one book is the default.",
        ),
        FieldSpec("active", kind="boolean", description="Still in use; default true."),
        FieldSpec("description", max_length=10_000, multiline=True),
        FieldSpec("owner_id", kind="uuid", on_create=False, description=OWNER),
    ),
    search_columns=("name",),
    sort_columns=("id", "created_at", "updated_at", "name"),
    references={"owner_id": _users},
    unique_fields=("is_default",),
)

PRICE_BOOK_ENTRY = EntitySpec(
    name="price_book_entry",
    plural="price_book_entries",
    table=table_of(PriceBookEntry),
    fields=EntitySpec.field_map(
        FieldSpec("price_book_id", kind="uuid", required=True, on_update=False),
        FieldSpec("product_id", kind="uuid", required=True, on_update=False),
        FieldSpec("unit_price", kind="decimal", minimum=0, maximum=MAX_MONEY, required=True),
        FieldSpec("owner_id", kind="uuid", on_create=False, description=OWNER),
    ),
    filter_columns=("owner_id", "price_book_id", "product_id"),
    references={"price_book_id": PRICE_BOOK, "product_id": PRODUCT, "owner_id": _users},
    relations=(
        Relation("price_book_id", reverse_name="entries"),
        Relation("product_id", reverse_name="price_book_entries"),
    ),
)


async def _delete_entries(
    conn: AsyncConnection,
    ctx: RequestContext,
    spec: EntitySpec,
    before: Record | None,
    after: Record | None,
) -> None:
    """A deleted book or product takes its price book entries along, each with its history."""
    if before is None or after is not None:
        return
    entries = PRICE_BOOK_ENTRY.table
    column = entries.c.price_book_id if spec is PRICE_BOOK else entries.c.product_id
    columns = [c for c in entries.c if c.name != "tenant_id"]
    stmt = (
        delete(entries)
        .where(entries.c.tenant_id == ctx.tenant_id, column == before["id"])
        .returning(*columns)
    )
    for row in (await conn.execute(stmt)).mappings().all():
        await record_deleted(conn, ctx, PRICE_BOOK_ENTRY.name, dict(row))


class PriceBookService(RecordService):
    async def derive(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        values: dict[str, Any],
        before: Record | None,
        nested: Mapping[str, Any],
    ) -> None:
        """A second default book is a 409 naming is_default (the partial unique index is the
        backstop under a race)."""
        if not values.get("is_default") or (before is not None and before["is_default"]):
            return
        table = self.table
        mine: uuid.UUID | None = before["id"] if before is not None else None
        stmt = select(table.c.id).where(table.c.tenant_id == ctx.tenant_id, table.c.is_default)
        if mine is not None:
            stmt = stmt.where(table.c.id != mine)
        if (await conn.execute(stmt)).first() is not None:
            raise Conflict(
                "the tenant already has a default price book", code="duplicate", field="is_default"
            )


products = RecordService(PRODUCT, hooks=(_delete_entries,))
price_books = PriceBookService(PRICE_BOOK, hooks=(_delete_entries,))
price_book_entries = RecordService(PRICE_BOOK_ENTRY)
