"""Cases (the service side): a customer's question or problem, worked by an agent in a queue,
with due times from the tenant's SLA policies. Queues, their members, the assignment rules and
the SLA policies are the tenant's routing set-up; the counter gives each tenant its own case
numbers (a row per tenant, not a global sequence, so the schema stays distributable)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.custom_fields.models import CustomValuesMixin, custom_values_index
from backend.db.base import Base, TenantMixin

TYPES = ("question", "problem", "complaint", "return", "request")
PRIORITIES = ("low", "normal", "high", "urgent")  # in rising order: escalation moves right
STATUSES = ("new", "open", "waiting_on_customer", "resolved", "closed")
CLOSED_STATUSES = ("resolved", "closed")
CHANNELS = ("phone", "email", "web", "chat", "visit", "social")


class Case(TenantMixin, CustomValuesMixin, Base):
    __tablename__ = "cases"
    __table_args__ = (
        custom_values_index(),
        UniqueConstraint("tenant_id", "number"),
        ForeignKeyConstraint(["tenant_id", "owner_id"], ["users.tenant_id", "users.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "assignee_id"],
            ["users.tenant_id", "users.id"],
            ondelete="SET NULL (assignee_id)",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "queue_id"],
            ["queues.tenant_id", "queues.id"],
            ondelete="SET NULL (queue_id)",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["accounts.tenant_id", "accounts.id"],
            ondelete="SET NULL (account_id)",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "contact_id"],
            ["contacts.tenant_id", "contacts.id"],
            ondelete="SET NULL (contact_id)",
        ),
        Index(None, "tenant_id", "owner_id"),
        Index(None, "tenant_id", "assignee_id"),
        Index(None, "tenant_id", "queue_id"),
        Index(None, "tenant_id", "account_id"),
        Index(None, "tenant_id", "contact_id"),
        Index(None, "tenant_id", "updated_at"),
        Index(None, "tenant_id", "resolution_due_at"),
    )

    # "C-000123": from the tenant's counter (case_counters), unique per tenant.
    number: Mapped[str] = mapped_column(String(20), nullable=False)
    subject: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(20), nullable=False, server_default="question")
    priority: Mapped[str] = mapped_column(String(10), nullable=False, server_default="normal")
    status: Mapped[str] = mapped_column(String(24), nullable=False, server_default="new")
    channel: Mapped[str | None] = mapped_column(String(10))
    account_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    queue_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    resolution: Mapped[str | None] = mapped_column(Text)
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_response_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_breached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


class CaseCounter(TenantMixin, Base):
    """The last case number a tenant used (one row per tenant): incremented, row-locked, in each
    create's transaction, so numbers are sequential per tenant and a rolled-back create leaves
    no gap."""

    __tablename__ = "case_counters"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    last_number: Mapped[int] = mapped_column(Integer, nullable=False)


class Queue(TenantMixin, Base):
    __tablename__ = "queues"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)


class QueueMember(TenantMixin, Base):
    __tablename__ = "queue_members"
    __table_args__ = (
        UniqueConstraint("tenant_id", "queue_id", "user_id"),
        ForeignKeyConstraint(
            ["tenant_id", "queue_id"], ["queues.tenant_id", "queues.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
        Index(None, "tenant_id", "user_id"),
    )

    queue_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


class CaseAssignmentRule(TenantMixin, Base):
    """One rule of the tenant's ordered list: the first whose conditions all hold (an empty
    condition holds always) routes a new case to its queue."""

    __tablename__ = "case_assignment_rules"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "queue_id"], ["queues.tenant_id", "queues.id"], ondelete="CASCADE"
        ),
        Index(None, "tenant_id", "position"),
    )

    position: Mapped[int] = mapped_column(Integer, nullable=False)
    types: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    priorities: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    channels: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    queue_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    round_robin: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")


class SlaPolicy(TenantMixin, Base):
    """The targets for one priority, counted in business time in the tenant's time zone."""

    __tablename__ = "sla_policies"
    __table_args__ = (
        UniqueConstraint("tenant_id", "priority"),
        ForeignKeyConstraint(
            ["tenant_id", "escalation_queue_id"],
            ["queues.tenant_id", "queues.id"],
            ondelete="SET NULL (escalation_queue_id)",
        ),
    )

    priority: Mapped[str] = mapped_column(String(10), nullable=False)
    first_response_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    resolution_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    # {"mon": ["09:00", "17:00"], ...}: a weekday missing is a day off.
    business_hours: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    holidays: Mapped[list[date]] = mapped_column(ARRAY(Date), nullable=False, server_default="{}")
    escalation_queue_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # On breach: raise the priority one level (else only the queue moves, if one is named).
    escalate_priority: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
