"""The grants Caravan offers, on Authlib's: authorization code (PKCE mandatory, S256 only,
single-use codes), refresh token (rotation with reuse detection) and client credentials.
Each one issues its tokens through OAuthIssuer (backend/auth/oauth_issue.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from sqlalchemy.util import await_only

from backend.auth import codes
from backend.auth.oauth_client_auth import ALL_METHODS, SECRET_METHODS, AuthlibClient, client_of
from backend.auth.oauth_issue import IDENTITY_SCOPES, GrantRefused, scope_list
from backend.auth.oauth_request import CaravanRequest
from backend.auth.opaque import new_credential
from backend.auth.refresh import RefreshRefused, Rotated, ScopeNotGranted, rotate

if TYPE_CHECKING:
    from backend.auth.oauth_server import CaravanServer

MAX_NONCE = 255
MAX_STATE = 1024


@dataclass(frozen=True)
class GrantUser:
    """The signed-in user who approved an authorization, with what they approved."""

    id: uuid.UUID
    scope: str
    amr: list[str]
    auth_time: Any


class StrictPKCE(CodeChallenge):  # type: ignore[misc]
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": compare_s256_code_challenge}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send a code_challenge (S256)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)


class RequestLimits:
    """Bounds on what an authorization request may carry into storage or back to the app."""

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.check)

    def check(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        nonce = data.get("nonce")
        if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE:
            raise InvalidRequestError(f"nonce must be 1 to {MAX_NONCE} characters")
        if len(data.get("state") or "") > MAX_STATE:
            raise InvalidRequestError(f"state must be at most {MAX_STATE} characters")


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    @property
    def caravan(self) -> CaravanServer:
        return cast("CaravanServer", self.server)

    def generate_authorization_code(self) -> str:
        return new_credential(client_of(self.request).tenant_id)

    def save_authorization_code(self, code: str, request: CaravanRequest) -> None:
        user = request.user
        assert isinstance(user, GrantUser)
        data = request.payload.data
        await_only(
            codes.save(
                self.caravan.db,
                code=code,
                client=client_of(request),
                user_id=user.id,
                redirect_uri=data["redirect_uri"],
                scope=user.scope,
                nonce=data.get("nonce"),
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                amr=user.amr,
                auth_time=user.auth_time,
            )
        )

    def query_authorization_code(self, code: str, client: AuthlibClient) -> codes.IssuedCode | None:
        return await_only(
            codes.spend(self.caravan.db, code, client.client, self.request.http.origin)
        )

    def delete_authorization_code(self, authorization_code: codes.IssuedCode) -> None:
        """Nothing to do: the code was spent when it was looked up."""

    def authenticate_user(self, authorization_code: codes.IssuedCode) -> codes.IssuedCode:
        return authorization_code

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        code = self.request.authorization_code
        try:
            body = await_only(
                self.caravan.issuer.for_code(
                    client_of(self.request), code, self.request.http.origin
                )
            )
        except GrantRefused:
            raise InvalidGrantError("the user can no longer authorize this app") from None
        return 200, body, self.TOKEN_RESPONSE_HEADER


class RotatedToken:
    def __init__(self, rotated: Rotated) -> None:
        self.rotated = rotated

    def check_client(self, client: AuthlibClient) -> bool:
        return self.rotated.client_id == client.client.id

    def get_scope(self) -> str:
        return self.rotated.scope or ""


class RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    @property
    def caravan(self) -> CaravanServer:
        return cast("CaravanServer", self.server)

    def authenticate_refresh_token(self, refresh_token: str) -> RotatedToken | None:
        """Spends the token at once (rotation); a spent one revokes its whole session."""
        scope = self.request.payload.scope
        try:
            rotated = await_only(
                rotate(
                    self.caravan.db,
                    refresh_token,
                    client_id=client_of(self.request).id,
                    origin=self.request.http.origin,
                    requested_scope=frozenset(scope_list(scope)) if scope else None,
                )
            )
        except ScopeNotGranted:
            raise InvalidScopeError() from None
        except RefreshRefused:
            return None
        return RotatedToken(rotated)

    def authenticate_user(self, refresh_token: RotatedToken) -> RotatedToken:
        return refresh_token

    def revoke_old_credential(self, refresh_token: RotatedToken) -> None:
        """Already spent by authenticate_refresh_token."""

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.request.refresh_token
        assert isinstance(token, RotatedToken)
        scope = self.request.payload.scope
        try:
            body = await_only(
                self.caravan.issuer.for_refresh(
                    client_of(self.request),
                    token.rotated,
                    scope_list(scope) if scope else None,
                    self.request.http.origin,
                )
            )
        except GrantRefused:
            raise InvalidGrantError() from None
        return 200, body, self.TOKEN_RESPONSE_HEADER


class ClientGrant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_METHODS

    @property
    def caravan(self) -> CaravanServer:
        return cast("CaravanServer", self.server)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client = client_of(self.request)
        scope = self.request.payload.scope
        usable = [s for s in client.allowed_scopes if s not in IDENTITY_SCOPES]
        if scope:
            requested = scope_list(scope)
            if not set(requested) <= set(usable):
                raise InvalidScopeError()
            usable = requested
        try:
            body = await_only(
                self.caravan.issuer.for_client(client, usable, self.request.http.origin)
            )
        except GrantRefused:
            raise InvalidGrantError("the app's service user is deactivated") from None
        return 200, body, self.TOKEN_RESPONSE_HEADER
