"""Activities (calls, meetings, tasks, emails, notes); the phone-number index for caller lookup
and the tenant's default phone region; per-user calendar feeds. All with row-level security.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from backend.db.rls import enable_tenant_rls, grant

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _system_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    ]


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], ondelete="RESTRICT", name=f"fk_{table}_tenant_id_tenants"
    )


def _link(column: str, table: str) -> sa.ForeignKeyConstraint:
    """Deleting the linked record keeps the activity and clears only the link."""
    return sa.ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{table}.tenant_id", f"{table}.id"],
        ondelete=f"SET NULL ({column})",
        name=f"fk_activities_tenant_id_{column}_{table}",
    )


def upgrade() -> None:
    op.create_table(
        "activities",
        *_system_columns(),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("notes", sa.Text()),
        sa.Column("starts_at", sa.DateTime(timezone=True)),
        sa.Column("ends_at", sa.DateTime(timezone=True)),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.Column("remind_minutes_before", sa.Integer()),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("account_id", UUID(as_uuid=True)),
        sa.Column("contact_id", UUID(as_uuid=True)),
        sa.Column("opportunity_id", UUID(as_uuid=True)),
        sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
        sa.Column("tags", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        *_timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_activities"),
        _tenant_fk("activities"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "owner_id"],
            ["users.tenant_id", "users.id"],
            name="fk_activities_tenant_id_owner_id_users",
        ),
        _link("account_id", "accounts"),
        _link("contact_id", "contacts"),
        _link("opportunity_id", "opportunities"),
        sa.CheckConstraint(
            "remind_minutes_before BETWEEN 0 AND 40320", name="ck_activities_remind_range"
        ),
    )
    for column in ("owner_id", "account_id", "contact_id", "opportunity_id", "updated_at"):
        op.create_index(f"ix_activities_tenant_id_{column}", "activities", ["tenant_id", column])
    enable_tenant_rls("activities")
    grant("activities", "SELECT, INSERT, UPDATE, DELETE")

    op.add_column(
        "tenants",
        sa.Column("default_region", sa.String(2), nullable=False, server_default="US"),
    )
    op.create_table(
        "phone_numbers",
        *_system_columns(),
        sa.Column("entity", sa.String(40), nullable=False),
        sa.Column("record_id", UUID(as_uuid=True), nullable=False),
        sa.Column("field", sa.String(63), nullable=False),
        sa.Column("e164", sa.String(16), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_phone_numbers"),
        _tenant_fk("phone_numbers"),
        sa.UniqueConstraint(
            "tenant_id",
            "entity",
            "record_id",
            "field",
            name="uq_phone_numbers_tenant_id_entity_record_id_field",
        ),
    )
    op.create_index("ix_phone_numbers_tenant_id_e164", "phone_numbers", ["tenant_id", "e164"])
    enable_tenant_rls("phone_numbers")
    grant("phone_numbers", "SELECT, INSERT, UPDATE, DELETE")

    op.create_table(
        "calendar_feeds",
        *_system_columns(),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_calendar_feeds"),
        _tenant_fk("calendar_feeds"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.id"],
            ondelete="CASCADE",
            name="fk_calendar_feeds_tenant_id_user_id_users",
        ),
        sa.UniqueConstraint("tenant_id", "user_id", name="uq_calendar_feeds_tenant_id_user_id"),
        sa.UniqueConstraint(
            "tenant_id", "token_hash", name="uq_calendar_feeds_tenant_id_token_hash"
        ),
    )
    enable_tenant_rls("calendar_feeds")
    grant("calendar_feeds", "SELECT, INSERT, UPDATE, DELETE")
    _index_existing_phones()


def _index_existing_phones() -> None:
    """Numbers already stored go into the index, normalised with each tenant's region (US)."""
    from backend.lookup.phones import PHONE_FIELDS, to_e164

    bind = op.get_bind()
    tenants = bind.execute(sa.text("SELECT id, default_region FROM tenants ORDER BY id")).all()
    for tenant_id, region in tenants:
        bind.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)})
        for entity, table, fields in PHONE_FIELDS:
            columns = ", ".join(fields)
            rows = bind.execute(sa.text(f"SELECT id, {columns} FROM {table}")).all()  # noqa: S608
            for row in rows:
                for field, value in zip(fields, row[1:], strict=True):
                    e164 = to_e164(value, region) if value else None
                    if e164 is None:
                        continue
                    bind.execute(
                        sa.text(
                            "INSERT INTO phone_numbers (tenant_id, id, entity, record_id, field,"
                            " e164) VALUES (:t, gen_random_uuid(), :e, :r, :f, :n)"
                        ),
                        {"t": tenant_id, "e": entity, "r": row[0], "f": field, "n": e164},
                    )
    bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def downgrade() -> None:
    op.drop_table("calendar_feeds")
    op.drop_table("phone_numbers")
    op.drop_column("tenants", "default_region")
    op.drop_table("activities")
