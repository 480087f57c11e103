"""The knowledge base (articles, their versions, ranked full-text and trigram search) and
guided call scripts with the runs agents record.

Revision ID: 0020_knowledge
Revises: 0019_cases
Create Date: 2026-12-08
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID

from backend.db.rls import enable_tenant_rls, grant

revision = "0020_knowledge"
down_revision: str | None = "0019_cases"
branch_labels = None
depends_on = None

# Frozen copy of the rules this revision adds to policies/roles.toml, for tenants that
# existed before it (new tenants are seeded from roles.toml itself).
RULES: dict[str, list[tuple[str, str, str]]] = {
    "sales_manager": [
        ("deny", "article.*", "create"),
        ("deny", "article.*", "update"),
        ("deny", "article.*", "delete"),
        ("deny", "call_script", "create"),
        ("deny", "call_script", "update"),
        ("deny", "call_script", "delete"),
    ],
    "salesperson": [
        ("deny", "article.*", "create"),
        ("deny", "article.*", "update"),
        ("deny", "article.*", "delete"),
        ("deny", "call_script", "create"),
        ("deny", "call_script", "update"),
        ("deny", "call_script", "delete"),
    ],
    "support_agent": [
        ("allow", "article.*", "create"),
        ("allow", "article.*", "update"),
        ("allow", "call_script", "create"),
        ("allow", "call_script", "update"),
        ("allow", "script_run", "create"),
    ],
    "marketing": [
        ("allow", "article.public", "create"),
        ("allow", "article.public", "update"),
    ],
}


def _columns(table: str) -> list[sa.Column[object] | sa.Constraint]:
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


def _fk(table: str, column: str, target: str, ondelete: str | None = None) -> sa.Constraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{target}.tenant_id", f"{target}.id"],
        ondelete=ondelete,
        name=f"fk_{table}_tenant_id_{column}_{target}",
    )


def _functions() -> None:
    # The text search configuration for an article's language ("de", "de-CH" -> german);
    # 'simple' (no stemming, no stop words) for any other.
    op.execute(
        """
        CREATE FUNCTION knowledge_regconfig(lang text) RETURNS regconfig
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT CASE lower(split_part(lang, '-', 1))
                WHEN 'en' THEN 'english'::regconfig WHEN 'de' THEN 'german'::regconfig
                WHEN 'fr' THEN 'french'::regconfig WHEN 'es' THEN 'spanish'::regconfig
                WHEN 'it' THEN 'italian'::regconfig WHEN 'pt' THEN 'portuguese'::regconfig
                WHEN 'nl' THEN 'dutch'::regconfig WHEN 'sv' THEN 'swedish'::regconfig
                WHEN 'da' THEN 'danish'::regconfig WHEN 'no' THEN 'norwegian'::regconfig
                WHEN 'nb' THEN 'norwegian'::regconfig WHEN 'fi' THEN 'finnish'::regconfig
                WHEN 'ru' THEN 'russian'::regconfig WHEN 'tr' THEN 'turkish'::regconfig
                ELSE 'simple'::regconfig END
        $$
        """
    )
    # array_to_string is only STABLE (it formats any element type); for text[] it is not.
    op.execute(
        """
        CREATE FUNCTION knowledge_tags_text(tags text[]) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT array_to_string(tags, ' ') $$
        """
    )


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    _functions()
    document = (
        "setweight(to_tsvector(knowledge_regconfig(language), title), 'A') || "
        "setweight(to_tsvector(knowledge_regconfig(language), knowledge_tags_text(tags)), 'B') || "
        "setweight(to_tsvector(knowledge_regconfig(language), body), 'C')"
    )
    op.create_table(
        "kb_articles",
        *_columns("kb_articles"),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tags", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("audience", sa.String(10), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("author_id", UUID(as_uuid=True), nullable=False),
        sa.Column("document", TSVECTOR(), sa.Computed(document, persisted=True)),
        _fk("kb_articles", "author_id", "users"),
        sa.CheckConstraint("status IN ('draft', 'published')", name="ck_kb_articles_status_known"),
        sa.CheckConstraint(
            "audience IN ('internal', 'public')", name="ck_kb_articles_audience_known"
        ),
    )
    op.create_index(
        "ix_kb_articles_tenant_id_status_audience",
        "kb_articles",
        ["tenant_id", "status", "audience"],
    )
    op.create_index(
        "ix_kb_articles_document",
        "kb_articles",
        ["document"],
        postgresql_using="gin",
    )
    op.create_index(
        "ix_kb_articles_title_trgm",
        "kb_articles",
        ["title"],
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )
    op.create_table(
        "kb_article_versions",
        *_columns("kb_article_versions"),
        sa.Column("article_id", UUID(as_uuid=True), nullable=False),
        sa.Column("article_version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tags", ARRAY(sa.Text()), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("audience", sa.String(10), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("edited_by", UUID(as_uuid=True), nullable=False),
        _fk("kb_article_versions", "article_id", "kb_articles", "CASCADE"),
        _fk("kb_article_versions", "edited_by", "users"),
        sa.UniqueConstraint(
            "tenant_id",
            "article_id",
            "article_version",
            name="uq_kb_article_versions_tenant_id_article_id_article_version",
        ),
    )
    op.create_table(
        "call_scripts",
        *_columns("call_scripts"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("steps", JSONB(), nullable=False),
    )
    op.create_table(
        "script_runs",
        *_columns("script_runs"),
        sa.Column("script_id", UUID(as_uuid=True), nullable=False),
        sa.Column("script_version", sa.Integer(), nullable=False),
        sa.Column("subject_type", sa.String(40), nullable=False),
        sa.Column("subject_id", UUID(as_uuid=True), nullable=False),
        sa.Column("answers", JSONB(), nullable=False),
        sa.Column("path", JSONB(), nullable=False),
        sa.Column("end_reached", sa.String(200)),
        sa.Column("run_by", UUID(as_uuid=True), nullable=False),
        _fk("script_runs", "script_id", "call_scripts", "CASCADE"),
        _fk("script_runs", "run_by", "users"),
    )
    op.create_index(
        "ix_script_runs_tenant_id_subject_type_subject_id",
        "script_runs",
        ["tenant_id", "subject_type", "subject_id"],
    )
    op.create_index("ix_script_runs_tenant_id_script_id", "script_runs", ["tenant_id", "script_id"])
    for table in ("kb_articles", "kb_article_versions", "call_scripts"):
        enable_tenant_rls(table)
        grant(table, "SELECT, INSERT, UPDATE, DELETE")
    enable_tenant_rls("script_runs")
    grant("script_runs", "SELECT, INSERT")
    _add_rules_to_existing_tenants()


def _add_rules_to_existing_tenants() -> None:
    """Built-in roles of earlier tenants get this revision's rules (skipping any they hold)."""
    bind = op.get_bind()
    tenants = bind.execute(sa.text("SELECT id FROM tenants ORDER BY id")).scalars().all()
    for tenant_id in tenants:
        # The owner is subject to FORCE RLS too: scope each tenant's statements to it.
        bind.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)})
        for role, rules in RULES.items():
            for effect, obj, action in rules:
                bind.execute(
                    sa.text(
                        "INSERT INTO role_rules (tenant_id, id, role_id, effect, object, action) "
                        "SELECT :t, :id, r.id, x.effect, x.object, x.action FROM roles r, "
                        "(SELECT CAST(:e AS text) effect, CAST(:o AS text) object, "
                        "CAST(:a AS text) action) x "
                        "WHERE r.name = :n AND r.builtin AND NOT EXISTS ("
                        "  SELECT 1 FROM role_rules y WHERE y.role_id = r.id "
                        "  AND y.effect = x.effect AND y.object = x.object AND y.action = x.action)"
                    ),
                    {
                        "t": tenant_id,
                        "id": uuid.uuid4(),
                        "n": role,
                        "e": effect,
                        "o": obj,
                        "a": action,
                    },
                )
        bind.execute(
            sa.text("UPDATE tenants SET policy_version = policy_version + 1 WHERE id = :t"),
            {"t": tenant_id},
        )
    bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def downgrade() -> None:
    op.drop_table("script_runs")
    op.drop_table("call_scripts")
    op.drop_table("kb_article_versions")
    op.drop_table("kb_articles")
    op.execute("DROP FUNCTION knowledge_tags_text(text[])")
    op.execute("DROP FUNCTION knowledge_regconfig(text)")
    # The role rules stay: they name objects nothing serves any more, and deny nothing else.
