"""Cases, queues, assignment rules, SLA policies, the per-tenant case counter, and a tenant
time zone (business hours are read in it).

Revision ID: 0019_cases
Revises: 0021_ops
Create Date: 2026-12-08
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from backend.db.rls import enable_tenant_rls, grant

revision = "0019_cases"
down_revision: str | None = "0021_ops"
branch_labels = None
depends_on = None


# The case lines of policies/roles.toml as of this revision, for tenants that predate it (new
# tenants are seeded from roles.toml itself). Frozen here: migrations do not read live files.
CASE_RULES = {
    "salesperson": [("deny", "case", "update"), ("deny", "case", "delete")],
    "support_agent": [
        ("allow", "case", "create"),
        ("allow", "case.*", "create"),
        ("allow", "case", "update"),
        ("allow", "case.*", "update"),
        ("allow", "case", "read_history"),
    ],
    "marketing": [("deny", "case", "*"), ("deny", "case.*", "*")],
}


def _grant_case_rules_to_existing_tenants() -> None:
    bind = op.get_bind()
    tenants = bind.execute(sa.text("SELECT id FROM tenants ORDER BY id")).scalars().all()
    for tenant_id in tenants:
        # The owner is subject to FORCE RLS too: scope each tenant's statements to it.
        bind.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)})
        for role, rules in CASE_RULES.items():
            for effect, obj, action in rules:
                bind.execute(
                    sa.text(
                        "INSERT INTO role_rules (tenant_id, id, role_id, effect, object, action) "
                        "SELECT :t, gen_random_uuid(), r.id, :e, :o, :a FROM roles r "
                        "WHERE r.tenant_id = :t AND r.builtin AND r.name = :n "
                        "ON CONFLICT DO NOTHING"
                    ),
                    {"t": tenant_id, "n": role, "e": effect, "o": obj, "a": action},
                )
        # Server processes compare this version with the policy they cached.
        bind.execute(
            sa.text("UPDATE tenants SET policy_version = policy_version + 1 WHERE id = :t"),
            {"t": tenant_id},
        )
    bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def _system() -> list[sa.Column[Any]]:
    return [
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    ]


def _times() -> list[sa.Column[Any]]:
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


def _link(table: str, column: str, target: str, ondelete: str | None) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{target}.tenant_id", f"{target}.id"],
        ondelete=ondelete,
        name=f"fk_{table}_tenant_id_{column}_{target}",
    )


def upgrade() -> None:
    op.add_column(
        "tenants",
        sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC"),
    )
    op.create_table(
        "queues",
        *_system(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text()),
        *_times(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_queues"),
        _tenant_fk("queues"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_queues_tenant_id_name"),
    )
    op.create_table(
        "queue_members",
        *_system(),
        sa.Column("queue_id", UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        *_times(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_queue_members"),
        _tenant_fk("queue_members"),
        _link("queue_members", "queue_id", "queues", "CASCADE"),
        _link("queue_members", "user_id", "users", "CASCADE"),
        sa.UniqueConstraint(
            "tenant_id", "queue_id", "user_id", name="uq_queue_members_tenant_id_queue_id_user_id"
        ),
    )
    op.create_index("ix_queue_members_tenant_id_user_id", "queue_members", ["tenant_id", "user_id"])
    op.create_table(
        "case_counters",
        *_system(),
        sa.Column("last_number", sa.Integer(), nullable=False),
        *_times(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_case_counters"),
        _tenant_fk("case_counters"),
        sa.UniqueConstraint("tenant_id", name="uq_case_counters_tenant_id"),
    )
    op.create_table(
        "case_assignment_rules",
        *_system(),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("types", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("priorities", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("channels", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("queue_id", UUID(as_uuid=True), nullable=False),
        sa.Column("round_robin", sa.Boolean(), nullable=False, server_default="false"),
        *_times(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_case_assignment_rules"),
        _tenant_fk("case_assignment_rules"),
        _link("case_assignment_rules", "queue_id", "queues", "CASCADE"),
    )
    op.create_index(
        "ix_case_assignment_rules_tenant_id_position",
        "case_assignment_rules",
        ["tenant_id", "position"],
    )
    op.create_table(
        "sla_policies",
        *_system(),
        sa.Column("priority", sa.String(10), nullable=False),
        sa.Column("first_response_minutes", sa.Integer(), nullable=False),
        sa.Column("resolution_minutes", sa.Integer(), nullable=False),
        sa.Column("business_hours", JSONB(), nullable=False),
        sa.Column("holidays", ARRAY(sa.Date()), nullable=False, server_default="{}"),
        sa.Column("escalation_queue_id", UUID(as_uuid=True)),
        sa.Column("escalate_priority", sa.Boolean(), nullable=False, server_default="true"),
        *_times(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_sla_policies"),
        _tenant_fk("sla_policies"),
        _link("sla_policies", "escalation_queue_id", "queues", "SET NULL (escalation_queue_id)"),
        sa.UniqueConstraint("tenant_id", "priority", name="uq_sla_policies_tenant_id_priority"),
    )
    op.create_table(
        "cases",
        *_system(),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("type", sa.String(20), nullable=False, server_default="question"),
        sa.Column("priority", sa.String(10), nullable=False, server_default="normal"),
        sa.Column("status", sa.String(24), nullable=False, server_default="new"),
        sa.Column("channel", sa.String(10)),
        sa.Column("account_id", UUID(as_uuid=True)),
        sa.Column("contact_id", UUID(as_uuid=True)),
        sa.Column("assignee_id", UUID(as_uuid=True)),
        sa.Column("queue_id", UUID(as_uuid=True)),
        sa.Column("resolution", sa.Text()),
        sa.Column("first_response_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("first_response_due_at", sa.DateTime(timezone=True)),
        sa.Column("resolution_due_at", sa.DateTime(timezone=True)),
        sa.Column("sla_breached_at", sa.DateTime(timezone=True)),
        sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
        sa.Column("custom", JSONB(), nullable=False, server_default=sa.text("'{}'")),
        *_times(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_cases"),
        _tenant_fk("cases"),
        sa.UniqueConstraint("tenant_id", "number", name="uq_cases_tenant_id_number"),
        _link("cases", "owner_id", "users", None),
        _link("cases", "assignee_id", "users", "SET NULL (assignee_id)"),
        _link("cases", "queue_id", "queues", "SET NULL (queue_id)"),
        _link("cases", "account_id", "accounts", "SET NULL (account_id)"),
        _link("cases", "contact_id", "contacts", "SET NULL (contact_id)"),
    )
    for column in (
        "owner_id",
        "assignee_id",
        "queue_id",
        "account_id",
        "contact_id",
        "updated_at",
        "resolution_due_at",
    ):
        op.create_index(f"ix_cases_tenant_id_{column}", "cases", ["tenant_id", column])
    op.create_index(
        "ix_cases_custom",
        "cases",
        ["custom"],
        postgresql_using="gin",
        postgresql_ops={"custom": "jsonb_path_ops"},
    )
    for table in ("queues", "queue_members", "case_counters", "case_assignment_rules"):
        enable_tenant_rls(table)
        grant(table, "SELECT, INSERT, UPDATE, DELETE")
    for table in ("sla_policies", "cases"):
        enable_tenant_rls(table)
        grant(table, "SELECT, INSERT, UPDATE, DELETE")
    _grant_case_rules_to_existing_tenants()


def downgrade() -> None:
    for table in (
        "cases",
        "sla_policies",
        "case_assignment_rules",
        "case_counters",
        "queue_members",
        "queues",
    ):
        op.drop_table(table)
    op.drop_column("tenants", "time_zone")
