"""Leads (with their conversion links) and the organisation chart: contacts.reports_to_id and
accounts.parent_account_id.

Revision ID: 0013_leads
Revises: 0014_pipelines
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from backend.db.rls import enable_tenant_rls, grant

revision = "0013_leads"
down_revision: str | None = "0014_pipelines"
branch_labels = None
depends_on = None


def _link(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    """Deleting the linked record keeps the row and clears only the link."""
    return sa.ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{target}.tenant_id", f"{target}.id"],
        ondelete=f"SET NULL ({column})",
        name=f"fk_{table}_tenant_id_{column}_{target}",
    )


def _create_leads() -> None:
    op.create_table(
        "leads",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("first_name", sa.String(100)),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("company", sa.String(200)),
        sa.Column("email", sa.String(254)),
        sa.Column("phone", sa.String(40)),
        sa.Column("source", sa.String(100)),
        sa.Column("status", sa.String(20), nullable=False, server_default="new"),
        sa.Column("rating", sa.String(10)),
        sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
        sa.Column("campaign_id", UUID(as_uuid=True)),  # campaigns come later: no FK yet
        sa.Column("notes", sa.Text()),
        sa.Column("tags", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("converted_account_id", UUID(as_uuid=True)),
        sa.Column("converted_contact_id", UUID(as_uuid=True)),
        sa.Column("converted_opportunity_id", UUID(as_uuid=True)),
        sa.Column("converted_at", sa.DateTime(timezone=True)),
        sa.Column("custom", JSONB(), nullable=False, server_default=sa.text("'{}'")),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_leads"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], ondelete="RESTRICT", name="fk_leads_tenant_id_tenants"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "owner_id"],
            ["users.tenant_id", "users.id"],
            name="fk_leads_tenant_id_owner_id_users",
        ),
        _link("leads", "converted_account_id", "accounts"),
        _link("leads", "converted_contact_id", "contacts"),
        _link("leads", "converted_opportunity_id", "opportunities"),
    )
    for column in ("owner_id", "updated_at", "campaign_id", "converted_contact_id"):
        op.create_index(f"ix_leads_tenant_id_{column}", "leads", ["tenant_id", column])
    op.create_index(
        "ix_leads_custom",
        "leads",
        ["custom"],
        postgresql_using="gin",
        postgresql_ops={"custom": "jsonb_path_ops"},
    )
    enable_tenant_rls("leads")
    grant("leads", "SELECT, INSERT, UPDATE, DELETE")


def _add_tree(table: str, column: str) -> None:
    """A self-reference of `table` (same tenant, by the composite key)."""
    op.add_column(table, sa.Column(column, UUID(as_uuid=True)))
    op.create_foreign_key(
        f"fk_{table}_tenant_id_{column}_{table}",
        table,
        table,
        ["tenant_id", column],
        ["tenant_id", "id"],
        ondelete=f"SET NULL ({column})",
    )
    op.create_index(f"ix_{table}_tenant_id_{column}", table, ["tenant_id", column])


# The rules this revision adds to the built-in marketing role (policies/roles.toml as of now).
MARKETING_LEAD_RULES = (("allow", "lead", "create"), ("allow", "lead.*", "create"))


def _grant_marketing_leads() -> None:
    """Tenants that predate leads: their built-in marketing role may create leads too (new
    tenants get it from roles.toml). Every other role's lead access comes from its "*" rules."""
    bind = op.get_bind()
    tenants = bind.execute(sa.text("SELECT id FROM tenants ORDER BY id")).scalars().all()
    for tenant_id in tenants:
        # The owner is subject to FORCE RLS too: scope each tenant's statements to it.
        bind.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)})
        for effect, obj, action in MARKETING_LEAD_RULES:
            bind.execute(
                sa.text(
                    "INSERT INTO role_rules (tenant_id, id, role_id, effect, object, action) "
                    "SELECT tenant_id, gen_random_uuid(), id, :e, :o, :a FROM roles "
                    "WHERE builtin AND name = 'marketing' ON CONFLICT DO NOTHING"
                ),
                {"e": effect, "o": obj, "a": action},
            )
        # Server processes reload a tenant's policy when its version moves.
        bind.execute(
            sa.text("UPDATE tenants SET policy_version = policy_version + 1 WHERE id = :t"),
            {"t": tenant_id},
        )
    bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def upgrade() -> None:
    _add_tree("contacts", "reports_to_id")
    _add_tree("accounts", "parent_account_id")
    _create_leads()
    _grant_marketing_leads()


def _revoke_marketing_leads() -> None:
    bind = op.get_bind()
    tenants = bind.execute(sa.text("SELECT id FROM tenants ORDER BY id")).scalars().all()
    for tenant_id in tenants:
        bind.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)})
        bind.execute(
            sa.text(
                "DELETE FROM role_rules WHERE object IN ('lead', 'lead.*') AND role_id IN "
                "(SELECT id FROM roles WHERE builtin AND name = 'marketing')"
            )
        )
    bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def downgrade() -> None:
    _revoke_marketing_leads()
    op.drop_table("leads")
    op.drop_index("ix_accounts_tenant_id_parent_account_id", table_name="accounts")
    op.drop_column("accounts", "parent_account_id")
    op.drop_index("ix_contacts_tenant_id_reports_to_id", table_name="contacts")
    op.drop_column("contacts", "reports_to_id")
