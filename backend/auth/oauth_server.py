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

The parts: oauth_request.py (the request Authlib sees), oauth_client_auth.py (client
authentication), oauth_grants.py (the grants), oauth_tokens.py (revocation and introspection),
oauth_discovery.py (server metadata).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2.rfc6749 import AuthorizationServer as AuthlibServer
from authlib.oauth2.rfc6749 import InvalidRequestError
from sqlalchemy.util import await_only, greenlet_spawn

from backend.auth import oauth_tokens
from backend.auth.clients import Client, find_client
from backend.auth.oauth_client_auth import AuthlibClient, client_of, record_client_failure
from backend.auth.oauth_grants import (
    ClientGrant,
    CodeGrant,
    GrantUser,
    RefreshGrant,
    RequestLimits,
    StrictPKCE,
)
from backend.auth.oauth_issue import OAuthIssuer
from backend.auth.oauth_request import CaravanRequest, HttpRequest, Reply, error_reply
from backend.auth.oauth_tokens import Introspection, Revocation, TokenInfo
from backend.auth.origin import Origin
from backend.auth.tokens import AccessTokens
from backend.db.session import Database
from backend.policy.scopes import OAUTH_SCOPES

log = logging.getLogger("caravan.oauth")


class CaravanServer(AuthlibServer):  # type: ignore[misc]
    def __init__(self, db: Database, tokens: AccessTokens, issuer: OAuthIssuer) -> None:
        super().__init__(scopes_supported=list(OAUTH_SCOPES))
        self.db = db
        self.tokens = tokens
        self.issuer = issuer
        self.register_grant(CodeGrant, [StrictPKCE(required=True), RequestLimits()])
        self.register_grant(RefreshGrant)
        self.register_grant(ClientGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

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
            return error_reply(InvalidRequestError("a parameter is repeated"))
        try:
            reply: Reply = await greenlet_spawn(call, *args)
        except ValueError:
            log.info("malformed OAuth request refused", exc_info=True)
            # Authlib refuses to put some characters (quotes, backslashes, non-ASCII) that a
            # client sent into an error description: still a bad request, never a 500.
            return error_reply(InvalidRequestError("a parameter is malformed"))
        await record_client_failure(self.db, request, reply)
        return reply

    async def consent_grant(self, request: HttpRequest) -> tuple[Client, str]:
        """Validate an authorization request; the client and the scope it may be given.
        OAuth2Error otherwise (`redirect_uri` set only when redirecting to it is safe)."""

        def validate() -> tuple[Client, str]:
            grant = self.get_consent_grant(CaravanRequest(request))
            return client_of(grant.request), str(grant.request.scope or "")

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

    # Tokens for revocation / introspection (backend/auth/oauth_tokens.py)
    async def find_token(self, token: str, hint: str | None) -> TokenInfo | None:
        return await oauth_tokens.find_token(self.db, self.tokens, token, hint)

    async def revoke(self, token: TokenInfo, origin: Origin) -> None:
        await oauth_tokens.revoke(self.db, token, origin)
