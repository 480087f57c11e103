"""Tamper evidence: the per-tenant audit chain (seals), erasure and retention paths.

- `record_history` and `security_events` gain `txid` (the writing transaction's id), which the
  sealer uses to take rows in the order they became final, without writers ever locking a
  chain head.
- `audit_seals` is the chain: insert-only for everyone except the prune path.
- One trigger function guards all three tables: TRUNCATE is always refused; DELETE only inside
  `caravan_prune_audit` (sealed rows past the tenant's retention); UPDATE only inside
  `caravan_erase_history`, and then only old/new values of history rows set to NULL.
- `tenants` gains the two retention settings (NULL: keep forever).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from backend.db.rls import app_role, enable_tenant_rls, grant

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TXID_DEFAULT = sa.text("(pg_current_xact_id()::text)::bigint")
CHAINED = ("record_history", "security_events")


def _functions(role: str) -> None:
    op.execute(
        """
        CREATE FUNCTION audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' AND current_setting('caravan.audit_pruning', true) = 'on' THEN
                RETURN OLD;
            END IF;
            IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'record_history'
               AND current_setting('caravan.history_erasing', true) = 'on' THEN
                IF NEW.old_value IS NULL AND NEW.new_value IS NULL
                   AND (to_jsonb(NEW) - 'old_value' - 'new_value')
                       = (to_jsonb(OLD) - 'old_value' - 'new_value') THEN
                    RETURN NEW;
                END IF;
            END IF;
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    # The sealer and verifier work tenant by tenant; the app role cannot list tenants itself.
    op.execute(
        """
        CREATE FUNCTION caravan_audit_tenants() RETURNS TABLE (id uuid, slug text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
        AS $$ SELECT id, slug::text FROM tenants ORDER BY id $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION caravan_erase_history(p_entity text, p_record uuid) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        DECLARE
            t uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
            n integer;
        BEGIN
            IF t IS NULL THEN
                RAISE EXCEPTION 'no tenant set' USING ERRCODE = 'insufficient_privilege';
            END IF;
            PERFORM set_config('caravan.history_erasing', 'on', true);
            UPDATE record_history SET old_value = NULL, new_value = NULL
             WHERE tenant_id = t AND entity = p_entity AND record_id = p_record
               AND (old_value IS NOT NULL OR new_value IS NOT NULL);
            GET DIAGNOSTICS n = ROW_COUNT;
            PERFORM set_config('caravan.history_erasing', '', true);
            RETURN n;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION caravan_prune_audit(
            p_history_through bigint, p_events_through bigint, p_seals_through bigint
        ) RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        DECLARE
            t uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
            h_days integer;
            e_days integer;
            head bigint;
            n bigint := 0;
            k bigint;
        BEGIN
            IF t IS NULL THEN
                RAISE EXCEPTION 'no tenant set' USING ERRCODE = 'insufficient_privilege';
            END IF;
            SELECT history_retention_days, audit_retention_days INTO h_days, e_days
              FROM tenants WHERE id = t;
            SELECT max(id) INTO head FROM audit_seals WHERE tenant_id = t;
            IF p_seals_through > LEAST(p_history_through, p_events_through)
               OR p_seals_through >= coalesce(head, 0) AND p_seals_through > 0 THEN
                RAISE EXCEPTION 'seals through % cannot be pruned', p_seals_through
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF p_history_through > 0 AND (h_days IS NULL OR EXISTS (
                SELECT 1 FROM audit_seals WHERE tenant_id = t AND id <= p_history_through
                   AND sealed_at >= now() - make_interval(days => h_days))) THEN
                RAISE EXCEPTION 'history sealed through % is within retention', p_history_through
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF p_events_through > 0 AND (e_days IS NULL OR EXISTS (
                SELECT 1 FROM audit_seals WHERE tenant_id = t AND id <= p_events_through
                   AND sealed_at >= now() - make_interval(days => e_days))) THEN
                RAISE EXCEPTION 'events sealed through % are within retention', p_events_through
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            PERFORM set_config('caravan.audit_pruning', 'on', true);
            DELETE FROM record_history h USING audit_seals s
             WHERE h.tenant_id = t AND s.tenant_id = t AND s.source = 'history'
               AND s.row_id = h.id AND s.id <= p_history_through;
            GET DIAGNOSTICS k = ROW_COUNT;
            n := n + k;
            DELETE FROM security_events e USING audit_seals s
             WHERE e.tenant_id = t AND s.tenant_id = t AND s.source = 'event'
               AND s.row_id = e.id AND s.id <= p_events_through;
            GET DIAGNOSTICS k = ROW_COUNT;
            n := n + k;
            DELETE FROM audit_seals WHERE tenant_id = t AND id <= p_seals_through;
            PERFORM set_config('caravan.audit_pruning', '', true);
            RETURN n;
        END $$
        """
    )
    for signature in (
        "caravan_audit_tenants()",
        "caravan_erase_history(text, uuid)",
        "caravan_prune_audit(bigint, bigint, bigint)",
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {role}")


def upgrade() -> None:
    role = app_role()
    op.add_column("tenants", sa.Column("history_retention_days", sa.Integer()))
    op.add_column("tenants", sa.Column("audit_retention_days", sa.Integer()))
    for table in CHAINED:
        op.add_column(
            table, sa.Column("txid", sa.BigInteger(), nullable=False, server_default=TXID_DEFAULT)
        )
        op.create_index(f"ix_{table}_tenant_id_txid", table, ["tenant_id", "txid"])

    op.create_table(
        "audit_seals",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("row_id", UUID(as_uuid=True), nullable=False),
        sa.Column("row_txid", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column(
            "sealed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("clock_timestamp()"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_audit_seals"),
        sa.UniqueConstraint(
            "tenant_id", "source", "row_id", name="uq_audit_seals_tenant_id_source_row_id"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            ondelete="RESTRICT",
            name="fk_audit_seals_tenant_id_tenants",
        ),
    )
    enable_tenant_rls("audit_seals")
    grant("audit_seals", "SELECT, INSERT")

    _functions(role)
    for table in (*CHAINED, "audit_seals"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_guard()"
        )
    op.execute(
        "CREATE TRIGGER audit_seals_no_truncate BEFORE TRUNCATE ON audit_seals "
        "FOR EACH STATEMENT EXECUTE FUNCTION refuse_change()"
    )


def downgrade() -> None:
    for table in CHAINED:
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_change()"
        )
    op.drop_table("audit_seals")
    op.execute("DROP FUNCTION caravan_prune_audit(bigint, bigint, bigint)")
    op.execute("DROP FUNCTION caravan_erase_history(text, uuid)")
    op.execute("DROP FUNCTION caravan_audit_tenants()")
    op.execute("DROP FUNCTION audit_guard()")
    for table in CHAINED:
        op.drop_index(f"ix_{table}_tenant_id_txid", table)
        op.drop_column(table, "txid")
    op.drop_column("tenants", "audit_retention_days")
    op.drop_column("tenants", "history_retention_days")
