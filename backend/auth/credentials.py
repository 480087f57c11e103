"""Checking a password: the one place both sign-in doors (/auth/sign-in and the /oauth/authorize
page) go through.

Every failure - unknown tenant, unknown email, wrong password, a deactivated user, a service
user (apps never sign in interactively) - is the same 401, after the same argon2 work. The
backoff is checked first (429 + Retry-After), every failure counts toward it, and every outcome
is recorded as a security event when the tenant exists.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from backend.auth.origin import Origin
from backend.auth.passwords import MAX_PASSWORD_LENGTH, verify_password
from backend.auth.throttle import Throttle, TooManyAttempts, sign_in_keys
from backend.db.base import table_of
from backend.db.session import Database
from backend.errors import Unauthenticated
from backend.history.events import EventType, record_event_now
from backend.tenants.lookup import tenant_id_for_slug
from backend.tenants.models import User

_users = table_of(User)
BAD_CREDENTIALS = "the tenant, email or password is wrong"


@dataclass(frozen=True)
class SignedInUser:
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    email: str
    display_name: str | None


def bad_credentials() -> Unauthenticated:
    return Unauthenticated(BAD_CREDENTIALS, code="invalid_credentials")


class PasswordCheck:
    def __init__(self, db: Database, throttle: Throttle) -> None:
        self.db = db
        self.throttle = throttle

    async def by_slug(
        self, tenant_slug: str, email: str, password: str, origin: Origin
    ) -> SignedInUser:
        tenant_id = await tenant_id_for_slug(self.db, tenant_slug)
        # One count per account whichever door is used (a slug of no tenant counts on its own).
        label = tenant_id.hex if tenant_id is not None else f"slug:{tenant_slug.strip().lower()}"
        return await self._check(tenant_id, label, email, password, origin)

    async def in_tenant(
        self, tenant_id: uuid.UUID, email: str, password: str, origin: Origin
    ) -> SignedInUser:
        return await self._check(tenant_id, tenant_id.hex, email, password, origin)

    async def _check(
        self,
        tenant_id: uuid.UUID | None,
        tenant_label: str,
        email: str,
        password: str,
        origin: Origin,
    ) -> SignedInUser:
        keys = sign_in_keys(tenant_label, email, origin.ip)
        address = email.strip().lower()
        try:
            await self.throttle.check(keys)
        except TooManyAttempts:
            if tenant_id is not None:
                await record_event_now(
                    self.db,
                    tenant_id,
                    EventType.SIGN_IN_THROTTLED,
                    outcome="denied",
                    details={"email": address[:254]},
                    **origin.event_fields(),
                )
            raise
        row = None
        if tenant_id is not None and len(address) <= 254:
            async with self.db.tenant_transaction(tenant_id) as conn:
                stmt = select(
                    _users.c.id,
                    _users.c.email,
                    _users.c.display_name,
                    _users.c.password_hash,
                    _users.c.active,
                    _users.c.kind,
                ).where(_users.c.tenant_id == tenant_id, _users.c.email == address)
                row = (await conn.execute(stmt)).first()
        password_ok = len(password) <= MAX_PASSWORD_LENGTH and await verify_password(
            row.password_hash if row is not None else None, password
        )
        if (
            row is None
            or tenant_id is None
            or not password_ok
            or not row.active
            or row.kind != "person"
        ):
            await self.throttle.failed(keys)
            if tenant_id is not None:
                await record_event_now(
                    self.db,
                    tenant_id,
                    EventType.SIGN_IN_FAILED,
                    outcome="failure",
                    subject_user_id=row.id if row is not None else None,
                    details={"email": address[:254]},
                    **origin.event_fields(),
                )
            raise bad_credentials()
        await self.throttle.succeeded(keys)
        return SignedInUser(tenant_id, row.id, row.email, row.display_name)
