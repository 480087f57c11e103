"""The OAuth 2.0 / OpenID Connect endpoints (/oauth/*) and their discovery documents.

These answer in the OAuth formats the RFCs require ({"error", "error_description"}, HTML pages
for the user-facing authorize step), not problem+json. Parsing only; the work is in
backend/auth/ (oauth_server.py, authorize.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State

from backend.api.auth_header import bearer_token
from backend.api.origin import request_origin
from backend.api.rest.oauth_pages import render
from backend.auth.authorize import ShowError
from backend.auth.oauth_discovery import server_metadata
from backend.auth.oauth_issue import userinfo
from backend.auth.oauth_request import HttpRequest, Reply
from backend.errors import Unauthenticated
from backend.runtime import Services

MAX_FIELDS = 50
FORM = "application/x-www-form-urlencoded"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class Headers(dict[str, str]):
    """Case-insensitive on lookup, as Authlib reads `Authorization`."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


def _pairs(raw: str) -> list[tuple[str, str]] | None:
    try:
        return parse_qsl(raw, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except (ValueError, UnicodeDecodeError):
        return None


async def _http(
    request: Request[Any, Any, Any], services: Services, *, with_form: bool
) -> HttpRequest | None:
    """The request as the authorization server sees it; None when it cannot be parsed."""
    raw_query = request.scope.get("query_string", b"")
    try:
        query = _pairs(raw_query.decode("ascii"))
    except UnicodeDecodeError:
        query = None
    form: list[tuple[str, str]] | None = []
    if with_form:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if body and content_type != FORM:
            return None
        try:
            form = _pairs(body.decode("utf-8"))
        except UnicodeDecodeError:
            form = None
    if query is None or form is None:
        return None
    return HttpRequest(
        method=request.method,
        uri=f"{services.settings.issuer}{request.url.path}",
        headers=Headers({k.lower(): v for k, v in request.headers.items()}),
        query=query,
        form=form,
        origin=request_origin(request, channel="oauth"),
    )


def _json(reply: Reply) -> Response[Any]:
    status, body, headers = reply
    extra = {k: v for k, v in headers if k.lower() != "content-type"}
    return Response(
        body if isinstance(body, dict) else {},
        status_code=status,
        media_type="application/json",
        headers={**_NO_STORE, **extra},
    )


def _invalid_request(description: str) -> Response[Any]:
    return _json((400, {"error": "invalid_request", "error_description": description}, []))


def _form_value(form: Mapping[str, str], name: str) -> str | None:
    value = form.get(name)
    return value if value else None


class OAuthController(Controller):
    tags = ["oauth"]

    @get("/oauth/authorize", summary="Authorization endpoint: the sign-in and consent page")
    async def authorize(self, state: State, request: Request[Any, Any, Any]) -> Response[Any]:
        services: Services = state.services
        http = await _http(request, services, with_form=False)
        if http is None:
            return render(ShowError("This app's request is invalid", "It cannot be read."))
        step = await services.authorize.start(http)
        return render(step, request.scope.get("query_string", b"").decode("ascii"))

    @post("/oauth/authorize", summary="Sign-in, code and consent form posts", status_code=200)
    async def authorize_post(self, state: State, request: Request[Any, Any, Any]) -> Response[Any]:
        services: Services = state.services
        http = await _http(request, services, with_form=True)
        if http is None:
            return render(ShowError("This request is invalid", "It cannot be read."))
        form = dict(http.form)
        step_name = form.get("step")
        flow = services.authorize
        if step_name == "sign_in":
            step = await flow.sign_in(http, form.get("email", ""), form.get("password", ""))
        elif step_name == "mfa":
            step = await flow.second_factor(
                http,
                form.get("handle", ""),
                _form_value(form, "code"),
                _form_value(form, "recovery_code"),
            )
        elif step_name == "consent":
            step = await flow.decide(http, form.get("handle", ""), form.get("decision") == "allow")
        else:
            step = ShowError("This request is invalid", "Start again from the app.")
        return render(
            step, request.scope.get("query_string", b"").decode("ascii"), redirect_status=303
        )

    @post(
        "/oauth/token",
        summary="Token endpoint (authorization_code, refresh_token, client_credentials)",
        status_code=200,
    )
    async def token(self, state: State, request: Request[Any, Any, Any]) -> Response[Any]:
        services: Services = state.services
        http = await _http(request, services, with_form=True)
        if http is None:
            return _invalid_request(f"send the parameters as {FORM}")
        return _json(await services.oauth.token(http))

    @post("/oauth/revoke", summary="Token revocation (RFC 7009)", status_code=200)
    async def revoke(self, state: State, request: Request[Any, Any, Any]) -> Response[Any]:
        services: Services = state.services
        http = await _http(request, services, with_form=True)
        if http is None:
            return _invalid_request(f"send the parameters as {FORM}")
        return _json(await services.oauth.revocation(http))

    @post("/oauth/introspect", summary="Token introspection (RFC 7662)", status_code=200)
    async def introspect(self, state: State, request: Request[Any, Any, Any]) -> Response[Any]:
        services: Services = state.services
        http = await _http(request, services, with_form=True)
        if http is None:
            return _invalid_request(f"send the parameters as {FORM}")
        return _json(await services.oauth.introspection(http))

    @get("/oauth/userinfo", summary="OpenID Connect userinfo")
    async def userinfo_get(self, state: State, request: Request[Any, Any, Any]) -> Response[Any]:
        return await _userinfo(state.services, request)

    @post("/oauth/userinfo", summary="OpenID Connect userinfo", status_code=200)
    async def userinfo_post(self, state: State, request: Request[Any, Any, Any]) -> Response[Any]:
        return await _userinfo(state.services, request)

    @get("/.well-known/oauth-authorization-server", summary="Authorization server metadata")
    async def metadata(self, state: State) -> dict[str, Any]:
        services: Services = state.services
        return server_metadata(services.settings.issuer)

    @get("/.well-known/openid-configuration", summary="OpenID Provider metadata")
    async def openid_configuration(self, state: State) -> dict[str, Any]:
        services: Services = state.services
        return server_metadata(services.settings.issuer)


async def _userinfo(services: Services, request: Request[Any, Any, Any]) -> Response[Any]:
    """RFC 6750 errors: 401 invalid_token, 403 insufficient_scope."""
    try:
        principal = await services.tokens.authenticate(
            bearer_token(request.headers.get("authorization"))
        )
    except Unauthenticated:
        return Response(
            {"error": "invalid_token", "error_description": "the access token is invalid"},
            status_code=401,
            headers={**_NO_STORE, "WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if principal.scopes is not None and "openid" not in principal.scopes:
        return Response(
            {"error": "insufficient_scope", "error_description": "needs the openid scope"},
            status_code=403,
            headers={
                **_NO_STORE,
                "WWW-Authenticate": 'Bearer error="insufficient_scope", scope="openid"',
            },
        )
    claims = await userinfo(services.db, principal)
    if claims is None:
        return Response(
            {"error": "invalid_token", "error_description": "the user is no longer active"},
            status_code=401,
            headers={**_NO_STORE, "WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return Response(claims, headers=_NO_STORE)
