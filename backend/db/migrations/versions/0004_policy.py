"""Field-level access: roles, rules, scopes, role assignments, teams; tenant policy version.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from backend.db.rls import app_role, enable_tenant_rls, grant

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _base(table: str) -> list[sa.Column[object] | sa.Constraint]:
    return [
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
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
    ]


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{target}.tenant_id", f"{target}.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_tenant_id_{column}_{target}",
    )


def _unique(table: str, *columns: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(
        "tenant_id", *columns, name=f"uq_{table}_tenant_id_{'_'.join(columns)}"
    )


def upgrade() -> None:
    op.add_column(
        "tenants", sa.Column("policy_version", sa.Integer(), nullable=False, server_default="1")
    )
    op.create_table(
        "roles",
        *_base("roles"),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.String(500)),
        sa.Column("builtin", sa.Boolean(), nullable=False, server_default="false"),
        _unique("roles", "name"),
    )
    op.create_table(
        "role_rules",
        *_base("role_rules"),
        sa.Column("role_id", UUID(as_uuid=True), nullable=False),
        sa.Column("effect", sa.String(8), nullable=False),
        sa.Column("object", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        _unique("role_rules", "role_id", "effect", "object", "action"),
        _fk("role_rules", "role_id", "roles"),
    )
    op.create_table(
        "role_scopes",
        *_base("role_scopes"),
        sa.Column("role_id", UUID(as_uuid=True), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        _unique("role_scopes", "role_id", "entity"),
        _fk("role_scopes", "role_id", "roles"),
    )
    op.create_table(
        "user_roles",
        *_base("user_roles"),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("role_id", UUID(as_uuid=True), nullable=False),
        _unique("user_roles", "user_id", "role_id"),
        _fk("user_roles", "user_id", "users"),
        _fk("user_roles", "role_id", "roles"),
    )
    op.create_table(
        "teams",
        *_base("teams"),
        sa.Column("name", sa.String(100), nullable=False),
        _unique("teams", "name"),
    )
    op.create_table(
        "team_members",
        *_base("team_members"),
        sa.Column("team_id", UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        _unique("team_members", "team_id", "user_id"),
        _fk("team_members", "team_id", "teams"),
        _fk("team_members", "user_id", "users"),
    )
    op.create_index("ix_team_members_tenant_id_user_id", "team_members", ["tenant_id", "user_id"])
    for table in ("roles", "role_rules", "role_scopes", "user_roles", "teams", "team_members"):
        enable_tenant_rls(table)
        grant(table, "SELECT, INSERT, UPDATE, DELETE")

    # Begin a tenant's transaction in one round trip: set app.tenant_id (transaction-local) and
    # return the tenant's policy version, which the app role could not read before the tenant
    # is set. SECURITY DEFINER: it reads tenants as the owner (tenants is not FORCEd).
    op.execute(
        """
        CREATE FUNCTION caravan_begin_tenant(p_tenant uuid) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
            PERFORM set_config('app.tenant_id', p_tenant::text, true);
            RETURN (SELECT policy_version FROM tenants WHERE id = p_tenant);
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION caravan_begin_tenant(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION caravan_begin_tenant(uuid) TO {app_role()}")
    _seed_existing_tenants()


def _seed_existing_tenants() -> None:
    """Tenants that predate this revision get the built-in roles: their first user becomes
    tenant admin (tenant creation makes the admin first), everyone else a salesperson."""
    from backend.policy.builtin import DEFAULT_ROLE, TENANT_ADMIN, builtin_roles

    bind = op.get_bind()
    tenants = bind.execute(sa.text("SELECT id FROM tenants ORDER BY id")).scalars().all()
    for tenant_id in tenants:
        # The owner is subject to FORCE RLS too: scope each tenant's statements to it.
        bind.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)})
        role_ids: dict[str, object] = {}
        for role in builtin_roles().values():
            role_id = bind.execute(
                sa.text(
                    "INSERT INTO roles (tenant_id, id, name, description, builtin) "
                    "VALUES (:t, gen_random_uuid(), :n, :d, true) RETURNING id"
                ),
                {"t": tenant_id, "n": role.name, "d": role.description},
            ).scalar_one()
            role_ids[role.name] = role_id
            for effect, obj, action in role.rules:
                bind.execute(
                    sa.text(
                        "INSERT INTO role_rules (tenant_id, id, role_id, effect, object, action) "
                        "VALUES (:t, gen_random_uuid(), :r, :e, :o, :a)"
                    ),
                    {"t": tenant_id, "r": role_id, "e": effect, "o": obj, "a": action},
                )
            for entity, scope in role.scopes.items():
                bind.execute(
                    sa.text(
                        "INSERT INTO role_scopes (tenant_id, id, role_id, entity, scope) "
                        "VALUES (:t, gen_random_uuid(), :r, :e, :s)"
                    ),
                    {"t": tenant_id, "r": role_id, "e": entity, "s": scope},
                )
        users = (
            bind.execute(sa.text("SELECT id FROM users ORDER BY created_at, id")).scalars().all()
        )
        for index, user_id in enumerate(users):
            bind.execute(
                sa.text(
                    "INSERT INTO user_roles (tenant_id, id, user_id, role_id) "
                    "VALUES (:t, gen_random_uuid(), :u, :r)"
                ),
                {
                    "t": tenant_id,
                    "u": user_id,
                    "r": role_ids[TENANT_ADMIN if index == 0 else DEFAULT_ROLE],
                },
            )
    bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def downgrade() -> None:
    op.execute("DROP FUNCTION caravan_begin_tenant(uuid)")
    for table in ("team_members", "teams", "user_roles", "role_scopes", "role_rules", "roles"):
        op.drop_table(table)
    op.drop_column("tenants", "policy_version")
