"""Mobile sync: device sync state, stored push outcomes, and Idempotency-Key answers.

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from backend.db.rls import enable_tenant_rls, grant

revision = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], ondelete="RESTRICT", name=f"fk_{table}_tenant_id_tenants"
    )


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", "user_id"],
        ["users.tenant_id", "users.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_tenant_id_user_id_users",
    )


def upgrade() -> None:
    op.create_table(
        "sync_devices",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("platform", sa.String(40)),
        sa.Column("session_id", UUID(as_uuid=True)),
        sa.Column("last_cursor", sa.Text()),
        sa.Column("last_pull_at", sa.DateTime(timezone=True)),
        sa.Column("last_push_at", sa.DateTime(timezone=True)),
        sa.Column(
            "last_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_sync_devices"),
        _tenant_fk("sync_devices"),
        _user_fk("sync_devices"),
        sa.UniqueConstraint(
            "tenant_id", "user_id", "device_id", name="uq_sync_devices_tenant_id_user_id_device_id"
        ),
    )
    op.create_table(
        "sync_outcomes",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("device_pk", UUID(as_uuid=True), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("result", JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_sync_outcomes"),
        sa.UniqueConstraint(
            "tenant_id",
            "device_pk",
            "client_id",
            name="uq_sync_outcomes_tenant_id_device_pk_client_id",
        ),
        _tenant_fk("sync_outcomes"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "device_pk"],
            ["sync_devices.tenant_id", "sync_devices.id"],
            ondelete="CASCADE",
            name="fk_sync_outcomes_tenant_id_device_pk_sync_devices",
        ),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("headers", JSONB()),
        sa.Column("body", sa.LargeBinary()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_idempotency_keys"),
        sa.UniqueConstraint(
            "tenant_id", "user_id", "key", name="uq_idempotency_keys_tenant_id_user_id_key"
        ),
        _tenant_fk("idempotency_keys"),
        _user_fk("idempotency_keys"),
    )
    for table in ("sync_devices", "sync_outcomes", "idempotency_keys"):
        enable_tenant_rls(table)
        grant(table, "SELECT, INSERT, UPDATE, DELETE")


def downgrade() -> None:
    for table in ("idempotency_keys", "sync_outcomes", "sync_devices"):
        op.drop_table(table)
