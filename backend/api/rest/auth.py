"""First-party sign-in, refresh and the public JWKS."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import JSONBody

from backend.auth.sessions import TokenPair
from backend.runtime import Services


class SignInRequest(msgspec.Struct, forbid_unknown_fields=True):
    tenant: str
    email: str
    password: str


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: str


class TokenResponse(msgspec.Struct):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
    )


class AuthController(Controller):
    tags = ["auth"]

    @post("/auth/sign-in", status_code=200, summary="Sign in with tenant, email and password")
    async def sign_in(self, state: State, data: JSONBody[SignInRequest]) -> TokenResponse:
        services: Services = state.services
        return _tokens(await services.sessions.sign_in(data.tenant, data.email, data.password))

    @post("/auth/refresh", status_code=200, summary="Exchange a refresh token (rotated)")
    async def refresh(self, state: State, data: JSONBody[RefreshRequest]) -> TokenResponse:
        services: Services = state.services
        return _tokens(await services.sessions.refresh(data.refresh_token))

    @get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
    async def jwks(self, state: State) -> dict[str, Any]:
        services: Services = state.services
        return services.keys.public_jwks()
