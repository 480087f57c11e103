"""Products, price books, quotes and orders (with their lines), on the generic record service,
with row-level security.

Revision ID: 0015_products_orders
Revises: 0013_leads
Create Date: 2026-12-08
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from backend.db.rls import enable_tenant_rls, grant

revision = "0015_products_orders"
down_revision: str | None = "0013_leads"
branch_labels = None
depends_on = None

# Parents first (a migration is frozen in time: tables named here, no live models).
TABLES = (
    "products",
    "price_books",
    "price_book_entries",
    "quotes",
    "quote_lines",
    "orders",
    "order_lines",
)


def _money(
    name: str, *, nullable: bool = True, server_default: str | None = None
) -> sa.Column[Any]:
    return sa.Column(name, sa.Numeric(14, 2), nullable=nullable, server_default=server_default)


def _total(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.Numeric(16, 2), nullable=False, server_default="0")


def _link(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    """Deleting the linked record keeps this one and clears only the link."""
    return sa.ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{target}.tenant_id", f"{target}.id"],
        ondelete=f"SET NULL ({column})",
        name=f"fk_{table}_tenant_id_{column}_{target}",
    )


def _child(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    """A child of its parent: written before it on create and deleted by its service, so the
    check waits for the commit."""
    return sa.ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{target}.tenant_id", f"{target}.id"],
        deferrable=True,
        initially="DEFERRED",
        name=f"fk_{table}_tenant_id_{column}_{target}",
    )


def _line_columns(with_cost: bool) -> list[sa.Column[Any]]:
    cost = [_money("unit_cost", nullable=False, server_default="0")] if with_cost else []
    return [
        sa.Column("product_id", UUID(as_uuid=True)),
        sa.Column("quantity", sa.Numeric(12, 3), nullable=False),
        _money("unit_price", nullable=False),
        *cost,
        sa.Column("discount_percent", sa.Numeric(5, 2), nullable=False, server_default="0"),
    ]


def _entity(table: str, *columns: sa.Column[Any] | sa.Constraint) -> None:
    """An entity table: key, version, the given columns, owner, custom values, timestamps."""
    op.create_table(
        table,
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        *columns,
        sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
        sa.Column("custom", JSONB(), nullable=False, server_default=sa.text("'{}'")),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], ondelete="RESTRICT", name=f"fk_{table}_tenant_id_tenants"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "owner_id"],
            ["users.tenant_id", "users.id"],
            name=f"fk_{table}_tenant_id_owner_id_users",
        ),
    )
    for column in ("owner_id", "updated_at"):
        op.create_index(f"ix_{table}_tenant_id_{column}", table, ["tenant_id", column])
    op.create_index(
        f"ix_{table}_custom",
        table,
        ["custom"],
        postgresql_using="gin",
        postgresql_ops={"custom": "jsonb_path_ops"},
    )


def _index(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(f"ix_{table}_tenant_id_{column}", table, ["tenant_id", column])


def upgrade() -> None:
    _entity(
        "products",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("description", sa.Text()),
        _money("unit_price"),
        _money("unit_cost"),
        sa.Column("currency", sa.String(3)),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("category", sa.String(100)),
        sa.CheckConstraint(
            "unit_price >= 0 AND unit_cost >= 0", name="ck_products_money_not_negative"
        ),
    )
    op.create_index("uq_products_sku", "products", ["tenant_id", "sku"], unique=True)
    _entity(
        "price_books",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("currency", sa.String(3)),
        sa.Column("is_default", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("description", sa.Text()),
    )
    # One default book per tenant.
    op.create_index(
        "uq_price_books_is_default",
        "price_books",
        ["tenant_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    _entity(
        "price_book_entries",
        sa.Column("price_book_id", UUID(as_uuid=True), nullable=False),
        sa.Column("product_id", UUID(as_uuid=True), nullable=False),
        _money("unit_price", nullable=False),
        _child("price_book_entries", "price_book_id", "price_books"),
        _child("price_book_entries", "product_id", "products"),
        sa.CheckConstraint("unit_price >= 0", name="ck_price_book_entries_price_not_negative"),
    )
    _index("price_book_entries", "price_book_id", "product_id")
    _entity(
        "quotes",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("opportunity_id", UUID(as_uuid=True)),
        sa.Column("status", sa.String(20), nullable=False, server_default="draft"),
        sa.Column("currency", sa.String(3)),
        sa.Column("valid_until", sa.Date()),
        _total("total"),
        sa.Column("description", sa.Text()),
        _link("quotes", "opportunity_id", "opportunities"),
    )
    _index("quotes", "opportunity_id")
    line_check = "quantity >= 0 AND unit_price >= 0 AND discount_percent BETWEEN 0 AND 100"
    _entity(
        "quote_lines",
        sa.Column("quote_id", UUID(as_uuid=True), nullable=False),
        *_line_columns(with_cost=False),
        _child("quote_lines", "quote_id", "quotes"),
        _link("quote_lines", "product_id", "products"),
        sa.CheckConstraint(line_check, name="ck_quote_lines_line_amounts"),
    )
    _index("quote_lines", "quote_id", "product_id")
    _entity(
        "orders",
        sa.Column("account_id", UUID(as_uuid=True)),
        sa.Column("contact_id", UUID(as_uuid=True)),
        sa.Column("opportunity_id", UUID(as_uuid=True)),
        sa.Column("quote_id", UUID(as_uuid=True)),
        sa.Column(
            "ordered_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("status", sa.String(20), nullable=False, server_default="open"),
        sa.Column("currency", sa.String(3)),
        _total("total"),
        _total("total_cost"),
        _total("margin"),
        _link("orders", "account_id", "accounts"),
        _link("orders", "contact_id", "contacts"),
        _link("orders", "opportunity_id", "opportunities"),
        _link("orders", "quote_id", "quotes"),
    )
    _index("orders", "account_id", "contact_id", "opportunity_id", "quote_id")
    _entity(
        "order_lines",
        sa.Column("order_id", UUID(as_uuid=True), nullable=False),
        *_line_columns(with_cost=True),
        _child("order_lines", "order_id", "orders"),
        _link("order_lines", "product_id", "products"),
        sa.CheckConstraint(
            "quantity >= 0 AND unit_price >= 0 AND unit_cost >= 0"
            " AND discount_percent BETWEEN 0 AND 100",
            name="ck_order_lines_line_amounts",
        ),
    )
    _index("order_lines", "order_id", "product_id")
    for table in TABLES:
        enable_tenant_rls(table)
        grant(table, "SELECT, INSERT, UPDATE, DELETE")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
