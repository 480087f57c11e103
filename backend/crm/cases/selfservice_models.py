"""Web self-service and satisfaction: the submitter's secret status link of a web case, the
replies on a case (the customer's, and the agents' public or internal ones), and the one
satisfaction survey of a resolved case. Secrets are kept only as SHA-256 hex digests."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, TenantMixin

SURVEY_KINDS = ("csat", "nps")


def _case_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "case_id"], ["cases.tenant_id", "cases.id"], ondelete="CASCADE"
    )


class CaseStatusLink(TenantMixin, Base):
    """Who submitted a web case, and the hash of their status link's token."""

    __tablename__ = "case_status_links"
    __table_args__ = (
        _case_fk(),
        UniqueConstraint("tenant_id", "case_id"),
        UniqueConstraint("tenant_id", "token_hash"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    submitter_name: Mapped[str] = mapped_column(String(200), nullable=False)
    submitter_email: Mapped[str] = mapped_column(String(254), nullable=False)


class CaseReply(TenantMixin, Base):
    """A message on a case: `customer` replies are public; an agent's may be internal."""

    __tablename__ = "case_replies"
    __table_args__ = (
        _case_fk(),
        ForeignKeyConstraint(
            ["tenant_id", "author_id"],
            ["users.tenant_id", "users.id"],
            ondelete="SET NULL (author_id)",
        ),
        CheckConstraint("author_kind IN ('customer', 'agent')", name="author_kind_known"),
        Index(None, "tenant_id", "case_id", "created_at"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    author_kind: Mapped[str] = mapped_column(String(10), nullable=False)
    author_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    body: Mapped[str] = mapped_column(Text, nullable=False)
    public: Mapped[bool] = mapped_column(Boolean, nullable=False)


class CaseSurvey(TenantMixin, Base):
    """The satisfaction survey of a resolved case (one per case). Its link's token is minted
    when an agent first asks for it (so no plain secret is ever stored) and works until
    `expires_at`, once."""

    __tablename__ = "case_surveys"
    __table_args__ = (
        _case_fk(),
        ForeignKeyConstraint(
            ["tenant_id", "contact_id"],
            ["contacts.tenant_id", "contacts.id"],
            ondelete="SET NULL (contact_id)",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "agent_id"],
            ["users.tenant_id", "users.id"],
            ondelete="SET NULL (agent_id)",
        ),
        UniqueConstraint("tenant_id", "case_id"),
        UniqueConstraint("tenant_id", "token_hash"),
        CheckConstraint("kind IN ('csat', 'nps')", name="kind_known"),
        CheckConstraint(
            "score IS NULL OR (kind = 'csat' AND score BETWEEN 1 AND 5) "
            "OR (kind = 'nps' AND score BETWEEN 0 AND 10)",
            name="score_in_range",
        ),
        Index(None, "tenant_id", "agent_id"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(String(4), nullable=False)
    token_hash: Mapped[str | None] = mapped_column(String(64))
    link_issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
