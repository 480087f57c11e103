"""Lines of quotes and orders: their fields, the money arithmetic, and the writes a parent makes
of its lines inside its own transaction (each line is a record of its own entity: history,
sync, exports and field policy apply per line).

Totals (DOMAIN words): total = sum of quantity x unit_price x (1 - discount_percent/100),
rounded once to cents, half up; total_cost = sum of quantity x unit_cost, rounded the same;
margin = total - total_cost. Decimal throughout, never float."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Table, and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.products.service import PRICE_BOOK, PRICE_BOOK_ENTRY, PRODUCT
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.errors import FieldProblem, ValidationFailed
from backend.history.changes import record_created, record_deleted, record_updated
from backend.policy.access import entity_access
from backend.policy.record_scope import scope_condition
from backend.records.fields import OWNER, FieldSpec, validate_changes
from backend.records.service import Record, WriteHook
from backend.records.spec import EntitySpec, Relation
from backend.tenants.models import User


def line_spec(
    table: Table, parent: EntitySpec, items: Mapping[str, FieldSpec], parent_column: str
) -> EntitySpec:
    """The line entity of a quote or an order: the item fields, a link to its parent (never
    moved to another) and to the product, owned as the parent is."""
    return EntitySpec(
        name=f"{parent.name}_line",
        plural=f"{parent.name}_lines",
        table=table,
        fields=EntitySpec.field_map(
            FieldSpec(parent_column, kind="uuid", required=True, on_update=False),
            *items.values(),
            FieldSpec("owner_id", kind="uuid", on_create=False, description=OWNER),
        ),
        filter_columns=("owner_id", parent_column, "product_id"),
        references={parent_column: parent, "product_id": PRODUCT, "owner_id": table_of(User)},
        relations=(
            Relation(
                parent_column,
                reverse_name="lines",
                reverse_description=f"The {parent.label}'s lines.",
            ),
            Relation("product_id", reverse_name=f"{parent.name}_lines"),
        ),
        # Defaulted from the product (or the default price book) when a line omits it.
        server_filled=("unit_price",),
    )


CENTS = Decimal("0.01")
MAX_LINES = 500
# The totals columns are Numeric(16, 2).
MAX_TOTAL = Decimal("99999999999999.99")
MAX_MONEY = 999_999_999_999  # Numeric(14, 2)

PRODUCT_ID = FieldSpec("product_id", kind="uuid", required=True, description="The product sold.")
QUANTITY = FieldSpec(
    "quantity", kind="decimal", scale=3, minimum=0, maximum=999_999_999, required=True
)
UNIT_PRICE = FieldSpec(
    "unit_price",
    kind="decimal",
    minimum=0,
    maximum=MAX_MONEY,
    description="Price per unit; default: the product's price in the default price book, "
    "else the product's unit_price.",
)
UNIT_COST = FieldSpec(
    "unit_cost",
    kind="decimal",
    minimum=0,
    maximum=MAX_MONEY,
    description="What one unit costs us; default: the product's unit_cost.",
)
DISCOUNT = FieldSpec(
    "discount_percent", kind="decimal", minimum=0, maximum=100, description="0-100; default 0."
)


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENTS, rounding=ROUND_HALF_UP)


def line_amount(line: Mapping[str, Any]) -> Decimal:
    """quantity x unit_price x (1 - discount/100), unrounded."""
    discount = Decimal(line.get("discount_percent") or 0)
    return Decimal(line["quantity"]) * Decimal(line["unit_price"]) * (1 - discount / 100)


def totals(lines: Iterable[Mapping[str, Any]], *, costed: bool) -> dict[str, Decimal]:
    rows = list(lines)
    total = cents(sum((line_amount(r) for r in rows), Decimal(0)))
    if not costed:
        return {"total": total}
    cost = cents(
        sum((Decimal(r["quantity"]) * Decimal(r.get("unit_cost") or 0) for r in rows), Decimal(0))
    )
    return {"total": total, "total_cost": cost, "margin": total - cost}


def check_totals(values: Mapping[str, Decimal]) -> None:
    if any(abs(v) > MAX_TOTAL for v in values.values()):
        raise ValidationFailed.one("lines", "out_of_range", "the totals are too large")


@dataclass(frozen=True)
class LineKind:
    """One kind of line: its entity, the column naming its parent, the parent entity."""

    spec: EntitySpec
    parent_column: str
    parent: EntitySpec
    costed: bool  # order lines carry unit_cost (cost and margin); quote lines do not

    @property
    def item_fields(self) -> dict[str, FieldSpec]:
        """What a client sends per line inside its parent's body."""
        return {
            n: f for n, f in self.spec.fields.items() if n not in (self.parent_column, "owner_id")
        }


async def product_defaults(
    conn: AsyncConnection, ctx: RequestContext, product_id: uuid.UUID
) -> dict[str, Decimal | None] | None:
    """The product's default unit_price (its default price book entry, else its own price) and
    unit_cost; None when it is not a product the caller may read (another tenant's included).
    Server-side: the caller need not be allowed to read unit_cost for it to be filled in."""
    access = await entity_access(ctx, conn, PRODUCT)
    if not access.may("read"):
        return None
    products, books, entries = PRODUCT.table, PRICE_BOOK.table, PRICE_BOOK_ENTRY.table
    book_price = (
        select(entries.c.unit_price)
        .join(
            books,
            and_(books.c.tenant_id == entries.c.tenant_id, books.c.id == entries.c.price_book_id),
        )
        .where(
            entries.c.tenant_id == ctx.tenant_id,
            entries.c.product_id == products.c.id,
            books.c.is_default,
        )
        .order_by(entries.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    stmt = select(
        func.coalesce(book_price, products.c.unit_price).label("unit_price"), products.c.unit_cost
    ).where(scope_condition(products, ctx, access.scopes["read"]), products.c.id == product_id)
    row = (await conn.execute(stmt)).mappings().first()
    return dict(row) if row is not None else None


async def fill_defaults(
    conn: AsyncConnection, ctx: RequestContext, kind: LineKind, values: dict[str, Any], field: str
) -> None:
    """unit_price (and unit_cost) from the product when not sent; `field` names the line in
    errors. A missing product and another tenant's answer alike."""
    product_id = values.get("product_id")
    defaults = None if product_id is None else await product_defaults(conn, ctx, product_id)
    if defaults is None:
        raise ValidationFailed.one(
            f"{field}product_id", "unknown_reference", "names no such record"
        )
    if values.get("unit_price") is None:
        if defaults["unit_price"] is None:
            raise ValidationFailed.one(
                f"{field}unit_price", "required", "the product has no price: send unit_price"
            )
        values["unit_price"] = defaults["unit_price"]
    if kind.costed and values.get("unit_cost") is None:
        values["unit_cost"] = defaults["unit_cost"] or Decimal(0)
    if values.get("discount_percent") is None:
        values["discount_percent"] = Decimal(0)


def _prefixed(error: ValidationFailed, prefix: str) -> ValidationFailed:
    problems = [FieldProblem(prefix + p.field, p.code, p.message) for p in error.problems]
    return ValidationFailed.of(problems)


async def write_lines(
    conn: AsyncConnection,
    ctx: RequestContext,
    kind: LineKind,
    parent_id: uuid.UUID,
    owner_id: uuid.UUID,
    items: Any,
) -> list[Record]:
    """A parent's lines as sent (`lines: [...]`): checked (policy, fields, products) and
    written as records of the line entity, owned like the parent. Any bad line refuses all."""
    access = await entity_access(ctx, conn, kind.spec)
    access.require("create")
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise ValidationFailed.one("lines", "invalid_type", "must be a list of lines")
    if len(items) > MAX_LINES:
        raise ValidationFailed.one("lines", "too_many", f"at most {MAX_LINES} lines")
    rows: list[Record] = []
    for index, item in enumerate(items):
        prefix = f"lines[{index}]."
        if not isinstance(item, Mapping):
            raise ValidationFailed.one(f"lines[{index}]", "invalid_type", "must be an object")
        access.require_fields("create", set(item))
        try:
            values = validate_changes(kind.item_fields, item, creating=True)
        except ValidationFailed as error:
            raise _prefixed(error, prefix) from None
        await fill_defaults(conn, ctx, kind, values, prefix)
        values.update(
            tenant_id=ctx.tenant_id,
            id=uuid7(),
            owner_id=owner_id,
            **{kind.parent_column: parent_id},
        )
        columns = [c for c in kind.spec.table.c if c.name != "tenant_id"]
        stmt = kind.spec.table.insert().values(values).returning(*columns)
        row = dict((await conn.execute(stmt)).mappings().one())
        await record_created(conn, ctx, kind.spec.name, row)
        rows.append(row)
    return rows


async def delete_lines(
    conn: AsyncConnection, ctx: RequestContext, kind: LineKind, parent_id: uuid.UUID
) -> None:
    """Every line of a parent, each deleted with its history (sync sends the tombstones)."""
    table = kind.spec.table
    columns = [c for c in table.c if c.name != "tenant_id"]
    stmt = (
        delete(table)
        .where(table.c.tenant_id == ctx.tenant_id, table.c[kind.parent_column] == parent_id)
        .returning(*columns)
    )
    for row in (await conn.execute(stmt)).mappings().all():
        await record_deleted(conn, ctx, kind.spec.name, dict(row))


async def reassign_lines(
    conn: AsyncConnection,
    ctx: RequestContext,
    kind: LineKind,
    parent_id: uuid.UUID,
    owner_id: uuid.UUID,
) -> None:
    """A parent's new owner owns its lines too (record scope follows the owner)."""
    table = kind.spec.table
    columns = [c for c in table.c if c.name != "tenant_id"]
    mine = and_(table.c.tenant_id == ctx.tenant_id, table.c[kind.parent_column] == parent_id)
    before = {
        r["id"]: dict(r)
        for r in (await conn.execute(select(*columns).where(mine).with_for_update())).mappings()
    }
    stmt = (
        update(table)
        .where(mine, table.c.owner_id != owner_id)
        .values(owner_id=owner_id, version=table.c.version + 1, updated_at=func.now())
        .returning(*columns)
    )
    for row in (await conn.execute(stmt)).mappings().all():
        await record_updated(conn, ctx, kind.spec.name, before[row["id"]], dict(row))


async def parent_owner(
    conn: AsyncConnection, ctx: RequestContext, kind: LineKind, parent_id: uuid.UUID
) -> uuid.UUID:
    table = kind.parent.table
    stmt = select(table.c.owner_id).where(
        table.c.tenant_id == ctx.tenant_id, table.c.id == parent_id
    )
    owner: uuid.UUID | None = (await conn.execute(stmt)).scalar_one_or_none()
    if owner is None:  # the same answer as any reference to nothing
        raise ValidationFailed.one(kind.parent_column, "unknown_reference", "names no such record")
    return owner


async def refresh_totals(
    conn: AsyncConnection, ctx: RequestContext, kind: LineKind, parent_id: uuid.UUID
) -> None:
    """After one line was written on its own (/order_lines): the parent's totals follow, as a
    new version of the parent with its history."""
    parent, lines = kind.parent.table, kind.spec.table
    parent_columns = [c for c in parent.c if c.name != "tenant_id"]
    mine = and_(parent.c.tenant_id == ctx.tenant_id, parent.c.id == parent_id)
    stmt = select(*parent_columns).where(mine).with_for_update()
    before = (await conn.execute(stmt)).mappings().first()
    if before is None:  # the parent is being deleted with its lines
        return
    rows = [
        dict(r)
        for r in (
            await conn.execute(
                select(lines).where(
                    lines.c.tenant_id == ctx.tenant_id, lines.c[kind.parent_column] == parent_id
                )
            )
        ).mappings()
    ]
    computed = totals(rows, costed=kind.costed)
    check_totals(computed)
    if all(before[k] == v for k, v in computed.items()):
        return
    changed = (
        update(parent)
        .where(mine)
        .values(**computed, version=parent.c.version + 1, updated_at=func.now())
        .returning(*parent_columns)
    )
    after = (await conn.execute(changed)).mappings().one()
    await record_updated(conn, ctx, kind.parent.name, dict(before), dict(after))


def lines_go_with_parent(kind: LineKind) -> WriteHook:
    """A write hook for the parent: deleting it deletes its lines, each with its history."""

    async def hook(
        conn: AsyncConnection,
        ctx: RequestContext,
        spec: EntitySpec,
        before: Record | None,
        after: Record | None,
    ) -> None:
        if before is not None and after is None:
            await delete_lines(conn, ctx, kind, before["id"])

    return hook
