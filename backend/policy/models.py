"""Roles, their rules and scopes, role assignments, and teams (all tenant data)."""

from __future__ import annotations

import uuid

from sqlalchemy import Boolean, ForeignKeyConstraint, Index, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, TenantMixin


def _fk(column: str, table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", column], [f"{table}.tenant_id", f"{table}.id"], ondelete="CASCADE"
    )


class Role(TenantMixin, Base):
    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(64), nullable=False)
    description: Mapped[str | None] = mapped_column(String(500))
    builtin: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")


class RoleRule(TenantMixin, Base):
    """One Casbin policy line: `p, role:<id>, <tenant>, object, action, effect`."""

    __tablename__ = "role_rules"
    __table_args__ = (
        UniqueConstraint("tenant_id", "role_id", "effect", "object", "action"),
        _fk("role_id", "roles"),
    )

    role_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    effect: Mapped[str] = mapped_column(String(8), nullable=False)  # allow | deny
    object: Mapped[str] = mapped_column(String(128), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)


class RoleScope(TenantMixin, Base):
    """How far a role reaches into an entity's records: own, team or tenant ("*": default)."""

    __tablename__ = "role_scopes"
    __table_args__ = (UniqueConstraint("tenant_id", "role_id", "entity"), _fk("role_id", "roles"))

    role_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    entity: Mapped[str] = mapped_column(String(64), nullable=False)
    scope: Mapped[str] = mapped_column(String(8), nullable=False)


class UserRole(TenantMixin, Base):
    """A Casbin grouping line: `g, user:<id>, role:<id>, <tenant>`."""

    __tablename__ = "user_roles"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id", "role_id"),
        _fk("user_id", "users"),
        _fk("role_id", "roles"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    role_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


class Team(TenantMixin, Base):
    __tablename__ = "teams"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        # Deleting a parent team lifts its children to the top, keeping them.
        ForeignKeyConstraint(
            ["tenant_id", "parent_team_id"],
            ["teams.tenant_id", "teams.id"],
            ondelete="SET NULL (parent_team_id)",
        ),
        Index(None, "tenant_id", "parent_team_id"),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # Business units: the team scope of a parent team's members covers its child teams too.
    parent_team_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class TeamMember(TenantMixin, Base):
    __tablename__ = "team_members"
    __table_args__ = (
        UniqueConstraint("tenant_id", "team_id", "user_id"),
        Index(None, "tenant_id", "user_id"),
        _fk("team_id", "teams"),
        _fk("user_id", "users"),
    )

    team_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
