"""Knowledge articles (with every version kept), call scripts and the runs agents record."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Computed,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, TenantMixin

STATUSES = ("draft", "published")
AUDIENCES = ("internal", "public")
# Policy objects outside the entity registry, each with its sub-objects (backend/knowledge/
# access.py), so role rules naming them can be granted through the policy API too.
POLICY_OBJECTS: dict[str, tuple[str, ...]] = {
    "article": AUDIENCES,
    "call_script": (),
    "script_run": (),
}

# The weighted search document: title A, tags B, body C, each stemmed in the article's
# language (knowledge_regconfig and knowledge_tags_text are IMMUTABLE SQL functions defined
# by migration 0020_knowledge).
DOCUMENT_SQL = (
    "setweight(to_tsvector(knowledge_regconfig(language), title), 'A') || "
    "setweight(to_tsvector(knowledge_regconfig(language), knowledge_tags_text(tags)), 'B') || "
    "setweight(to_tsvector(knowledge_regconfig(language), body), 'C')"
)


class Article(TenantMixin, Base):
    __tablename__ = "kb_articles"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "author_id"], ["users.tenant_id", "users.id"]),
        CheckConstraint("status IN ('draft', 'published')", name="status_known"),
        CheckConstraint("audience IN ('internal', 'public')", name="audience_known"),
        Index(None, "tenant_id", "status", "audience"),
        Index("ix_kb_articles_document", "document", postgresql_using="gin"),
        Index(
            "ix_kb_articles_title_trgm",
            "title",
            postgresql_using="gin",
            postgresql_ops={"title": "gin_trgm_ops"},
        ),
    )

    title: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)  # Markdown, never rendered here
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    audience: Mapped[str] = mapped_column(String(10), nullable=False)
    language: Mapped[str] = mapped_column(String(16), nullable=False)
    author_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    document: Mapped[Any] = mapped_column(TSVECTOR, Computed(DOCUMENT_SQL, persisted=True))


class ArticleVersion(TenantMixin, Base):
    """One saved state of an article: written on create and on every update."""

    __tablename__ = "kb_article_versions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "article_id"],
            ["kb_articles.tenant_id", "kb_articles.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(["tenant_id", "edited_by"], ["users.tenant_id", "users.id"]),
        UniqueConstraint("tenant_id", "article_id", "article_version"),
    )

    article_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    article_version: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    audience: Mapped[str] = mapped_column(String(10), nullable=False)
    language: Mapped[str] = mapped_column(String(16), nullable=False)
    edited_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


class CallScript(TenantMixin, Base):
    """A guided script: `steps` is the validated graph (backend/knowledge/graph.py)."""

    __tablename__ = "call_scripts"

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)


class ScriptRun(TenantMixin, Base):
    """One pass through a script by an agent, against a subject (e.g. a case)."""

    __tablename__ = "script_runs"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "script_id"],
            ["call_scripts.tenant_id", "call_scripts.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(["tenant_id", "run_by"], ["users.tenant_id", "users.id"]),
        Index(None, "tenant_id", "subject_type", "subject_id"),
        Index(None, "tenant_id", "script_id"),
    )

    script_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    script_version: Mapped[int] = mapped_column(Integer, nullable=False)
    subject_type: Mapped[str] = mapped_column(String(40), nullable=False)
    subject_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    answers: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    path: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    end_reached: Mapped[str | None] = mapped_column(String(200))
    run_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
