"""Tenant and user administration (the CLI's `tenant create` / `user create`)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from asyncpg.exceptions import UniqueViolationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, hash_password
from backend.crm.pipelines.service import seed_default_pipeline
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import Database
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.policy.assignments import assign_roles
from backend.policy.builtin import DEFAULT_ROLE, TENANT_ADMIN, seed_builtin_roles
from backend.tenants.lookup import tenant_id_for_slug
from backend.tenants.models import Tenant, User

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class CreatedTenant:
    tenant_id: uuid.UUID
    slug: str
    admin_user_id: uuid.UUID


def _check_email(email: str) -> str:
    try:
        return validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise ValidationFailed.one("email", "invalid_email", "must be an email address") from None


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValidationFailed.one(
            "password",
            "weak_password",
            f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
        )


async def _insert_user(
    conn: AsyncConnection, tenant_id: uuid.UUID, email: str, password: str, name: str | None
) -> uuid.UUID:
    user_id = uuid7()
    try:
        await conn.execute(
            insert(table_of(User)).values(
                tenant_id=tenant_id,
                id=user_id,
                email=email,
                display_name=name,
                password_hash=await hash_password(password),
            )
        )
    except IntegrityError as exc:
        if isinstance(exc.orig.__cause__, UniqueViolationError):  # type: ignore[union-attr]
            raise Conflict(
                "a user with this email exists", field="email", code="duplicate"
            ) from None
        raise
    return user_id


async def create_tenant(
    db: Database,
    *,
    name: str,
    slug: str,
    admin_email: str,
    admin_password: str,
    require_admin_mfa: bool = True,
) -> CreatedTenant:
    """A tenant and its first admin. Admins must use MFA unless `require_admin_mfa` is False
    (development and test tenants: `caravan tenant create --no-admin-mfa`)."""
    if not _SLUG.match(slug):
        raise ValidationFailed.one(
            "slug", "invalid_slug", "lower-case letters, digits and '-', at most 63"
        )
    if not name.strip() or len(name) > 200:
        raise ValidationFailed.one("name", "invalid_name", "1 to 200 characters")
    email = _check_email(admin_email)
    _check_password(admin_password)
    tenant_id = uuid7()
    async with db.tenant_transaction(tenant_id) as conn:
        try:
            await conn.execute(
                insert(table_of(Tenant)).values(
                    id=tenant_id,
                    name=name.strip(),
                    slug=slug,
                    require_admin_mfa=require_admin_mfa,
                )
            )
        except IntegrityError:
            raise Conflict(
                "a tenant with this slug exists", field="slug", code="duplicate"
            ) from None
        admin_id = await _insert_user(conn, tenant_id, email, admin_password, "Administrator")
        await seed_builtin_roles(conn, tenant_id)
        await seed_default_pipeline(conn, tenant_id)
        await assign_roles(conn, tenant_id, admin_id, [TENANT_ADMIN])
    return CreatedTenant(tenant_id=tenant_id, slug=slug, admin_user_id=admin_id)


async def create_user(
    db: Database,
    *,
    tenant_slug: str,
    email: str,
    password: str,
    name: str | None = None,
    roles: Sequence[str] = (),
) -> uuid.UUID:
    """A user with the named roles (the salesperson role when none are named)."""
    tenant_id = await tenant_id_for_slug(db, tenant_slug)
    if tenant_id is None:
        raise NotFound(f"no tenant {tenant_slug!r}", field="tenant")
    address = _check_email(email)
    _check_password(password)
    async with db.tenant_transaction(tenant_id) as conn:
        user_id = await _insert_user(conn, tenant_id, address, password, name)
        await assign_roles(conn, tenant_id, user_id, list(roles) if roles else [DEFAULT_ROLE])
        return user_id
