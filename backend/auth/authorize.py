"""The interactive part of /oauth/authorize: sign in, second factor, consent, redirect.

Every step re-validates the app's request with the authorization server, so a bad client_id or
redirect_uri is an error page at any step and never a redirect. After the password (and code)
the request's parameters are kept server-side in a single-use flow, and the consent step
uses those, not anything the browser sends again. There is no browser session cookie: each
authorization signs the user in (nothing ambient for a cross-site request to ride on).

The steps return what to show; the REST skin renders it (backend/api/rest/oauth_pages.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error

from backend.auth import flows
from backend.auth.clients import Client
from backend.auth.credentials import PasswordCheck
from backend.auth.mfa import MfaService
from backend.auth.oauth_grants import GrantUser
from backend.auth.oauth_issue import OAuthIssuer, scope_list
from backend.auth.oauth_request import HttpRequest
from backend.auth.oauth_server import CaravanServer
from backend.auth.throttle import TooManyAttempts
from backend.db.session import Database
from backend.errors import Unauthenticated
from backend.history.events import EventType, record_event, record_event_now


@dataclass(frozen=True)
class ShowSignIn:
    client_name: str
    scopes: list[str]
    error: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ShowCode:
    handle: str
    client_name: str
    error: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ShowConsent:
    handle: str
    client_name: str
    email: str
    scopes: list[str]


@dataclass(frozen=True)
class ShowError:
    title: str
    message: str
    status: int = 400


@dataclass(frozen=True)
class Redirect:
    location: str


Step = ShowSignIn | ShowCode | ShowConsent | ShowError | Redirect

_EXPIRED = ShowError(
    "This sign-in has expired",
    "Go back to the app and start again.",
)


def _redirect_of(reply: tuple[int, Any, list[tuple[str, str]]]) -> Redirect | None:
    _, _, headers = reply
    for name, value in headers:
        if name == "Location":
            return Redirect(value)
    return None


class AuthorizationFlow:
    def __init__(
        self,
        db: Database,
        server: CaravanServer,
        issuer: OAuthIssuer,
        passwords: PasswordCheck,
        mfa: MfaService,
    ) -> None:
        self.db = db
        self.server = server
        self.issuer = issuer
        self.passwords = passwords
        self.mfa = mfa

    async def _validate(self, request: HttpRequest) -> tuple[Client, str] | Step:
        if request.duplicated() is not None:
            return ShowError("This app's request is invalid", "A parameter was sent twice.")
        try:
            return await self.server.consent_grant(request)
        except ValueError:  # Authlib refuses to echo some characters into an error message
            return ShowError("This app's request is invalid", "A parameter is malformed.")
        except OAuth2Error as error:
            if error.redirect_uri:  # the client and its redirect URI are valid: tell the app
                return self._error_redirect(error)
            return ShowError(
                "This app's request is invalid",
                str(error.description or error.error),
            )

    def _error_redirect(self, error: OAuth2Error) -> Step:
        found = _redirect_of(self.server.handle_response(*error()))
        if found is None:
            return ShowError("This app's request is invalid", str(error.error))
        return Redirect(self.server.with_issuer(found.location))

    async def start(self, request: HttpRequest) -> Step:
        checked = await self._validate(request)
        if not isinstance(checked, tuple):
            return checked
        client, scope = checked
        if "none" in _first(request.query, "prompt").split():
            error = OAuth2Error(
                description="there is no signed-in user",
                error="login_required",
                redirect_uri=_first(request.query, "redirect_uri"),
                state=_first(request.query, "state") or None,
            )
            return self._error_redirect(error)
        return ShowSignIn(client.name, scope_list(scope))

    async def sign_in(self, request: HttpRequest, email: str, password: str) -> Step:
        checked = await self._validate(request)
        if not isinstance(checked, tuple):
            return checked
        client, scope = checked
        try:
            user = await self.passwords.in_tenant(client.tenant_id, email, password, request.origin)
        except TooManyAttempts as exc:
            return ShowSignIn(
                client.name,
                scope_list(scope),
                f"Too many failed attempts. Try again in {exc.retry_after} seconds.",
                429,
                exc.headers,
            )
        except Unauthenticated:
            # The form again (200: a 401 would need a WWW-Authenticate challenge).
            return ShowSignIn(client.name, scope_list(scope), "The email or password is wrong.")
        needed = await self.mfa.requirement(user.tenant_id, user.user_id)
        if needed == "enroll":
            return ShowError(
                "Set up two-step verification first",
                "Your organisation requires two-step verification for administrators. Sign in to "
                "the Caravan app, set up an authenticator, then try again.",
                403,
            )
        auth_time = datetime.now(UTC).isoformat()
        if needed == "verify":
            async with self.db.tenant_transaction(client.tenant_id) as conn:
                handle = await flows.start(
                    conn,
                    client.tenant_id,
                    flows.AUTHORIZE_MFA,
                    user.user_id,
                    client_id=client.id,
                    data={"query": request.query, "auth_time": auth_time, "email": user.email},
                    source_ip=request.origin.ip,
                )
                await record_event(
                    conn,
                    client.tenant_id,
                    EventType.MFA_CHALLENGED,
                    subject_user_id=user.user_id,
                    actor_client_id=client.id,
                    **request.origin.event_fields(),
                )
            return ShowCode(handle, client.name)
        return await self._consent(
            client, scope, user.user_id, user.email, request, ["pwd"], auth_time
        )

    async def second_factor(
        self, request: HttpRequest, handle: str, code: str | None, recovery_code: str | None
    ) -> Step:
        flow = await flows.open_flow(self.db, handle, flows.AUTHORIZE_MFA)
        if flow is None:
            return _EXPIRED
        stored = self._stored(request, flow)
        checked = await self._validate(stored)
        if not isinstance(checked, tuple):
            return checked
        client, scope = checked
        if client.id != flow.client_id:
            return _EXPIRED
        try:
            method = await self.mfa.verify(
                flow.tenant_id,
                flow.user_id,
                code=code,
                recovery_code=recovery_code,
                origin=request.origin,
            )
        except TooManyAttempts as exc:
            return ShowCode(
                handle,
                client.name,
                f"Too many failed attempts. Try again in {exc.retry_after} seconds.",
                429,
                exc.headers,
            )
        except Unauthenticated:
            await flows.count_failure(self.db, flow)
            return ShowCode(handle, client.name, "The code is wrong or was already used.")
        async with self.db.tenant_transaction(flow.tenant_id) as conn:
            finished = await flows.finish(conn, flow)
        if not finished:
            return _EXPIRED
        return await self._consent(
            client,
            scope,
            flow.user_id,
            str(flow.data.get("email", "")),
            stored,
            ["pwd", method],
            str(flow.data["auth_time"]),
        )

    async def _consent(
        self,
        client: Client,
        scope: str,
        user_id: uuid.UUID,
        email: str,
        request: HttpRequest,
        amr: list[str],
        auth_time: str,
    ) -> Step:
        scopes = await self.issuer.user_ceiling(client.tenant_id, user_id, scope_list(scope))
        async with self.db.tenant_transaction(client.tenant_id) as conn:
            handle = await flows.start(
                conn,
                client.tenant_id,
                flows.CONSENT,
                user_id,
                client_id=client.id,
                data={
                    "query": request.query,
                    "scope": " ".join(scopes),
                    "amr": amr,
                    "auth_time": auth_time,
                },
                source_ip=request.origin.ip,
            )
        return ShowConsent(handle, client.name, email, scopes)

    async def decide(self, request: HttpRequest, handle: str, allow: bool) -> Step:
        flow = await flows.open_flow(self.db, handle, flows.CONSENT)
        if flow is None:
            return _EXPIRED
        stored = self._stored(request, flow)
        checked = await self._validate(stored)
        if not isinstance(checked, tuple):
            return checked
        client, _ = checked
        if client.id != flow.client_id:
            return _EXPIRED
        async with self.db.tenant_transaction(flow.tenant_id) as conn:
            if not await flows.finish(conn, flow):
                return _EXPIRED
        user = None
        if allow:
            user = GrantUser(
                id=flow.user_id,
                scope=str(flow.data["scope"]),
                amr=list(flow.data["amr"]),
                auth_time=datetime.fromisoformat(str(flow.data["auth_time"])),
            )
        reply = await self.server.authorize(stored, user)
        await record_event_now(
            self.db,
            flow.tenant_id,
            EventType.CONSENT_GRANTED if allow else EventType.CONSENT_DENIED,
            actor_user_id=flow.user_id,
            actor_client_id=client.id,
            subject_user_id=flow.user_id,
            details={"scope": flow.data["scope"]},
            **request.origin.event_fields(),
        )
        found = _redirect_of(reply)
        if found is None:
            return ShowError("This app's request is invalid", "The app cannot be reached.")
        return found

    @staticmethod
    def _stored(request: HttpRequest, flow: flows.Flow) -> HttpRequest:
        """The app's original request, as kept when the user signed in."""
        query = [(str(k), str(v)) for k, v in flow.data.get("query", [])]
        return HttpRequest(
            method="GET",
            uri=request.uri,
            headers=request.headers,
            query=query,
            origin=request.origin,
        )


def _first(pairs: list[tuple[str, str]], name: str) -> str:
    for key, value in pairs:
        if key == name:
            return value
    return ""
