"""The OpenAPI document (/schema) describes the error answers too, once and for every route.

`ErrorDocs` is a Litestar plugin: as each route is registered it gives every handler the error
responses it can really return, derived from what the handler is (signed-in or not, a path id,
a JSON body, an If-Match precondition, a read that the bulk-read budget can refuse), as
`ResponseSpec`s whose body is the one shared `Problem` schema (components/schemas/Problem) that
backend/api/rest/problems.py emits. Only the document changes; the routes behave as before.

Endpoints whose errors follow another standard say so: /oauth/* answers RFC 6749/6750 JSON
(`{"error", "error_description"}`) and HTML pages for the authorize step, /graphql answers
GraphQL JSON; their transport-level failures (body too large, server error) are still problems.
"""

# No `from __future__ import annotations` here: TypedDict must see NotRequired at class creation.
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, NotRequired, TypedDict, cast

from litestar.config.app import AppConfig
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import Parameter, ParameterKwarg
from litestar.plugins import InitPlugin, ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute

from backend.api.rest.problems import PROBLEM_JSON

# The name of the dependency that authenticates a bearer token (backend/api/rest/routes.py).
AUTH_DEPENDENCY = "ctx"
BEARER = "BearerToken"


class ProblemFieldError(TypedDict):
    field: Annotated[str, Parameter(description="The field at fault (or `body`).")]
    code: Annotated[str, Parameter(description="Machine-readable reason, e.g. `required`.")]
    message: Annotated[str, Parameter(description="Human-readable reason.")]


class Problem(TypedDict):
    """RFC 9457 problem details. Extension members (e.g. `retry_after`, `mfa_token`) may follow."""

    type: Annotated[str, Parameter(description="Always `about:blank`: `code` says what failed.")]
    title: Annotated[str, Parameter(description="Short summary of the status.")]
    status: Annotated[int, Parameter(description="The HTTP status code.", ge=400, le=599)]
    detail: Annotated[str, Parameter(description="What went wrong in this request.")]
    code: Annotated[str, Parameter(description="Machine-readable error code.")]
    field: NotRequired[Annotated[str, Parameter(description="The one field at fault.")]]
    errors: NotRequired[
        Annotated[list[ProblemFieldError], Parameter(description="Every field at fault.")]
    ]


class OAuthError(TypedDict):
    """RFC 6749 section 5.2 / RFC 6750 section 3 error body."""

    error: Annotated[str, Parameter(description="e.g. `invalid_request`, `invalid_token`.")]
    error_description: NotRequired[str]


class GraphQLErrorItem(TypedDict):
    message: str
    extensions: NotRequired[dict[str, Any]]


class GraphQLErrorResponse(TypedDict):
    """A GraphQL response that carries only errors (the request could not be executed)."""

    errors: list[GraphQLErrorItem]
    data: NotRequired[None]


DESCRIPTIONS: Mapping[int | str, str] = {
    304: "Not modified: the If-None-Match tag is current (no body)",
    400: "Bad request: a malformed body, parameter or header (`code`, `field`)",
    401: "Unauthenticated: no valid bearer token, or wrong credentials (`code` says which)",
    403: "Forbidden: the caller's role, scope or field permissions do not allow this",
    404: "Not found (also what another tenant's or an out-of-scope record gives)",
    409: "Conflict: the state does not allow this now, or an Idempotency-Key is still running",
    410: "Gone: the link was used or has expired",
    412: "Precondition failed: If-Match names a version that is no longer current",
    413: "The request body is larger than the server accepts",
    415: "The request body is not JSON (Content-Type)",
    422: "Validation failed: `errors` lists every field at fault",
    428: "Precondition required: send If-Match with the version (ETag) you read",
    429: "Too many requests: a throttle or the tenant's read budget; see Retry-After",
    500: "Server error (details are logged, never sent)",
    503: "Not ready: the database is unreachable or not migrated",
    "default": "Any other error, as a problem",
}

# Statuses the traits below cannot see: the route (METHOD, path template) -> extra statuses.
# tests/api/test_openapi_errors.py checks that every entry names a real operation.
_SIGN_IN_STEP = frozenset({401, 429})  # wrong credentials or token; backend/auth/throttle.py
EXTRA_STATUSES: Mapping[tuple[str, str], frozenset[int]] = {
    # Credentials in the body instead of a bearer token: 401 when they are wrong.
    ("POST", "/auth/sign-in"): _SIGN_IN_STEP,
    ("POST", "/auth/mfa/verify"): _SIGN_IN_STEP,
    ("POST", "/auth/mfa/enroll"): frozenset({401}),
    ("POST", "/auth/refresh"): frozenset({401}),
    # A signed-in user's second factor is throttled like sign-in.
    ("POST", "/api/v1/me/mfa/totp/confirm"): frozenset({429}),
    ("POST", "/api/v1/me/mfa/totp/remove"): frozenset({429}),
    ("POST", "/api/v1/me/mfa/recovery-codes"): frozenset({429}),
    # backend/exports/budget.py: an approved export and a sync push read records.
    ("POST", "/api/v1/exports/{export_id}/approve"): frozenset({429}),
    ("POST", "/api/v1/sync"): frozenset({429}),
    # A single-use download link (unauthenticated: the token is the credential).
    ("GET", "/api/v1/exports/download/{token}"): frozenset({410}),
}

# Success answers that are not JSON, which a handler's return annotation cannot say:
# (METHOD, path template) -> status -> (body type or None, media type).
SUCCESS_BODIES: Mapping[tuple[str, str], Mapping[int, tuple[Any, str]]] = {
    ("GET", "/calendar/{feed}"): {200: (str, "text/calendar")},
    ("GET", "/api/v1/contacts/{record_id}/vcard"): {200: (str, "text/vcard")},
    ("GET", "/oauth/authorize"): {200: (str, "text/html"), 302: (None, "")},
    ("POST", "/oauth/authorize"): {200: (str, "text/html"), 303: (None, "")},
}
_SUCCESS_DESCRIPTIONS = {
    200: "The page or document",
    302: "Back to the app's redirect URI",
    303: "The next step",
}

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Traits:
    """What the document can tell about a handler's failures from its signature."""

    method: str
    path: str
    authenticated: bool
    json_body: bool
    path_ids: bool
    if_match: bool
    if_none_match: bool


def handler_traits(route: HTTPRoute, method: str, handler: HTTPRouteHandler) -> Traits:
    dependencies = handler.resolve_dependencies()
    used: set[str] = set()
    headers: set[str] = set()
    todo = [handler.parsed_fn_signature]
    while todo:  # the handler's parameters and, transitively, those of its dependencies
        signature = todo.pop()
        for name, field in signature.parameters.items():
            kwarg = field.kwarg_definition
            if isinstance(kwarg, ParameterKwarg) and kwarg.param_type is ParamType.HEADER:
                headers.add((kwarg.name or name).lower())
            if name in used:
                continue
            used.add(name)
            if name in dependencies:
                todo.append(dependencies[name].parsed_fn_signature)
    return Traits(
        method=method,
        path=route.path_format,
        authenticated=AUTH_DEPENDENCY in used,
        json_body="data" in used,
        path_ids=bool(route.path_parameters),
        if_match="if-match" in headers,
        if_none_match="if-none-match" in headers,
    )


def problem_statuses(t: Traits) -> set[int]:
    """The problem statuses an operation with these traits can answer."""
    statuses = {400, 500}
    if t.authenticated:
        statuses |= {401, 403}
        if t.method == "GET":
            statuses.add(429)  # every signed-in read counts toward the bulk-read budget
        if t.method in _WRITES:
            statuses.add(409)  # a conflicting state; a POST whose Idempotency-Key is running
        if t.method == "POST":
            statuses.add(422)  # an Idempotency-Key reused for another request
    if t.path_ids:
        statuses.add(404)
    if t.json_body:
        statuses |= {413, 415, 422}
    if t.if_match:
        statuses.add(412)
        if t.method in {"PATCH", "PUT"}:
            statuses.add(428)  # an edit must say which version it edits; a delete may not
    return statuses | EXTRA_STATUSES.get((t.method, t.path), frozenset())


def _spec(status: int | str, container: Any, media_type: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=container,
        description=DESCRIPTIONS.get(status, "Error"),
        media_type=media_type,
        generate_examples=False,
    )


def _problem(status: int | str) -> ResponseSpec:
    return _spec(status, Problem, PROBLEM_JSON)


def error_responses(t: Traits) -> dict[int | str, ResponseSpec]:
    """The documented error answers of one operation (and the success answers its signature
    cannot describe: 304, non-JSON bodies)."""
    if t.path.startswith("/oauth/"):
        responses = _oauth_responses(t)
    elif t.path == "/graphql":
        responses = _graphql_responses(t)
    elif t.path == "/ready":  # its own JSON status document, also when not ready
        responses = {503: _spec(503, dict[str, Any], "application/json"), 500: _problem(500)}
    elif t.path.startswith("/.well-known/") or t.path == "/health":
        responses = {500: _problem(500)}
    else:
        responses = {s: _problem(s) for s in sorted(problem_statuses(t))}
    if t.if_none_match:
        responses[304] = ResponseSpec(None, description=DESCRIPTIONS[304])
    for status, (body, media_type) in SUCCESS_BODIES.get((t.method, t.path), {}).items():
        responses[status] = ResponseSpec(
            body,
            description=_SUCCESS_DESCRIPTIONS[status],
            media_type=media_type,
            generate_examples=False,
        )
    responses["default"] = _problem("default")
    return responses


def _graphql_responses(t: Traits) -> dict[int | str, ResponseSpec]:
    """Strawberry's transport errors: 400 for a request it cannot read, 404 for GET (queries go
    by POST only). Documented as JSON GraphQL errors: issue 15 item 11 makes every GraphQL answer
    JSON (before that, Strawberry sends these as text/plain)."""
    if t.method != "POST":
        return {
            400: _problem(400),
            404: _spec(404, GraphQLErrorResponse, "application/json"),
            500: _problem(500),
        }
    return {
        400: _spec(400, GraphQLErrorResponse, "application/json"),
        413: _problem(413),
        415: _problem(415),
        500: _problem(500),
    }


def _oauth_responses(t: Traits) -> dict[int | str, ResponseSpec]:
    if t.path == "/oauth/authorize":  # pages for a person, not JSON; 429 while signing in
        pages = (400, 429) if t.method == "POST" else (400,)
        html: dict[int | str, ResponseSpec] = {s: _spec(s, str, "text/html") for s in pages}
        return html | {500: _problem(500)}
    statuses = (401, 403) if t.path == "/oauth/userinfo" else (400, 401)
    responses: dict[int | str, ResponseSpec] = {
        s: _spec(s, OAuthError, "application/json") for s in statuses
    }
    if t.method == "POST":
        responses[413] = _problem(413)
    responses[500] = _problem(500)
    return responses


class ErrorDocs(InitPlugin, ReceiveRoutePlugin):
    """Adds the error responses (and the bearer security scheme) to the OpenAPI document."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        config = app_config.openapi_config
        if config is not None:
            bearer = SecurityScheme(
                type="http",
                scheme="bearer",
                bearer_format="JWT",
                description="An access token from /auth/sign-in or /oauth/token.",
            )
            given = config.components
            # Litestar merges a list of Components into one when it builds the document.
            config.components = [
                *(given if isinstance(given, list) else [given]),
                Components(security_schemes={BEARER: bearer}),
            ]
        return app_config

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            responses: dict[int | str, ResponseSpec] = {}
            authenticated = False
            for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
                traits = handler_traits(route, method, handler)
                responses |= error_responses(traits)
                authenticated |= traits.authenticated
            # The handler's own `responses` win over the generic ones.
            responses |= {k: v for k, v in (handler.responses or {}).items()}
            # Litestar writes each key with str(): "default" is a valid responses key.
            handler.responses = cast(Mapping[int, ResponseSpec], responses)
            if authenticated and handler.security is None:
                handler.security = [{BEARER: []}]
