"""GraphQL for sign-in security: OAuth app registration (admins), devices, MFA and the tenant's
MFA rule. Resolve -> call a service in backend/auth -> shape. No access rules here."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.types import Info

from backend.api.gql.context import GraphQLContext
from backend.api.gql.payloads import FieldError, payload_call
from backend.api.origin import request_origin
from backend.auth import clients, devices
from backend.auth.clients import Client, ClientInput
from backend.auth.devices import Device
from backend.auth.origin import Origin
from backend.context import RequestContext
from backend.errors import NotFound

GqlInfo = Info[GraphQLContext, None]


def _ctx(info: GqlInfo) -> tuple[RequestContext, Origin]:
    ctx = info.context.require()
    return ctx, request_origin(info.context.request, channel="graphql", ctx=ctx)


def _id(value: strawberry.ID) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound("not found") from None


@strawberry.type
class OAuthApp:
    id: strawberry.ID
    client_id: str
    name: str
    client_type: str
    redirect_uris: list[str]
    grant_types: list[str]
    allowed_scopes: list[str]
    role: str | None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: Client) -> OAuthApp:
        return cls(
            id=strawberry.ID(str(c.id)),
            client_id=c.client_id,
            name=c.name,
            client_type=c.client_type,
            redirect_uris=c.redirect_uris,
            grant_types=c.grant_types,
            allowed_scopes=c.allowed_scopes,
            role=c.role,
            active=c.active,
            version=c.version,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


@strawberry.type
class OAuthAppPayload:
    app: OAuthApp | None
    client_secret: str | None = strawberry.field(
        default=None, description="A confidential app's secret: shown only in this answer."
    )
    errors: list[FieldError]


@strawberry.type
class DeviceSession:
    id: strawberry.ID
    name: str | None
    client_id: str | None
    client_name: str | None
    created_at: datetime
    last_used_at: datetime
    created_ip: str | None
    last_ip: str | None
    user_agent: str | None
    expires_at: datetime
    current: bool

    @classmethod
    def of(cls, d: Device) -> DeviceSession:
        return cls(
            id=strawberry.ID(str(d.id)),
            name=d.name,
            client_id=d.client_id,
            client_name=d.client_name,
            created_at=d.created_at,
            last_used_at=d.last_used_at,
            created_ip=d.created_ip,
            last_ip=d.last_ip,
            user_agent=d.user_agent,
            expires_at=d.expires_at,
            current=d.current,
        )


@strawberry.type
class MfaStatus:
    totp_enabled: bool
    enrollment_pending: bool
    recovery_codes_left: int
    required: bool


@strawberry.type
class TotpEnrollmentPayload:
    secret: str | None
    provisioning_uri: str | None
    errors: list[FieldError]


@strawberry.type
class RecoveryCodesPayload:
    recovery_codes: list[str] | None
    errors: list[FieldError]


@strawberry.type
class TotpRemovedPayload:
    ok: bool
    errors: list[FieldError]


@strawberry.type
class OAuthAppDeletedPayload:
    deleted_id: strawberry.ID | None
    errors: list[FieldError]


@strawberry.type
class SessionsRevokedPayload:
    revoked: int
    errors: list[FieldError]


@strawberry.type
class UserActivePayload:
    user_id: strawberry.ID
    active: bool | None
    sessions_revoked: int
    errors: list[FieldError]


@strawberry.type
class TenantSecurity:
    require_admin_mfa: bool


@strawberry.input
class CreateOAuthAppInput:
    name: str
    client_type: str
    redirect_uris: list[str] = strawberry.field(default_factory=list)
    grant_types: list[str] = strawberry.field(default_factory=lambda: ["authorization_code"])
    allowed_scopes: list[str] = strawberry.field(default_factory=list)
    role: str | None = None


@strawberry.input
class UpdateOAuthAppInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    redirect_uris: list[str] | None = strawberry.UNSET
    grant_types: list[str] | None = strawberry.UNSET
    allowed_scopes: list[str] | None = strawberry.UNSET
    role: str | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET


@strawberry.input
class OAuthAppIdInput:
    id: strawberry.ID


@strawberry.input
class SessionIdInput:
    id: strawberry.ID


@strawberry.input
class UserSessionsInput:
    user_id: strawberry.ID


@strawberry.input
class MfaCodeInput:
    code: str


@strawberry.input
class RemoveTotpInput:
    code: str | None = None
    recovery_code: str | None = None


@strawberry.input
class TenantSecurityInput:
    require_admin_mfa: bool


@strawberry.type
class AuthAdminQuery:
    @strawberry.field(description="The tenant's registered OAuth apps (admins).")  # type: ignore[untyped-decorator]
    async def oauth_apps(self, info: GqlInfo) -> list[OAuthApp]:
        ctx, _ = _ctx(info)
        return [OAuthApp.of(c) for c in await clients.list_clients(ctx)]

    @strawberry.field(description="One OAuth app (admins).")  # type: ignore[untyped-decorator]
    async def oauth_app(self, info: GqlInfo, id: strawberry.ID) -> OAuthApp | None:
        ctx, _ = _ctx(info)
        try:
            return OAuthApp.of(await clients.get_client(ctx, _id(id)))
        except NotFound:
            return None

    @strawberry.field(description="My signed-in devices and authorized apps.")  # type: ignore[untyped-decorator]
    async def my_sessions(self, info: GqlInfo) -> list[DeviceSession]:
        ctx, _ = _ctx(info)
        return [DeviceSession.of(d) for d in await devices.my_devices(ctx)]

    @strawberry.field(description="A user's devices (admins).")  # type: ignore[untyped-decorator]
    async def user_sessions(self, info: GqlInfo, user_id: strawberry.ID) -> list[DeviceSession]:
        ctx, _ = _ctx(info)
        return [DeviceSession.of(d) for d in await devices.user_devices(ctx, _id(user_id))]

    @strawberry.field(description="My two-step verification.")  # type: ignore[untyped-decorator]
    async def my_mfa(self, info: GqlInfo) -> MfaStatus:
        ctx, _ = _ctx(info)
        status = await info.context.services.mfa.status(ctx)
        return MfaStatus(
            totp_enabled=status.totp_enabled,
            enrollment_pending=status.enrollment_pending,
            recovery_codes_left=status.recovery_codes_left,
            required=status.required,
        )

    @strawberry.field(description="The tenant's sign-in rules (admins).")  # type: ignore[untyped-decorator]
    async def tenant_security(self, info: GqlInfo) -> TenantSecurity:
        ctx, _ = _ctx(info)
        return TenantSecurity(
            require_admin_mfa=await info.context.services.mfa.admin_mfa_required(ctx)
        )


@strawberry.type
class AuthAdminMutation:
    @strawberry.mutation(description="Register an OAuth app (admins).")  # type: ignore[untyped-decorator]
    async def create_oauth_app(self, info: GqlInfo, input: CreateOAuthAppInput) -> OAuthAppPayload:
        ctx, origin = _ctx(info)
        spec = ClientInput(
            name=input.name,
            client_type=input.client_type,
            redirect_uris=list(input.redirect_uris),
            grant_types=list(input.grant_types),
            allowed_scopes=list(input.allowed_scopes),
            role=input.role,
        )
        created, errors = await payload_call(info, lambda: clients.create_client(ctx, spec, origin))
        if created is None:
            return OAuthAppPayload(app=None, errors=errors)
        return OAuthAppPayload(
            app=OAuthApp.of(created.client), client_secret=created.client_secret, errors=[]
        )

    @strawberry.mutation(description="Change an OAuth app (admins).")  # type: ignore[untyped-decorator]
    async def update_oauth_app(self, info: GqlInfo, input: UpdateOAuthAppInput) -> OAuthAppPayload:
        ctx, origin = _ctx(info)
        changes = {
            name: getattr(input, name)
            for name in ("name", "redirect_uris", "grant_types", "allowed_scopes", "role", "active")
            if getattr(input, name) is not strawberry.UNSET
        }
        for name in ("name", "redirect_uris", "grant_types", "allowed_scopes", "active"):
            if name in changes and changes[name] is None:
                del changes[name]  # null means "leave as it is" for non-nullable settings
        client, errors = await payload_call(
            info, lambda: clients.update_client(ctx, _id(input.id), changes, origin)
        )
        return OAuthAppPayload(app=OAuthApp.of(client) if client else None, errors=errors)

    @strawberry.mutation(description="A new secret for a confidential OAuth app (admins).")  # type: ignore[untyped-decorator]
    async def rotate_oauth_app_secret(
        self, info: GqlInfo, input: OAuthAppIdInput
    ) -> OAuthAppPayload:
        ctx, origin = _ctx(info)
        rotated, errors = await payload_call(
            info, lambda: clients.rotate_secret(ctx, _id(input.id), origin)
        )
        if rotated is None:
            return OAuthAppPayload(app=None, errors=errors)
        return OAuthAppPayload(
            app=OAuthApp.of(rotated.client), client_secret=rotated.client_secret, errors=[]
        )

    @strawberry.mutation(description="Delete an OAuth app and end its sessions (admins).")  # type: ignore[untyped-decorator]
    async def delete_oauth_app(
        self, info: GqlInfo, input: OAuthAppIdInput
    ) -> OAuthAppDeletedPayload:
        ctx, origin = _ctx(info)
        _, errors = await payload_call(
            info, lambda: clients.delete_client(ctx, _id(input.id), origin)
        )
        return OAuthAppDeletedPayload(deleted_id=None if errors else input.id, errors=errors)

    @strawberry.mutation(description="Sign one of my devices out.")  # type: ignore[untyped-decorator]
    async def revoke_session(self, info: GqlInfo, input: SessionIdInput) -> SessionsRevokedPayload:
        ctx, origin = _ctx(info)
        await devices.revoke_my_device(ctx, _id(input.id), origin)
        return SessionsRevokedPayload(revoked=1, errors=[])

    @strawberry.mutation(description="Revoke every session of a user (admins).")  # type: ignore[untyped-decorator]
    async def revoke_user_sessions(
        self, info: GqlInfo, input: UserSessionsInput
    ) -> SessionsRevokedPayload:
        ctx, origin = _ctx(info)
        count = await devices.revoke_user_devices(ctx, _id(input.user_id), origin)
        return SessionsRevokedPayload(revoked=count, errors=[])

    @strawberry.mutation(description="Deactivate a user and revoke all their sessions (admins).")  # type: ignore[untyped-decorator]
    async def deactivate_user(self, info: GqlInfo, input: UserSessionsInput) -> UserActivePayload:
        ctx, origin = _ctx(info)
        count, errors = await payload_call(
            info, lambda: devices.set_user_active(ctx, _id(input.user_id), False, origin)
        )
        return UserActivePayload(
            user_id=input.user_id,
            active=None if errors else False,
            sessions_revoked=count or 0,
            errors=errors,
        )

    @strawberry.mutation(description="Reactivate a user (admins).")  # type: ignore[untyped-decorator]
    async def activate_user(self, info: GqlInfo, input: UserSessionsInput) -> UserActivePayload:
        ctx, origin = _ctx(info)
        await devices.set_user_active(ctx, _id(input.user_id), True, origin)
        return UserActivePayload(user_id=input.user_id, active=True, sessions_revoked=0, errors=[])

    @strawberry.mutation(description="Start setting up an authenticator (TOTP).")  # type: ignore[untyped-decorator]
    async def start_totp_enrollment(self, info: GqlInfo) -> TotpEnrollmentPayload:
        ctx, _ = _ctx(info)
        enrollment, errors = await payload_call(
            info, lambda: info.context.services.mfa.begin_enrollment(ctx)
        )
        return TotpEnrollmentPayload(
            secret=enrollment.secret if enrollment else None,
            provisioning_uri=enrollment.provisioning_uri if enrollment else None,
            errors=errors,
        )

    @strawberry.mutation(description="Turn the authenticator on with its first code.")  # type: ignore[untyped-decorator]
    async def confirm_totp_enrollment(
        self, info: GqlInfo, input: MfaCodeInput
    ) -> RecoveryCodesPayload:
        ctx, origin = _ctx(info)
        codes, errors = await payload_call(
            info, lambda: info.context.services.mfa.confirm_enrollment(ctx, input.code, origin)
        )
        return RecoveryCodesPayload(recovery_codes=codes, errors=errors)

    @strawberry.mutation(description="Remove my authenticator (with a code or a recovery code).")  # type: ignore[untyped-decorator]
    async def remove_totp(self, info: GqlInfo, input: RemoveTotpInput) -> TotpRemovedPayload:
        ctx, origin = _ctx(info)
        _, errors = await payload_call(
            info,
            lambda: info.context.services.mfa.remove(
                ctx, code=input.code, recovery_code=input.recovery_code, origin=origin
            ),
        )
        return TotpRemovedPayload(ok=not errors, errors=errors)

    @strawberry.mutation(description="New recovery codes (the old ones stop working).")  # type: ignore[untyped-decorator]
    async def regenerate_recovery_codes(
        self, info: GqlInfo, input: MfaCodeInput
    ) -> RecoveryCodesPayload:
        ctx, origin = _ctx(info)
        codes, errors = await payload_call(
            info,
            lambda: info.context.services.mfa.regenerate_recovery_codes(ctx, input.code, origin),
        )
        return RecoveryCodesPayload(recovery_codes=codes, errors=errors)

    @strawberry.mutation(description="Change the tenant's sign-in rules (admins).")  # type: ignore[untyped-decorator]
    async def update_tenant_security(
        self, info: GqlInfo, input: TenantSecurityInput
    ) -> TenantSecurity:
        ctx, origin = _ctx(info)
        value = await info.context.services.mfa.set_admin_mfa_required(
            ctx, input.require_admin_mfa, origin
        )
        return TenantSecurity(require_admin_mfa=value)
