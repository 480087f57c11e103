"""The OAuth 2.0 / OpenID Connect authorization server: Authlib's grants and endpoints on
Caravan's async services.

Authlib is synchronous and has no Litestar integration. Each call into it runs inside
SQLAlchemy's `greenlet_spawn`; Authlib's callbacks (query_client, save_authorization_code,
query_authorization_code, authenticate_refresh_token, query_token, ...) reach the async
services through `await_only`, on the same event loop and without threads.

What Authlib does here: parameter and duplicate checks, client authentication (Basic, POST,
none for public clients), exact redirect-URI matching, response/grant type checks, scope
validation, PKCE verification, RFC 6749 error bodies, RFC 7009 revocation and RFC 7662
introspection plumbing. What Caravan adds: S256-only and mandatory PKCE, single-use codes with
replay revocation, refresh-token rotation with reuse detection, the scope ceilings, ID tokens.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from authlib.oauth2.rfc6749 import (
    AuthorizationServer as AuthlibServer,
)
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.util import await_only, greenlet_spawn

from backend.auth import codes
from backend.auth.clients import (
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    PUBLIC,
    Client,
    find_client,
)
from backend.auth.models import AuthSession
from backend.auth.oauth_issue import IDENTITY_SCOPES, GrantRefused, OAuthIssuer, scope_list
from backend.auth.opaque import new_credential, parse_client_id, public_client_id, tenant_of
from backend.auth.origin import Origin
from backend.auth.refresh import (
    RefreshRefused,
    Rotated,
    ScopeNotGranted,
    find,
    revoke_session,
    rotate,
)
from backend.auth.revocation import revoke_token
from backend.auth.tokens import AccessTokens
from backend.db.base import table_of
from backend.db.session import Database
from backend.errors import Unauthenticated
from backend.history.events import EventType, record_event, record_event_now
from backend.policy.scopes import SCOPES

_sessions = table_of(AuthSession)
log = logging.getLogger("caravan.oauth")
SECRET_METHODS = ["client_secret_basic", "client_secret_post"]
MAX_NONCE = 255
MAX_STATE = 1024
ALL_METHODS = [*SECRET_METHODS, "none"]


# -- the request Authlib sees --------------------------------------------------------------------
@dataclass
class HttpRequest:
    """What a controller read from the HTTP request (the body already awaited)."""

    method: str
    uri: str
    headers: dict[str, str]
    query: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] = field(default_factory=list)
    origin: Origin = field(default_factory=Origin)

    def duplicated(self) -> str | None:
        """RFC 6749 section 3.1/3.2: no parameter may be sent twice."""
        seen: set[str] = set()
        for name, _ in [*self.query, *self.form]:
            if name in seen:
                return name
            seen.add(name)
        return None


def _first(pairs: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in pairs:
        values.setdefault(name, value)
    return values


class _Payload:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.data = _first(pairs)
        self.datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in pairs:
            self.datalist[name].append(value)

    @property
    def client_id(self) -> str | None:
        return self.data.get("client_id")

    @property
    def response_type(self) -> str | None:
        return self.data.get("response_type")

    @property
    def grant_type(self) -> str | None:
        return self.data.get("grant_type")

    @property
    def redirect_uri(self) -> str | None:
        return self.data.get("redirect_uri")

    @property
    def scope(self) -> str | None:
        return self.data.get("scope")

    @property
    def state(self) -> str | None:
        return self.data.get("state")


class CaravanRequest(OAuth2Request):  # type: ignore[misc]
    def __init__(self, http: HttpRequest) -> None:
        super().__init__(http.method, http.uri, headers=http.headers)
        self.http = http
        self.payload = _Payload([*http.query, *http.form])

    @property
    def args(self) -> dict[str, str]:
        return _first(self.http.query)

    @property
    def form(self) -> dict[str, str]:
        return _first(self.http.form)


# -- clients as Authlib sees them ----------------------------------------------------------------
class AuthlibClient(ClientMixin):  # type: ignore[misc]
    def __init__(self, client: Client) -> None:
        self.client = client

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # redirect_uri is always required, then matched exactly

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scope if the client may have all of it; None (invalid_scope) if not.
        No scope asked: everything the client is allowed."""
        allowed = self.client.allowed_scopes
        if not scope:
            return " ".join(allowed)
        requested = scope_list(scope)
        if not set(requested) <= set(allowed):
            return None
        return " ".join(requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.client.client_type == PUBLIC:
            return method == "none"
        return method in SECRET_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and AUTHORIZATION_CODE in self.client.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.client.grant_types


def _client_of(request: CaravanRequest) -> Client:
    client = request.client
    assert isinstance(client, AuthlibClient)
    return client.client


@dataclass(frozen=True)
class GrantUser:
    """The signed-in user who approved an authorization, with what they approved."""

    id: uuid.UUID
    scope: str
    amr: list[str]
    auth_time: Any


# -- PKCE: mandatory, S256 only ------------------------------------------------------------------
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


# -- grants ---------------------------------------------------------------------------------------
class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    @property
    def caravan(self) -> CaravanServer:
        assert isinstance(self.server, CaravanServer)
        return self.server

    def generate_authorization_code(self) -> str:
        return new_credential(_client_of(self.request).tenant_id)

    def save_authorization_code(self, code: str, request: CaravanRequest) -> None:
        user = request.user
        assert isinstance(user, GrantUser)
        data = request.payload.data
        await_only(
            codes.save(
                self.caravan.db,
                code=code,
                client=_client_of(request),
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
                    _client_of(self.request), code, self.request.http.origin
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
        assert isinstance(self.server, CaravanServer)
        return self.server

    def authenticate_refresh_token(self, refresh_token: str) -> RotatedToken | None:
        """Spends the token at once (rotation); a spent one revokes its whole session."""
        scope = self.request.payload.scope
        try:
            rotated = await_only(
                rotate(
                    self.caravan.db,
                    refresh_token,
                    client_id=_client_of(self.request).id,
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
                    _client_of(self.request),
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
        assert isinstance(self.server, CaravanServer)
        return self.server

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client = _client_of(self.request)
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


# -- revocation and introspection -----------------------------------------------------------------
@dataclass(frozen=True)
class TokenInfo:
    kind: str  # access_token / refresh_token
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    client_id: uuid.UUID | None
    session_id: uuid.UUID | None
    scope: str | None
    active: bool
    exp: int
    iat: int
    claims: dict[str, Any] = field(default_factory=dict)

    def check_client(self, client: AuthlibClient) -> bool:
        return self.client_id is not None and self.client_id == client.client.id

    def is_expired(self) -> bool:
        return not self.active

    def is_revoked(self) -> bool:
        return not self.active


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ALL_METHODS

    @property
    def caravan(self) -> CaravanServer:
        assert isinstance(self.server, CaravanServer)
        return self.server

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenInfo | None:
        return await_only(self.caravan.find_token(token_string, token_type_hint))

    def revoke_token(self, token: TokenInfo, request: CaravanRequest) -> None:
        await_only(self.caravan.revoke(token, request.http.origin))


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = SECRET_METHODS

    @property
    def caravan(self) -> CaravanServer:
        assert isinstance(self.server, CaravanServer)
        return self.server

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenInfo | None:
        return await_only(self.caravan.find_token(token_string, token_type_hint))

    def check_permission(self, token: TokenInfo, client: AuthlibClient, request: Any) -> bool:
        """An app may introspect only the tokens issued to it."""
        return token.check_client(client)

    def introspect_token(self, token: TokenInfo) -> dict[str, Any]:
        assert token.client_id is not None
        return {
            "active": True,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "scope": token.scope or "",
            "client_id": public_client_id(token.tenant_id, token.client_id),
            "sub": str(token.user_id),
            "tenant": str(token.tenant_id),
            "exp": token.exp,
            "iat": token.iat,
            "iss": self.caravan.tokens.settings.issuer,
            "aud": self.caravan.tokens.settings.audience,
            **({"sid": str(token.session_id)} if token.session_id else {}),
        }


# -- the server ----------------------------------------------------------------------------------
Reply = tuple[int, Any, list[tuple[str, str]]]


class CaravanServer(AuthlibServer):  # type: ignore[misc]
    def __init__(self, db: Database, tokens: AccessTokens, issuer: OAuthIssuer) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.db = db
        self.tokens = tokens
        self.issuer = issuer
        self.register_grant(CodeGrant, [StrictPKCE(required=True), RequestLimits()])
        self.register_grant(RefreshGrant)
        self.register_grant(ClientGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    # Authlib's framework hooks
    def query_client(self, client_id: str) -> AuthlibClient | None:
        found = await_only(find_client(self.db, client_id))
        return AuthlibClient(found) if found is not None else None

    def save_token(self, token: dict[str, Any], request: CaravanRequest) -> None:
        """Tokens are stored when they are issued (backend/auth/oauth_issue.py)."""

    def create_oauth2_request(self, request: Any) -> CaravanRequest:
        if isinstance(request, CaravanRequest):
            return request
        assert isinstance(request, HttpRequest)
        return CaravanRequest(request)

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Reply:
        return status, body, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Events are recorded by the services themselves."""

    # Entry points for the controllers (async; Authlib runs inside a greenlet)
    async def token(self, request: HttpRequest) -> Reply:
        return await self._endpoint(request, self.create_token_response, request)

    async def revocation(self, request: HttpRequest) -> Reply:
        return await self._endpoint(request, self.create_endpoint_response, "revocation", request)

    async def introspection(self, request: HttpRequest) -> Reply:
        return await self._endpoint(
            request, self.create_endpoint_response, "introspection", request
        )

    async def _endpoint(self, request: HttpRequest, call: Any, *args: Any) -> Reply:
        duplicated = request.duplicated()
        if duplicated is not None:
            return _error_reply(InvalidRequestError("a parameter is repeated"))
        try:
            reply: Reply = await greenlet_spawn(call, *args)
        except ValueError:
            log.info("malformed OAuth request refused", exc_info=True)
            # Authlib refuses to put some characters (quotes, backslashes, non-ASCII) that a
            # client sent into an error description: still a bad request, never a 500.
            return _error_reply(InvalidRequestError("a parameter is malformed"))
        await self._record_client_failure(request, reply)
        return reply

    async def consent_grant(self, request: HttpRequest) -> tuple[Client, str]:
        """Validate an authorization request; the client and the scope it may be given.
        OAuth2Error otherwise (`redirect_uri` set only when redirecting to it is safe)."""

        def validate() -> tuple[Client, str]:
            grant = self.get_consent_grant(CaravanRequest(request))
            return _client_of(grant.request), str(grant.request.scope or "")

        result: tuple[Client, str] = await greenlet_spawn(validate)
        return result

    async def authorize(self, request: HttpRequest, user: GrantUser | None) -> Reply:
        """The redirect after the user allowed (a code) or denied (access_denied)."""

        def respond() -> Reply:
            oauth_request = CaravanRequest(request)
            grant = self.get_consent_grant(oauth_request)
            reply: Reply = self.create_authorization_response(oauth_request, user, grant)
            return reply

        status, body, headers = await greenlet_spawn(respond)
        return (
            status,
            body,
            [(k, self.with_issuer(v) if k == "Location" else v) for k, v in headers],
        )

    def with_issuer(self, location: str) -> str:
        """RFC 9207: the redirect names the issuer, against mix-up attacks."""
        parts = urlsplit(location)
        query = [
            *parse_qsl(parts.query, keep_blank_values=True),
            ("iss", self.tokens.settings.issuer),
        ]
        return urlunsplit(parts._replace(query=urlencode(query)))

    # Tokens for revocation / introspection
    async def find_token(self, token: str, hint: str | None) -> TokenInfo | None:
        if hint != "refresh_token":
            found = await self._access_token(token)
            if found is not None or hint == "access_token":
                return found
        record = await find(self.db, token)
        if record is None:
            return None if hint == "refresh_token" else await self._access_token(token)
        return TokenInfo(
            kind="refresh_token",
            tenant_id=record.tenant_id,
            user_id=record.user_id,
            client_id=record.client_id,
            session_id=record.session_id,
            scope=record.scope,
            active=record.active,
            exp=int(record.expires_at.timestamp()),
            iat=int(record.created_at.timestamp()),
        )

    async def _access_token(self, token: str) -> TokenInfo | None:
        if tenant_of(token) is not None:
            return None  # an opaque credential, not a JWT
        try:
            principal, claims, revoked = await self.tokens.inspect(token)
        except Unauthenticated:
            return None
        active = not revoked
        if active and principal.session_id is not None:
            async with self.db.tenant_transaction(principal.tenant_id) as conn:
                session = (
                    await conn.execute(
                        select(_sessions.c.revoked_at).where(_sessions.c.id == principal.session_id)
                    )
                ).first()
            active = session is not None and session.revoked_at is None
        return TokenInfo(
            kind="access_token",
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            client_id=principal.client_id,
            session_id=principal.session_id,
            scope=claims.get("scope"),
            active=active,
            exp=int(claims["exp"]),
            iat=int(claims["iat"]),
            claims=claims,
        )

    async def revoke(self, token: TokenInfo, origin: Origin) -> None:
        """A refresh token, or an access token of a session: the whole session ends, and its
        access tokens are refused from the next request on. An access token is also revoked by
        its `jti` (one issued without a session, before client-credentials tokens had one)."""
        async with self.db.tenant_transaction(token.tenant_id) as conn:
            revoked = False
            if token.session_id is not None:
                revoked = await revoke_session(
                    conn, token.tenant_id, token.session_id, "client_revoked"
                )
            jti = token.claims.get("jti")
            if token.kind == "access_token" and token.active and isinstance(jti, str):
                await revoke_token(conn, jti)
            await record_event(
                conn,
                token.tenant_id,
                EventType.TOKEN_REVOKED,
                actor_client_id=token.client_id,
                subject_user_id=token.user_id,
                details={
                    "token_type": token.kind,
                    "session_id": str(token.session_id) if token.session_id else None,
                    "session_revoked": revoked,
                },
                **origin.event_fields(),
            )

    async def _record_client_failure(self, request: HttpRequest, reply: Reply) -> None:
        status, body, _ = reply
        if not isinstance(body, dict) or body.get("error") != "invalid_client":
            return
        claimed = _claimed_client_id(request)
        parsed = parse_client_id(claimed)
        if parsed is None:
            return
        tenant_id, client_id = parsed
        try:
            await record_event_now(
                self.db,
                tenant_id,
                EventType.CLIENT_AUTH_FAILED,
                outcome="failure",
                actor_client_id=client_id,
                details={"endpoint": urlsplit(request.uri).path, "status": status},
                **request.origin.event_fields(),
            )
        except IntegrityError:
            return  # a forged client_id naming no tenant: there is nowhere to record it


def _claimed_client_id(request: HttpRequest) -> str | None:
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip()).decode()
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        return unquote(decoded.partition(":")[0])
    return _first(request.form).get("client_id")


def _error_reply(error: OAuth2Error) -> Reply:
    body = {"error": str(error.error)}
    if error.description:
        body["error_description"] = str(error.description)
    return int(error.status_code), body, []


def server_metadata(issuer: str) -> dict[str, Any]:
    """RFC 8414 authorization server metadata, which is also the OpenID Provider metadata."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [AUTHORIZATION_CODE, "refresh_token", CLIENT_CREDENTIALS],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ALL_METHODS,
        "revocation_endpoint_auth_methods_supported": ALL_METHODS,
        "introspection_endpoint_auth_methods_supported": SECRET_METHODS,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "amr",
            "tenant",
            "email",
            "name",
        ],
        "authorization_response_iss_parameter_supported": True,
        "prompt_values_supported": ["none", "login", "consent"],
    }
