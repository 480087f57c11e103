"""Pipelines and stages per tenant, the stage of an opportunity as a reference (`stage_id`,
kept in step with the old `stage` string by a trigger), and the opportunity stage history.
Every existing tenant gets the default pipeline with the six stages opportunities always had.

Revision ID: 0014_pipelines
Revises: 0022_team_nesting
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from backend.db.rls import enable_tenant_rls, grant

revision = "0014_pipelines"
down_revision: str | None = "0022_team_nesting"
branch_labels = None
depends_on = None


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


def _key_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    ]


# The legacy `stage` string of a pipeline stage: its name when that is one of the six old
# stages, else what its kind means (won: closed_won, lost: closed_lost, open: prospecting).
STAGE_LABEL = """
CREATE FUNCTION opportunity_stage_label(p_name text, p_kind text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_name IN ('prospecting', 'qualification', 'proposal', 'negotiation',
                        'closed_won', 'closed_lost') THEN p_name
        WHEN p_kind = 'won' THEN 'closed_won'
        WHEN p_kind = 'lost' THEN 'closed_lost'
        ELSE 'prospecting'
    END
$$
"""

# Writing `stage_id` sets `stage` (and the pipeline, when none is given); writing `stage` (or
# only the pipeline) picks the stage of that name in the opportunity's pipeline (the default
# pipeline when none). A name the pipeline lacks leaves the two apart: the record service's
# write hook then refuses the write with a 422 naming the field (a trigger error would be a 500).
STAGE_SYNC = """
CREATE FUNCTION opportunity_stage_sync() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    by_name boolean;
    found uuid;
BEGIN
    IF TG_OP = 'INSERT' THEN
        by_name := NEW.stage_id IS NULL;
    ELSIF NEW.stage_id IS NULL OR NEW.stage_id IS DISTINCT FROM OLD.stage_id THEN
        by_name := NEW.stage_id IS NULL;
    ELSIF NEW.stage IS NULL THEN
        RETURN NEW;  -- refused by NOT NULL
    ELSIF NEW.stage IS DISTINCT FROM OLD.stage
        OR NEW.pipeline_id IS DISTINCT FROM OLD.pipeline_id THEN
        by_name := true;
    ELSE
        RETURN NEW;
    END IF;
    IF NEW.pipeline_id IS NULL AND (by_name OR NEW.stage_id IS NULL) THEN
        SELECT p.id INTO NEW.pipeline_id FROM pipelines p
        WHERE p.tenant_id = NEW.tenant_id AND p.is_default;
    ELSIF NEW.pipeline_id IS NULL THEN
        SELECT s.pipeline_id INTO NEW.pipeline_id FROM pipeline_stages s
        WHERE s.tenant_id = NEW.tenant_id AND s.id = NEW.stage_id;
    END IF;
    IF by_name THEN
        SELECT s.id INTO found FROM pipeline_stages s
        WHERE s.tenant_id = NEW.tenant_id AND s.pipeline_id = NEW.pipeline_id
          AND (NEW.stage IS NULL OR opportunity_stage_label(s.name, s.kind) = NEW.stage)
        ORDER BY (s.id = NEW.stage_id) DESC NULLS LAST, (s.name = NEW.stage) DESC NULLS LAST,
                 s.position
        LIMIT 1;
        IF found IS NULL AND NEW.stage_id IS NULL THEN  -- a new record: any stage (refused later)
            SELECT s.id INTO found FROM pipeline_stages s
            WHERE s.tenant_id = NEW.tenant_id AND s.pipeline_id = NEW.pipeline_id
            ORDER BY s.position LIMIT 1;
        END IF;
        NEW.stage_id := coalesce(found, NEW.stage_id);
    END IF;
    IF NEW.stage IS NULL OR NOT by_name THEN
        SELECT opportunity_stage_label(s.name, s.kind) INTO NEW.stage FROM pipeline_stages s
        WHERE s.tenant_id = NEW.tenant_id AND s.id = NEW.stage_id;
    END IF;
    RETURN NEW;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "pipelines",
        *_key_columns(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False, server_default="false"),
        *_timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_pipelines"),
        _tenant_fk("pipelines"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_pipelines_tenant_id_name"),
    )
    op.create_index(
        "ix_pipelines_one_default",
        "pipelines",
        ["tenant_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.create_table(
        "pipeline_stages",
        *_key_columns(),
        sa.Column("pipeline_id", UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("probability", sa.SmallInteger(), nullable=False),
        sa.Column("kind", sa.String(4), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_pipeline_stages"),
        _tenant_fk("pipeline_stages"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "pipeline_id"],
            ["pipelines.tenant_id", "pipelines.id"],
            ondelete="CASCADE",
            name="fk_pipeline_stages_tenant_id_pipeline_id_pipelines",
        ),
        sa.UniqueConstraint(
            "tenant_id", "pipeline_id", "name", name="uq_pipeline_stages_tenant_id_pipeline_id_name"
        ),
        sa.CheckConstraint(
            "probability BETWEEN 0 AND 100", name="ck_pipeline_stages_probability_percent"
        ),
        sa.CheckConstraint("kind IN ('open', 'won', 'lost')", name="ck_pipeline_stages_stage_kind"),
    )
    for table in ("pipelines", "pipeline_stages"):
        enable_tenant_rls(table)
        grant(table, "SELECT, INSERT, UPDATE, DELETE")
    _seed_default_pipelines()
    _salespeople_read_pipelines()

    op.add_column("opportunities", sa.Column("pipeline_id", UUID(as_uuid=True)))
    op.add_column("opportunities", sa.Column("stage_id", UUID(as_uuid=True)))
    op.execute(STAGE_LABEL)
    _per_tenant(
        """
        UPDATE opportunities o SET pipeline_id = s.pipeline_id, stage_id = s.id
        FROM pipeline_stages s JOIN pipelines p
          ON p.tenant_id = s.tenant_id AND p.id = s.pipeline_id AND p.is_default
        WHERE o.tenant_id = t AND s.tenant_id = o.tenant_id AND s.name = o.stage;
        """
    )
    # Nullable columns with a check (not NOT NULL): writes may leave them out, and the
    # trigger fills them in before the check runs.
    op.create_check_constraint(
        "ck_opportunities_has_stage",
        "opportunities",
        "pipeline_id IS NOT NULL AND stage_id IS NOT NULL",
    )
    op.alter_column("opportunities", "stage", server_default="prospecting")
    op.create_foreign_key(
        "fk_opportunities_tenant_id_pipeline_id_pipelines",
        "opportunities",
        "pipelines",
        ["tenant_id", "pipeline_id"],
        ["tenant_id", "id"],
    )
    op.create_foreign_key(
        "fk_opportunities_tenant_id_stage_id_pipeline_stages",
        "opportunities",
        "pipeline_stages",
        ["tenant_id", "stage_id"],
        ["tenant_id", "id"],
    )
    for column in ("stage_id", "close_date"):
        op.create_index(
            f"ix_opportunities_tenant_id_{column}", "opportunities", ["tenant_id", column]
        )
    op.execute(STAGE_SYNC)
    op.execute(
        "CREATE TRIGGER opportunities_stage_sync BEFORE INSERT OR UPDATE ON opportunities "
        "FOR EACH ROW EXECUTE FUNCTION opportunity_stage_sync()"
    )

    op.create_table(
        "opportunity_stages",
        *_key_columns(),
        sa.Column("opportunity_id", UUID(as_uuid=True), nullable=False),
        sa.Column("stage_id", UUID(as_uuid=True), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True)),
        sa.Column("moved_by", UUID(as_uuid=True)),
        *_timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_opportunity_stages"),
        _tenant_fk("opportunity_stages"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "opportunity_id"],
            ["opportunities.tenant_id", "opportunities.id"],
            ondelete="CASCADE",
            name="fk_opportunity_stages_tenant_id_opportunity_id_opportunities",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "stage_id"],
            ["pipeline_stages.tenant_id", "pipeline_stages.id"],
            ondelete="CASCADE",
            name="fk_opportunity_stages_tenant_id_stage_id_pipeline_stages",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "moved_by"],
            ["users.tenant_id", "users.id"],
            ondelete="SET NULL (moved_by)",
            name="fk_opportunity_stages_tenant_id_moved_by_users",
        ),
    )
    op.create_index(
        "ix_opportunity_stages_tenant_id_opportunity_id_entered_at",
        "opportunity_stages",
        ["tenant_id", "opportunity_id", "entered_at"],
    )
    enable_tenant_rls("opportunity_stages")
    grant("opportunity_stages", "SELECT, INSERT, UPDATE, DELETE")
    # Existing opportunities: one open stay each, since their last change (the best we know).
    _per_tenant(
        """
        INSERT INTO opportunity_stages (tenant_id, id, opportunity_id, stage_id, entered_at)
        SELECT tenant_id, gen_random_uuid(), id, stage_id, updated_at FROM opportunities
        WHERE tenant_id = t;
        """
    )


def _per_tenant(statements: str) -> None:
    """Run `statements` once per tenant (as `t`), under that tenant's RLS setting: the owner
    is subject to FORCE RLS too."""
    op.execute(_PER_TENANT.replace("<statements>", statements))


_PER_TENANT = """
DO $$ DECLARE t uuid;
BEGIN
    FOR t IN SELECT id FROM tenants LOOP
        PERFORM set_config('app.tenant_id', t::text, true);
        <statements>
    END LOOP;
    PERFORM set_config('app.tenant_id', '', true);
END $$
"""


def _seed_default_pipelines() -> None:
    """The default pipeline for every tenant (each tenant's rows under its own RLS setting)."""
    op.execute(
        """
        DO $$
        DECLARE t uuid; p uuid;
        BEGIN
            FOR t IN SELECT id FROM tenants LOOP
                PERFORM set_config('app.tenant_id', t::text, true);
                p := gen_random_uuid();
                INSERT INTO pipelines (tenant_id, id, name, is_default)
                VALUES (t, p, 'Sales', true);
                INSERT INTO pipeline_stages (tenant_id, id, pipeline_id, name, position,
                                             probability, kind)
                SELECT t, gen_random_uuid(), p, v.name, v.position, v.probability, v.kind
                FROM (VALUES ('prospecting', 0, 10, 'open'), ('qualification', 1, 20, 'open'),
                             ('proposal', 2, 50, 'open'), ('negotiation', 3, 80, 'open'),
                             ('closed_won', 4, 100, 'won'), ('closed_lost', 5, 0, 'lost'))
                     AS v(name, position, probability, kind);
            END LOOP;
            PERFORM set_config('app.tenant_id', '', true);
        END $$
        """
    )


def _salespeople_read_pipelines() -> None:
    """roles.toml as of this revision: the built-in salesperson reads pipelines but does not
    edit them (its `*` allows would grant it). Existing tenants' built-in role gets the same."""
    _per_tenant(
        """
        INSERT INTO role_rules (tenant_id, id, role_id, effect, object, action)
        SELECT t, gen_random_uuid(), r.id, 'deny', 'pipeline', a.action
        FROM roles r CROSS JOIN (VALUES ('create'), ('update'), ('delete')) AS a(action)
        WHERE r.tenant_id = t AND r.builtin AND r.name = 'salesperson'
        ON CONFLICT DO NOTHING;
        UPDATE tenants SET policy_version = policy_version + 1 WHERE id = t;
        """
    )


def downgrade() -> None:
    op.drop_table("opportunity_stages")
    op.execute("DROP TRIGGER opportunities_stage_sync ON opportunities")
    op.execute("DROP FUNCTION opportunity_stage_sync()")
    op.execute("DROP FUNCTION opportunity_stage_label(text, text)")
    op.drop_index("ix_opportunities_tenant_id_close_date", table_name="opportunities")
    op.drop_index("ix_opportunities_tenant_id_stage_id", table_name="opportunities")
    op.drop_constraint("fk_opportunities_tenant_id_stage_id_pipeline_stages", "opportunities")
    op.drop_constraint("fk_opportunities_tenant_id_pipeline_id_pipelines", "opportunities")
    op.drop_constraint("ck_opportunities_has_stage", "opportunities")
    op.alter_column("opportunities", "stage", server_default=None)
    op.drop_column("opportunities", "stage_id")
    op.drop_column("opportunities", "pipeline_id")
    op.drop_table("pipeline_stages")
    op.drop_table("pipelines")
