"""SQL for row-level security and app-role grants, used by migrations."""

from __future__ import annotations

import re

from alembic import op

CURRENT_TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def app_role() -> str:
    """The role the server connects as; migrations grant it rights on each table."""
    role = op.get_context().config.attributes.get("app_role", "caravan_app")  # type: ignore[union-attr]
    if not _IDENT.match(role):
        raise ValueError(f"invalid app role name {role!r}")
    return str(role)


def enable_tenant_rls(table: str, column: str = "tenant_id") -> None:
    """ENABLE + FORCE row-level security with one policy for USING and WITH CHECK."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({column} = {CURRENT_TENANT}) WITH CHECK ({column} = {CURRENT_TENANT})"
    )


def grant(table: str, privileges: str) -> None:
    op.execute(f"GRANT {privileges} ON {table} TO {app_role()}")


def make_append_only(table: str) -> None:
    """Refuse UPDATE, DELETE and TRUNCATE for everyone (the owner too), on top of the grants."""
    op.execute(
        """
        CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION refuse_change()"
    )
    op.execute(
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION refuse_change()"
    )
