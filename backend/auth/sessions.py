"""First-party sign-in (the Caravan apps): password, then MFA when the user has it or must
have it, then a device session with a rotating refresh token.

When a second factor is needed, sign-in answers 401 `mfa_required` with an `mfa_token` (a
single-use flow handle, 5 minutes, 5 tries). The app then calls `complete_mfa` with a TOTP or
recovery code; a tenant admin who must use MFA but has none enrols first with the same token
(`begin_enrollment`, then `complete_mfa` with the first code, which also returns recovery
codes).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from backend.auth import flows
from backend.auth.credentials import PasswordCheck, bad_credentials
from backend.auth.mfa import Enrollment, MfaService, invalid_sign_in_code
from backend.auth.origin import Origin
from backend.auth.refresh import (
    NewSession,
    RefreshRefused,
    RefreshReused,
    UserInactive,
    rotate,
    start_session,
)
from backend.auth.tokens import AccessTokens
from backend.context import Principal
from backend.db.base import table_of
from backend.db.session import Database
from backend.errors import Unauthenticated
from backend.history.events import EventType, record_event
from backend.tenants.models import User

MAX_DEVICE_NAME = 200
_users = table_of(User)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    recovery_codes: list[str] | None = field(default=None)


class MfaRequired(Unauthenticated):
    """The password was right; a second factor (or enrolling one) must follow."""

    def __init__(self, mfa_token: str, *, enroll: bool) -> None:
        super().__init__(
            "enrol an authenticator, then send its first code"
            if enroll
            else "send a code from your authenticator (or a recovery code)",
            code="mfa_required",
        )
        self.extra: dict[str, Any] = {
            "mfa_token": mfa_token,
            "mfa_enrollment_required": enroll,
            "expires_in": int(flows.FLOW_TTL.total_seconds()),
        }


def _invalid_mfa_token() -> Unauthenticated:
    return Unauthenticated("the MFA token is invalid or expired", code="invalid_mfa_token")


def _device_name(name: str | None) -> str | None:
    if not name:
        return None
    return "".join(ch for ch in name if ch.isprintable())[:MAX_DEVICE_NAME] or None


class SessionService:
    def __init__(
        self,
        db: Database,
        tokens: AccessTokens,
        refresh_ttl_seconds: int,
        passwords: PasswordCheck,
        mfa: MfaService,
    ) -> None:
        self.db = db
        self.tokens = tokens
        self.refresh_ttl = timedelta(seconds=refresh_ttl_seconds)
        self.passwords = passwords
        self.mfa = mfa

    async def sign_in(
        self,
        tenant_slug: str,
        email: str,
        password: str,
        origin: Origin | None = None,
        device_name: str | None = None,
    ) -> TokenPair:
        """Every credential failure is the same 401; MfaRequired when a factor must follow."""
        origin = origin or Origin()
        await self.tokens.keys.fresh()
        user = await self.passwords.by_slug(tenant_slug, email, password, origin)
        needed = await self.mfa.requirement(user.tenant_id, user.user_id)
        if needed != "none":
            async with self.db.tenant_transaction(user.tenant_id) as conn:
                handle = await flows.start(
                    conn,
                    user.tenant_id,
                    flows.MFA,
                    user.user_id,
                    data={"enroll": needed == "enroll", "device_name": _device_name(device_name)},
                    source_ip=origin.ip,
                )
                await record_event(
                    conn,
                    user.tenant_id,
                    EventType.MFA_CHALLENGED,
                    subject_user_id=user.user_id,
                    details={"enrollment_required": needed == "enroll"},
                    **origin.event_fields(),
                )
            raise MfaRequired(handle, enroll=needed == "enroll")
        return await self._start(user.tenant_id, user.user_id, ["pwd"], origin, device_name)

    async def begin_enrollment(self, mfa_token: str) -> Enrollment:
        flow = await flows.open_flow(self.db, mfa_token, flows.MFA)
        if flow is None or not flow.data.get("enroll"):
            raise _invalid_mfa_token()
        return await self.mfa.begin_enrollment_for(flow.tenant_id, flow.user_id)

    async def complete_mfa(
        self,
        mfa_token: str,
        *,
        code: str | None,
        recovery_code: str | None,
        origin: Origin | None = None,
    ) -> TokenPair:
        origin = origin or Origin()
        flow = await flows.open_flow(self.db, mfa_token, flows.MFA)
        if flow is None:
            raise _invalid_mfa_token()
        await self.tokens.keys.fresh()
        recovery_codes: list[str] | None = None
        try:
            if flow.data.get("enroll"):
                recovery_codes = await self._confirm(flow, code or "", origin)
                method = "otp"
            else:
                method = await self.mfa.verify(
                    flow.tenant_id,
                    flow.user_id,
                    code=code,
                    recovery_code=recovery_code,
                    origin=origin,
                )
        except Unauthenticated:
            await flows.count_failure(self.db, flow)
            raise
        async with self.db.tenant_transaction(flow.tenant_id) as conn:
            if not await flows.finish(conn, flow):
                raise _invalid_mfa_token()
        pair = await self._start(
            flow.tenant_id, flow.user_id, ["pwd", method], origin, flow.data.get("device_name")
        )
        if recovery_codes is not None:
            return TokenPair(
                pair.access_token,
                pair.refresh_token,
                pair.expires_in,
                recovery_codes=recovery_codes,
            )
        return pair

    async def _confirm(self, flow: flows.Flow, code: str, origin: Origin) -> list[str]:
        async def attempt() -> list[str] | None:
            async with self.db.tenant_transaction(flow.tenant_id) as conn:
                return await self.mfa.confirm_in(conn, flow.tenant_id, flow.user_id, code, origin)

        return await self.mfa.guarded(
            flow.tenant_id, flow.user_id, origin, attempt, invalid_sign_in_code
        )

    async def refresh(self, refresh_token: str, origin: Origin | None = None) -> TokenPair:
        invalid = Unauthenticated("the refresh token is invalid", code="invalid_refresh_token")
        if len(refresh_token) > 200:
            raise invalid
        await self.tokens.keys.fresh()
        try:
            rotated = await rotate(
                self.db, refresh_token, client_id=None, origin=origin or Origin()
            )
        except RefreshReused:
            raise Unauthenticated(
                "the refresh token was already used", code="refresh_token_reused"
            ) from None
        except RefreshRefused:
            raise invalid from None
        assert rotated.refresh_token
        principal = Principal(
            user_id=rotated.user_id, tenant_id=rotated.tenant_id, session_id=rotated.session_id
        )
        return TokenPair(
            access_token=self.tokens.issue(principal),
            refresh_token=rotated.refresh_token,
            expires_in=self.tokens.settings.access_ttl_seconds,
        )

    async def _start(
        self,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        amr: list[str],
        origin: Origin,
        device_name: str | None,
    ) -> TokenPair:
        async with self.db.tenant_transaction(tenant_id) as conn:
            # Deactivated between the password and the code? Then no session.
            active = await conn.execute(
                select(_users.c.id).where(
                    _users.c.id == user_id, _users.c.active.is_(True), _users.c.kind == "person"
                )
            )
            if active.first() is None:
                raise bad_credentials()
            try:
                session_id, refresh_token = await start_session(
                    conn,
                    tenant_id,
                    NewSession(
                        user_id=user_id,
                        client_id=None,
                        scope=None,
                        name=_device_name(device_name),
                        amr=amr,
                        auth_time=datetime.now(UTC),
                    ),
                    ttl=self.refresh_ttl,
                    origin=origin,
                )
            except UserInactive:
                raise bad_credentials() from None
            await record_event(
                conn,
                tenant_id,
                EventType.SIGN_IN,
                actor_user_id=user_id,
                subject_user_id=user_id,
                details={"amr": amr, "session_id": str(session_id)},
                **origin.event_fields(),
            )
        assert refresh_token is not None
        principal = Principal(user_id=user_id, tenant_id=tenant_id, session_id=session_id)
        return TokenPair(
            access_token=self.tokens.issue(principal),
            refresh_token=refresh_token,
            expires_in=self.tokens.settings.access_ttl_seconds,
        )
