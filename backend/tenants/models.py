"""Tenants (the isolation unit) and their users."""

from __future__ import annotations

import uuid

from sqlalchemy import Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, TenantMixin, TimestampMixin


class Tenant(TimestampMixin, Base):
    """The isolation unit. Not itself a tenant table: its RLS policy compares `id`."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    slug: Mapped[str] = mapped_column(String(63), nullable=False, unique=True)
    # Tenant admins must pass a second factor to sign in (on for new tenants).
    require_admin_mfa: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    # Bumped by every change to roles, rules or role assignments: each server process compares
    # it (read when a transaction begins) with the policy it has cached for the tenant.
    policy_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    # Days that sealed change history / security events are kept; NULL: forever (`caravan audit
    # prune` deletes older sealed rows, summarised by a signed checkpoint).
    history_retention_days: Mapped[int | None] = mapped_column(Integer)
    audit_retention_days: Mapped[int | None] = mapped_column(Integer)
    # ISO 3166 region for phone numbers written without a country code (caller lookup).
    default_region: Mapped[str] = mapped_column(String(2), nullable=False, server_default="US")
    # IANA zone the tenant's business hours (SLA policies) are read in.
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False, server_default="UTC")


class User(TenantMixin, Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)

    # Stored lower-cased, so the unique key is case-insensitive.
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(200))
    # NULL for service users (the identity an OAuth client-credentials app acts as).
    password_hash: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    # "person" signs in; "service" never does (no password, no interactive sign-in).
    kind: Mapped[str] = mapped_column(String(16), nullable=False, server_default="person")
    # IANA name (e.g. Europe/Berlin) the agenda's "today" is read in; NULL: the tenant default.
    time_zone: Mapped[str | None] = mapped_column(String(64))
