"""First-party sign-in (with its MFA step), refresh and the public JWKS."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import JSONBody

from backend.api.origin import request_origin
from backend.auth.sessions import TokenPair
from backend.runtime import Services


class SignInRequest(msgspec.Struct, forbid_unknown_fields=True):
    tenant: str
    email: str
    password: str
    # Shown in the user's list of devices (e.g. "Anna's phone").
    device_name: str | None = None


class MfaEnrollRequest(msgspec.Struct, forbid_unknown_fields=True):
    mfa_token: str


class MfaVerifyRequest(msgspec.Struct, forbid_unknown_fields=True):
    mfa_token: str
    code: str | None = None
    recovery_code: str | None = None


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: str


class TokenResponse(msgspec.Struct, omit_defaults=True):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    # Only right after enrolling an authenticator: shown once.
    recovery_codes: list[str] | None = None


class EnrollmentResponse(msgspec.Struct):
    secret: str
    provisioning_uri: str


def _tokens(pair: TokenPair) -> Response[TokenResponse]:
    body = TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
        recovery_codes=pair.recovery_codes,
    )
    return Response(body, headers={"Cache-Control": "no-store"})


class AuthController(Controller):
    tags = ["auth"]

    @post(
        "/auth/sign-in",
        status_code=200,
        summary="Sign in with tenant, email and password",
        description="401 `invalid_credentials` for any wrong detail; 401 `mfa_required` with an "
        "`mfa_token` when a second factor must follow; 429 with Retry-After while backing off.",
    )
    async def sign_in(
        self, state: State, request: Request[Any, Any, Any], data: JSONBody[SignInRequest]
    ) -> Response[TokenResponse]:
        services: Services = state.services
        pair = await services.sessions.sign_in(
            data.tenant, data.email, data.password, request_origin(request), data.device_name
        )
        return _tokens(pair)

    @post(
        "/auth/mfa/enroll",
        status_code=200,
        summary="Start enrolling an authenticator during sign-in (when MFA is required)",
    )
    async def mfa_enroll(
        self, state: State, data: JSONBody[MfaEnrollRequest]
    ) -> Response[EnrollmentResponse]:
        services: Services = state.services
        enrollment = await services.sessions.begin_enrollment(data.mfa_token)
        return Response(
            EnrollmentResponse(enrollment.secret, enrollment.provisioning_uri),
            headers={"Cache-Control": "no-store"},
        )

    @post(
        "/auth/mfa/verify",
        status_code=200,
        summary="Finish signing in with a TOTP code or a recovery code",
    )
    async def mfa_verify(
        self, state: State, request: Request[Any, Any, Any], data: JSONBody[MfaVerifyRequest]
    ) -> Response[TokenResponse]:
        services: Services = state.services
        pair = await services.sessions.complete_mfa(
            data.mfa_token,
            code=data.code,
            recovery_code=data.recovery_code,
            origin=request_origin(request),
        )
        return _tokens(pair)

    @post("/auth/refresh", status_code=200, summary="Exchange a refresh token (rotated)")
    async def refresh(
        self, state: State, request: Request[Any, Any, Any], data: JSONBody[RefreshRequest]
    ) -> Response[TokenResponse]:
        services: Services = state.services
        return _tokens(await services.sessions.refresh(data.refresh_token, request_origin(request)))

    @get("/.well-known/jwks.json", summary="Public keys that verify access and ID tokens")
    async def jwks(self, state: State) -> Response[dict[str, Any]]:
        services: Services = state.services
        await services.keys.fresh()
        return Response(services.keys.public_jwks(), headers={"Cache-Control": "max-age=60"})
