"""TOTP multi-factor authentication: enrolment, verification, recovery codes, removal.

A user enrols by asking for a secret (shown once as base32 and as an otpauth:// URI), then
proving the authenticator works with one code: only then is the factor on, and ten single-use
recovery codes are issued (shown once; only SHA-256 hashes are kept). The seed is sealed with
the secret key. Codes are accepted once (the last accepted time step is stored and advanced
with a conditional update, so a replay - even to another server process - fails).

Every wrong code counts toward the per-account and per-source backoff (backend/auth/throttle.py)
and is recorded, in its own transaction, as a security event.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth import totp
from backend.auth.admins import is_tenant_admin, require_first_party
from backend.auth.models import RecoveryCode, TotpFactor
from backend.auth.origin import Origin
from backend.auth.secretbox import SecretBox
from backend.auth.throttle import Throttle, TooManyAttempts, mfa_keys
from backend.context import RequestContext
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import Database
from backend.errors import CaravanError, Conflict, NotFound, Unauthenticated, ValidationFailed
from backend.history.events import EventType, record_event, record_event_now
from backend.policy.admin import require_admin
from backend.tenants.models import Tenant, User

_totp = table_of(TotpFactor)
_recovery = table_of(RecoveryCode)
_tenants = table_of(Tenant)
_users = table_of(User)
_PURPOSE = "totp-seed"
ISSUER_NAME = "Caravan CRM"
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
T = TypeVar("T")
Requirement = Literal["none", "verify", "enroll"]


@dataclass(frozen=True)
class Enrollment:
    secret: str
    provisioning_uri: str


@dataclass(frozen=True)
class MfaStatus:
    totp_enabled: bool
    enrollment_pending: bool
    recovery_codes_left: int
    required: bool


def invalid_sign_in_code() -> CaravanError:
    return Unauthenticated("the code is wrong or was already used", code="invalid_mfa_code")


def invalid_code() -> CaravanError:
    return ValidationFailed.one("code", "invalid_code", "the code is wrong or was already used")


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))  # 80 bits
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def _recovery_hash(user_id: uuid.UUID, code: str) -> str:
    normalized = code.strip().upper().replace("-", "").replace(" ", "")
    return hashlib.sha256(f"{user_id.hex}:{normalized}".encode()).hexdigest()


class MfaService:
    def __init__(self, db: Database, box: SecretBox, throttle: Throttle) -> None:
        self.db = db
        self.box = box
        self.throttle = throttle

    # -- what sign-in needs --------------------------------------------------------------------
    async def requirement(self, tenant_id: uuid.UUID, user_id: uuid.UUID) -> Requirement:
        async with self.db.tenant_transaction(tenant_id) as conn:
            enabled = await self._enabled(conn, user_id)
            required = (
                await conn.execute(
                    select(_tenants.c.require_admin_mfa).where(_tenants.c.id == tenant_id)
                )
            ).scalar_one_or_none()
        if enabled:
            return "verify"
        if required and await is_tenant_admin(self.db, tenant_id, user_id):
            return "enroll"
        return "none"

    async def status(self, ctx: RequestContext) -> MfaStatus:
        require_first_party(ctx)
        async with ctx.session.transaction() as conn:
            factor = (
                await conn.execute(
                    select(_totp.c.confirmed_at).where(_totp.c.user_id == ctx.user_id)
                )
            ).first()
            left = (
                await conn.execute(
                    select(func.count()).where(
                        _recovery.c.user_id == ctx.user_id, _recovery.c.used_at.is_(None)
                    )
                )
            ).scalar_one()
            required = (
                await conn.execute(
                    select(_tenants.c.require_admin_mfa).where(_tenants.c.id == ctx.tenant_id)
                )
            ).scalar_one()
        return MfaStatus(
            totp_enabled=factor is not None and factor.confirmed_at is not None,
            enrollment_pending=factor is not None and factor.confirmed_at is None,
            recovery_codes_left=int(left),
            required=bool(required) and await is_tenant_admin(self.db, ctx.tenant_id, ctx.user_id),
        )

    # -- enrolment -------------------------------------------------------------------------
    async def begin_enrollment(self, ctx: RequestContext) -> Enrollment:
        require_first_party(ctx)
        async with ctx.session.transaction() as conn:
            return await self._begin(conn, ctx.user_id)

    async def begin_enrollment_for(self, tenant_id: uuid.UUID, user_id: uuid.UUID) -> Enrollment:
        """For a sign-in that must enrol before it can finish (an MFA challenge)."""
        async with self.db.tenant_transaction(tenant_id) as conn:
            return await self._begin(conn, user_id)

    async def confirm_enrollment(self, ctx: RequestContext, code: str, origin: Origin) -> list[str]:
        require_first_party(ctx)

        async def attempt() -> list[str] | None:
            async with ctx.session.transaction() as conn:
                return await self.confirm_in(conn, ctx.tenant_id, ctx.user_id, code, origin)

        return await self.guarded(ctx.tenant_id, ctx.user_id, origin, attempt, invalid_code)

    async def confirm_in(
        self,
        conn: AsyncConnection,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        code: str,
        origin: Origin,
    ) -> list[str] | None:
        """Turn a pending factor on with a first code; its recovery codes, or None."""
        row = (
            await conn.execute(
                select(_totp)
                .where(_totp.c.user_id == user_id, _totp.c.confirmed_at.is_(None))
                .with_for_update()
            )
        ).first()
        if row is None:
            return None
        step = totp.matching_step(self._seed(row.secret_sealed), code)
        if step is None:
            return None
        await conn.execute(
            update(_totp)
            .where(_totp.c.tenant_id == tenant_id, _totp.c.id == row.id)
            .values(confirmed_at=func.now(), last_step=step, updated_at=func.now())
        )
        codes = await self._replace_recovery_codes(conn, tenant_id, user_id)
        await record_event(
            conn,
            tenant_id,
            EventType.MFA_ENROLLED,
            actor_user_id=user_id,
            subject_user_id=user_id,
            details={"factor": "totp"},
            **origin.event_fields(),
        )
        return codes

    # -- verification -------------------------------------------------------------------------
    async def verify(
        self,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        *,
        code: str | None,
        recovery_code: str | None,
        origin: Origin,
        error: Callable[[], CaravanError] = invalid_sign_in_code,
    ) -> str:
        """Check a TOTP code or a recovery code (spending it); the amr value it proves."""

        async def attempt() -> str | None:
            async with self.db.tenant_transaction(tenant_id) as conn:
                return await self._check(conn, tenant_id, user_id, code, recovery_code)

        return await self.guarded(tenant_id, user_id, origin, attempt, error)

    async def _check(
        self,
        conn: AsyncConnection,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        code: str | None,
        recovery_code: str | None,
    ) -> str | None:
        if code:
            return "otp" if await self._use_totp(conn, user_id, code) else None
        if recovery_code:
            used = await conn.execute(
                update(_recovery)
                .where(
                    _recovery.c.user_id == user_id,
                    _recovery.c.code_hash == _recovery_hash(user_id, recovery_code),
                    _recovery.c.used_at.is_(None),
                )
                .values(used_at=func.now())
            )
            return "recovery" if used.rowcount else None
        return None

    async def _use_totp(self, conn: AsyncConnection, user_id: uuid.UUID, code: str) -> bool:
        row = (
            await conn.execute(
                select(_totp).where(_totp.c.user_id == user_id, _totp.c.confirmed_at.is_not(None))
            )
        ).first()
        if row is None:
            return False
        last = row.last_step if row.last_step is not None else -1
        step = totp.matching_step(self._seed(row.secret_sealed), code, after_step=last)
        if step is None:
            return False
        # Advance the last step only if nobody (another request, another process) got there first.
        advanced = await conn.execute(
            update(_totp)
            .where(
                _totp.c.id == row.id,
                or_(_totp.c.last_step.is_(None), _totp.c.last_step < step),
            )
            .values(last_step=step)
        )
        return bool(advanced.rowcount)

    # -- removal and new recovery codes -----------------------------------------------------
    async def remove(
        self, ctx: RequestContext, *, code: str | None, recovery_code: str | None, origin: Origin
    ) -> None:
        require_first_party(ctx)

        async def attempt() -> bool | None:
            async with ctx.session.transaction() as conn:
                if not await self._enabled(conn, ctx.user_id):
                    raise NotFound("no authenticator is set up", code="mfa_not_enrolled")
                if await self._check(conn, ctx.tenant_id, ctx.user_id, code, recovery_code) is None:
                    return None
                await conn.execute(delete(_totp).where(_totp.c.user_id == ctx.user_id))
                await conn.execute(delete(_recovery).where(_recovery.c.user_id == ctx.user_id))
                await record_event(
                    conn,
                    ctx.tenant_id,
                    EventType.MFA_REMOVED,
                    actor_user_id=ctx.user_id,
                    subject_user_id=ctx.user_id,
                    details={"factor": "totp"},
                    **origin.event_fields(),
                )
                return True

        await self.guarded(ctx.tenant_id, ctx.user_id, origin, attempt, invalid_code)

    async def regenerate_recovery_codes(
        self, ctx: RequestContext, code: str, origin: Origin
    ) -> list[str]:
        require_first_party(ctx)

        async def attempt() -> list[str] | None:
            async with ctx.session.transaction() as conn:
                if not await self._use_totp(conn, ctx.user_id, code):
                    return None
                codes = await self._replace_recovery_codes(conn, ctx.tenant_id, ctx.user_id)
                await record_event(
                    conn,
                    ctx.tenant_id,
                    EventType.MFA_RECOVERY_CODES_ISSUED,
                    actor_user_id=ctx.user_id,
                    subject_user_id=ctx.user_id,
                    **origin.event_fields(),
                )
                return codes

        return await self.guarded(ctx.tenant_id, ctx.user_id, origin, attempt, invalid_code)

    # -- the tenant setting ------------------------------------------------------------------
    async def admin_mfa_required(self, ctx: RequestContext) -> bool:
        await require_admin(ctx)
        async with ctx.session.transaction() as conn:
            value = (
                await conn.execute(
                    select(_tenants.c.require_admin_mfa).where(_tenants.c.id == ctx.tenant_id)
                )
            ).scalar_one()
        return bool(value)

    async def set_admin_mfa_required(
        self, ctx: RequestContext, required: bool, origin: Origin
    ) -> bool:
        await require_admin(ctx)
        async with ctx.session.transaction() as conn:
            await conn.execute(
                update(_tenants)
                .where(_tenants.c.id == ctx.tenant_id)
                .values(require_admin_mfa=required, updated_at=func.now())
            )
            await record_event(
                conn,
                ctx.tenant_id,
                EventType.TENANT_SECURITY_CHANGED,
                actor_user_id=ctx.user_id,
                actor_client_id=ctx.principal.client_id,
                details={"require_admin_mfa": required},
                request_id=ctx.request_id,
                channel=ctx.channel,
                source_ip=origin.ip,
            )
        return required

    # -- helpers ---------------------------------------------------------------------------
    async def guarded(
        self,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        origin: Origin,
        attempt: Callable[[], Awaitable[T | None]],
        error: Callable[[], CaravanError],
    ) -> T:
        keys = mfa_keys(f"{tenant_id.hex}:{user_id.hex}", origin.ip)
        try:
            await self.throttle.check(keys)
        except TooManyAttempts:
            await record_event_now(
                self.db,
                tenant_id,
                EventType.SIGN_IN_THROTTLED,
                outcome="denied",
                subject_user_id=user_id,
                details={"step": "mfa"},
                **origin.event_fields(),
            )
            raise
        result = await attempt()
        if result is None:
            await self.throttle.failed(keys)
            await record_event_now(
                self.db,
                tenant_id,
                EventType.MFA_FAILED,
                outcome="failure",
                subject_user_id=user_id,
                **origin.event_fields(),
            )
            raise error()
        await self.throttle.succeeded(keys)
        return result

    async def _enabled(self, conn: AsyncConnection, user_id: uuid.UUID) -> bool:
        row = (
            await conn.execute(
                select(_totp.c.id).where(
                    _totp.c.user_id == user_id, _totp.c.confirmed_at.is_not(None)
                )
            )
        ).first()
        return row is not None

    async def _begin(self, conn: AsyncConnection, user_id: uuid.UUID) -> Enrollment:
        user = (
            await conn.execute(
                select(_users.c.tenant_id, _users.c.email).where(_users.c.id == user_id)
            )
        ).first()
        if user is None:
            raise NotFound("user not found")
        if await self._enabled(conn, user_id):
            raise Conflict(
                "an authenticator is already set up: remove it first", code="mfa_already_enrolled"
            )
        seed = totp.new_secret()
        await conn.execute(delete(_totp).where(_totp.c.user_id == user_id))
        await conn.execute(
            insert(_totp).values(
                tenant_id=user.tenant_id,
                id=uuid7(),
                user_id=user_id,
                secret_sealed=self.box.seal(seed, purpose=_PURPOSE),
            )
        )
        return Enrollment(
            secret=totp.base32(seed),
            provisioning_uri=totp.provisioning_uri(seed, account=user.email, issuer=ISSUER_NAME),
        )

    async def _replace_recovery_codes(
        self, conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID
    ) -> list[str]:
        await conn.execute(delete(_recovery).where(_recovery.c.user_id == user_id))
        codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        await conn.execute(
            insert(_recovery),
            [
                {
                    "tenant_id": tenant_id,
                    "id": uuid7(),
                    "user_id": user_id,
                    "code_hash": _recovery_hash(user_id, c),
                }
                for c in codes
            ],
        )
        return codes

    def _seed(self, sealed: str) -> bytes:
        return self.box.open(sealed, purpose=_PURPOSE)
