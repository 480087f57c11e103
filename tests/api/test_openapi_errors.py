"""The OpenAPI document describes every operation's error answers as the problems the API really
sends (application/problem+json, components/schemas/Problem), and it is valid OpenAPI 3.1."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from backend.api.rest.openapi_errors import EXTRA_STATUSES
from tests.conftest import TenantUser

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
OAUTH_ERROR_REF = {"$ref": "#/components/schemas/OAuthError"}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Operations whose errors follow another standard (see backend/api/rest/openapi_errors.py).
OTHER_FORMATS = ("/oauth/", "/graphql")
# Operations that take no input and need no token: they fail only as a server error.
NO_INPUT = {"/health", "/ready"}


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]
    assert len(found) > 90  # every route, not a handful
    return found


def is_problem(response: dict[str, Any]) -> bool:
    return response.get("content") == {PROBLEM_JSON: {"schema": PROBLEM_REF}}


def template_of(document: dict[str, Any], path: str) -> str:
    """The documented path template a concrete path falls under."""
    parts = path.split("/")
    for template in sorted(document["paths"], key=lambda t: t.count("{")):  # literal first
        pieces = template.split("/")
        if len(pieces) == len(parts) and all(
            p == q or (p.startswith("{") and p.endswith("}"))
            for p, q in zip(pieces, parts, strict=True)
        ):
            return str(template)
    raise AssertionError(f"{path} is not in the document")


def assert_documented(
    document: dict[str, Any], method: str, path: str, response: httpx.Response
) -> None:
    """The status is documented for the operation, with this body's media type and schema."""
    operation = document["paths"][template_of(document, path)][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], (method, path, status, sorted(operation["responses"]))
    documented = operation["responses"][status].get("content")
    if not response.content:
        assert not documented, (method, path, status, "documents a body it does not send")
        return
    media_type = response.headers["content-type"].split(";")[0].strip()
    assert documented and media_type in documented, (method, path, status, media_type, documented)
    if "json" not in media_type:
        return
    schema = {**documented[media_type]["schema"], "components": document["components"]}
    errors = list(OAS31Validator(schema).iter_errors(response.json()))
    assert not errors, [e.message for e in errors]


async def test_the_document_is_valid_openapi_3_1(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.1")
    validate(openapi)  # raises on any violation of the OpenAPI 3.1 schema


async def test_the_problem_schema_matches_what_the_api_emits(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    problem = schemas["Problem"]
    assert problem["type"] == "object"
    assert set(problem["properties"]) == {
        "type",
        "title",
        "status",
        "detail",
        "code",
        "field",
        "errors",
    }
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert problem.get("additionalProperties", True) is not False  # e.g. retry_after, mfa_token
    items = problem["properties"]["errors"]["items"]
    item = schemas[items["$ref"].rsplit("/", 1)[1]]
    assert set(item["required"]) == set(item["properties"]) == {"field", "code", "message"}


async def test_every_operation_documents_its_errors_as_problems(openapi: dict[str, Any]) -> None:
    for path, method, operation in operations(openapi):
        responses = operation["responses"]
        where = f"{method.upper()} {path}"
        assert is_problem(responses["500"]), where
        assert is_problem(responses["default"]), where
        client_errors = {s: r for s, r in responses.items() if s.startswith("4")}
        if path in NO_INPUT or path.startswith("/.well-known/"):
            continue
        assert client_errors, where
        if path.startswith(OTHER_FORMATS):
            continue
        assert "400" in client_errors, where
        for status, response in client_errors.items():
            assert is_problem(response), (where, status)


async def test_statuses_follow_what_each_operation_is(openapi: dict[str, Any]) -> None:
    for path, method, operation in operations(openapi):
        if path.startswith(OTHER_FORMATS) or path in NO_INPUT or path.startswith("/.well-known"):
            continue
        statuses = set(operation["responses"])
        where = f"{method.upper()} {path}"
        if operation.get("security"):
            assert {"401", "403"} <= statuses, where
        if "{" in path:
            assert "404" in statuses, where
        if "requestBody" in operation:
            assert {"413", "415", "422"} <= statuses, where
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        if "If-Match" in headers:
            assert "412" in statuses, where
        if "If-None-Match" in headers:
            assert "304" in statuses and "content" not in operation["responses"]["304"], where
    paths = openapi["paths"]
    assert {"412", "428"} <= set(paths["/api/v1/accounts/{record_id}"]["patch"]["responses"])
    assert "429" in paths["/api/v1/accounts"]["get"]["responses"]  # the read budget
    assert "429" in paths["/auth/sign-in"]["post"]["responses"]  # the sign-in back-off
    assert not paths["/auth/sign-in"]["post"].get("security")  # no token needed to sign in
    assert paths["/api/v1/accounts"]["get"]["security"] == [{"BearerToken": []}]
    assert openapi["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"


async def test_oauth_errors_are_documented_in_the_oauth_format(openapi: dict[str, Any]) -> None:
    token = openapi["paths"]["/oauth/token"]["post"]["responses"]
    assert token["400"]["content"] == {"application/json": {"schema": OAUTH_ERROR_REF}}
    assert is_problem(token["413"])  # the body limit is Litestar's, answered as a problem
    userinfo = openapi["paths"]["/oauth/userinfo"]["get"]["responses"]
    assert set(userinfo["401"]["content"]) == {"application/json"}
    authorize = openapi["paths"]["/oauth/authorize"]["get"]["responses"]
    assert set(authorize["400"]["content"]) == {"text/html"}


async def test_irregular_statuses_name_real_operations(openapi: dict[str, Any]) -> None:
    for method, path in EXTRA_STATUSES:
        assert method.lower() in openapi["paths"].get(path, {}), (method, path)
        for status in EXTRA_STATUSES[(method, path)]:
            assert str(status) in openapi["paths"][path][method.lower()]["responses"]


async def test_real_error_answers_are_documented_and_conform(
    client: httpx.AsyncClient, openapi: dict[str, Any], tenant_a: TenantUser
) -> None:
    auth = tenant_a.headers
    seen: list[int] = []

    async def check(method: str, path: str, expected: int, **kwargs: Any) -> httpx.Response:
        response = await client.request(method, path, **kwargs)
        assert response.status_code == expected, (method, path, response.text)
        assert_documented(openapi, method, path, response)
        seen.append(response.status_code)
        return response

    # 401 without a token
    await check("GET", "/api/v1/accounts", 401)
    # 404 for an unknown id
    await check("GET", f"/api/v1/accounts/{uuid.uuid4()}", 404, headers=auth)
    # 400 for a cursor the list never returned
    await check("GET", "/api/v1/accounts", 400, params={"after": "not-a-cursor"}, headers=auth)
    # 400 for malformed JSON
    json_type = {**auth, "content-type": "application/json"}
    await check("POST", "/api/v1/accounts", 400, content=b"{", headers=json_type)
    # 422 for a body that fails validation
    bad = await check("POST", "/api/v1/accounts", 422, json={"name": ""}, headers=auth)
    assert bad.json()["errors"][0]["field"] == "name"
    created = await client.post("/api/v1/accounts", json={"name": "Acme"}, headers=auth)
    assert created.status_code == 201, created.text
    item = f"/api/v1/accounts/{created.json()['id']}"
    # 428 for a PATCH that does not say which version it edits
    await check("PATCH", item, 428, json={"name": "Acme 2"}, headers=auth)
    updated = await client.patch(item, json={"name": "Acme 2"}, headers={**auth, "If-Match": '"1"'})
    assert updated.status_code == 200, updated.text
    # 412 for a stale If-Match
    await check("PATCH", item, 412, json={"name": "Acme 3"}, headers={**auth, "If-Match": '"1"'})
    # 413 for a body over the limit
    await check("POST", "/api/v1/accounts", 413, json={"name": "x" * 1_100_000}, headers=auth)
    # 409 for a state that does not allow it; 401 for wrong credentials on a public route
    await check("POST", f"/api/v1/users/{tenant_a.user_id}/deactivate", 409, headers=auth)
    wrong = {"tenant": tenant_a.slug, "email": tenant_a.email, "password": "wrong password"}
    await check("POST", "/auth/sign-in", 401, json=wrong)
    await check("GET", "/calendar/nothing.ics", 404)
    # The OAuth endpoints answer in their own documented formats (JSON, or a page).
    await check("POST", "/oauth/token", 400, data={"grant_type": "password"})
    await check("GET", "/oauth/userinfo", 401)
    await check("GET", "/oauth/authorize", 400)
    assert sorted(set(seen)) == [400, 401, 404, 409, 412, 413, 422, 428]


async def test_real_success_answers_are_documented(
    client: httpx.AsyncClient, openapi: dict[str, Any], tenant_a: TenantUser
) -> None:
    auth = tenant_a.headers

    async def check(method: str, path: str, expected: int, **kwargs: Any) -> httpx.Response:
        response = await client.request(method, path, **kwargs)
        assert response.status_code == expected, (method, path, response.text)
        assert_documented(openapi, method, path, response)
        return response

    created = await check("POST", "/api/v1/contacts", 201, json={"last_name": "Doe"}, headers=auth)
    item = f"/api/v1/contacts/{created.json()['id']}"
    listed = await check("GET", "/api/v1/contacts", 200, headers=auth)
    assert set(listed.json()) == {"items", "next"}
    tag = (await check("GET", item, 200, headers=auth)).headers["ETag"]
    await check("GET", item, 304, headers={**auth, "If-None-Match": tag})
    vcard = await check("GET", f"{item}/vcard", 200, headers=auth)
    assert vcard.headers["content-type"].startswith("text/vcard")
    await check("DELETE", item, 204, headers=auth)
    await check("GET", "/ready", 200)
