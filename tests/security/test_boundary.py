"""One rule at the door (backend/api/boundary.py): strings PostgreSQL cannot store (NUL, lone
UTF-16 surrogates) are refused with a 4xx naming the field, on every route and in every part of
a request, before anything runs (no throttle row, no security event, no write); a JSON body may
not repeat a key; a body on a JSON endpoint must be JSON (415), while the OAuth endpoints keep
taking forms."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from backend.runtime import Services
from tests.conftest import PASSWORD, TenantUser, new_tenant, new_user

PROBLEM_JSON = "application/problem+json"
NUL = "a\x00b"
Json = dict[str, Any]


def assert_refused(
    response: httpx.Response, status: int, field: str, code: str = "invalid_characters"
) -> None:
    assert "Traceback" not in response.text
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert (body["status"], body["code"], body["field"]) == (status, code, field), body
    assert body["detail"]


def raw_json(document: str) -> bytes:
    """A body exactly as written: escapes such as a lone \\ud800 stay in the JSON text."""
    return document.encode()


@pytest.fixture(scope="module")
async def admin(services: Services, client: httpx.AsyncClient) -> AsyncIterator[TenantUser]:
    yield await new_tenant(services, client, "boundary")


async def _counts(services: Services, tenant: TenantUser) -> tuple[int, int]:
    """Rows in the (global) sign-in throttle and in the tenant's security events."""
    async with services.db.plain_transaction() as conn:
        throttle = (await conn.execute(text("select count(*) from auth_throttle"))).scalar_one()
    async with services.db.tenant_transaction(tenant.tenant_id) as conn:
        events = (await conn.execute(text("select count(*) from security_events"))).scalar_one()
    return int(throttle), int(events)


# -- unauthenticated sign-in ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", NUL),
        ("tenant", NUL),
        ("password", "pass\x00word long enough"),
        ("device_name", NUL),
    ],
)
async def test_nul_in_sign_in_is_refused_before_throttling_or_audit(
    services: Services, client: httpx.AsyncClient, admin: TenantUser, field: str, value: str
) -> None:
    body = {"tenant": admin.slug, "email": admin.email, "password": PASSWORD, field: value}
    before = await _counts(services, admin)
    response = await client.post("/auth/sign-in", json=body)
    assert_refused(response, 422, field)
    assert "access_token" not in response.text
    assert await _counts(services, admin) == before


async def test_a_lone_surrogate_in_sign_in_is_refused(
    services: Services, client: httpx.AsyncClient, admin: TenantUser
) -> None:
    before = await _counts(services, admin)
    document = f'{{"tenant": "{admin.slug}", "email": "x\\udfff@y.example", "password": "p"}}'
    response = await client.post(
        "/auth/sign-in", content=raw_json(document), headers={"content-type": "application/json"}
    )
    assert_refused(response, 422, "email")
    assert await _counts(services, admin) == before


async def test_sign_in_still_works_after_refusals(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    """Control: the refusals above did not throttle the account."""
    for _ in range(7):  # more than the account's free failures
        refused = await client.post(
            "/auth/sign-in", json={"tenant": admin.slug, "email": NUL, "password": PASSWORD}
        )
        assert refused.status_code == 422
    ok = await client.post(
        "/auth/sign-in", json={"tenant": admin.slug, "email": admin.email, "password": PASSWORD}
    )
    assert ok.status_code == 200, ok.text


# -- filters, bodies and paths of signed-in requests ----------------------------------------------
QUERY_CASES = [
    pytest.param("/api/v1/audit-events", "type", id="audit-events-type"),
    pytest.param("/api/v1/history", "field", id="history-field"),
    pytest.param("/api/v1/history", "entity", id="history-entity"),
    pytest.param("/api/v1/history", "channel", id="history-channel"),
    pytest.param("/api/v1/contacts", "q", id="contacts-q"),
    pytest.param("/api/v1/sync", "device_name", id="sync-device-name"),
    pytest.param("/api/v1/sync", "entities", id="sync-entities"),
    pytest.param("/api/v1/exports", "limit", id="exports-limit"),
]


@pytest.mark.parametrize(("path", "name"), QUERY_CASES)
async def test_nul_in_a_query_parameter_is_a_400_naming_it(
    client: httpx.AsyncClient, admin: TenantUser, path: str, name: str
) -> None:
    response = await client.get(path, params={name: NUL}, headers=admin.headers)
    assert_refused(response, 400, name)


async def test_nul_in_a_query_parameter_name_is_refused(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    response = await client.get("/api/v1/contacts?a%00=1", headers=admin.headers)
    assert_refused(response, 400, "a\\u0000")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        pytest.param(f"/api/v1/contacts/{NUL}", "record_id", id="record-id"),
        pytest.param(f"/api/v1/contacts/{NUL}/history", "record_id", id="record-history"),
        pytest.param(f"/api/v1/contacts/{NUL}/vcard", "record_id", id="vcard"),
        pytest.param(f"/api/v1/exports/{NUL}", "export_id", id="export"),
        pytest.param(f"/api/v1/exports/download/{NUL}", "token", id="export-download"),
        pytest.param(f"/calendar/{NUL}.ics", "feed", id="calendar-feed"),
        pytest.param(f"/api/v1/lookup/phone/{NUL}", "number", id="phone-lookup"),
    ],
)
async def test_nul_in_a_path_parameter_is_a_400_naming_it(
    client: httpx.AsyncClient, admin: TenantUser, path: str, field: str
) -> None:
    response = await client.get(path.replace("\x00", "%00"), headers=admin.headers)
    assert_refused(response, 400, field)


BODY_CASES = [
    pytest.param(
        "POST",
        "/api/v1/sync",
        {
            "device_id": str(uuid.uuid4()),
            "changes": [
                {"client_id": "ok", "entity": "contact", "op": "create", "fields": {}},
                {"client_id": NUL, "entity": "contact", "op": "create", "fields": {}},
            ],
        },
        "changes[1].client_id",
        id="sync-client-id",
    ),
    pytest.param(
        "POST",
        "/api/v1/sync",
        {
            "device_id": str(uuid.uuid4()),
            "changes": [
                {
                    "client_id": "c1",
                    "entity": "contact",
                    "op": "create",
                    "fields": {"last_name": NUL},
                },
            ],
        },
        "changes[0].fields.last_name",
        id="sync-field-value",
    ),
    pytest.param(
        "POST",
        "/api/v1/oauth-clients",
        {"name": NUL, "client_type": "confidential", "grant_types": ["client_credentials"]},
        "name",
        id="oauth-client-name",
    ),
    pytest.param("POST", "/api/v1/exports", {"entity": NUL}, "entity", id="export-entity"),
    pytest.param(
        "POST",
        "/api/v1/exports",
        {"entity": "contact", "fields": ["id", NUL]},
        "fields[1]",
        id="export-field",
    ),
    pytest.param("POST", "/api/v1/roles", {"name": NUL}, "name", id="role-name"),
    pytest.param("POST", "/api/v1/teams", {"name": NUL}, "name", id="team-name"),
    pytest.param(
        "POST", "/api/v1/contacts", {"last_name": "X", NUL: 1}, "a\\u0000b", id="nul-in-a-key"
    ),
    pytest.param(
        "PUT", "/api/v1/export-rules", {"rules": [{"x": NUL}]}, "rules[0].x", id="export-rules"
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BODY_CASES)
async def test_nul_in_a_json_body_is_a_422_naming_its_path(
    client: httpx.AsyncClient, admin: TenantUser, method: str, path: str, body: Json, field: str
) -> None:
    response = await client.request(method, path, json=body, headers=admin.headers)
    assert_refused(response, 422, field)


async def test_nothing_is_written_for_a_refused_body(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    before = (await client.get("/api/v1/oauth-clients", headers=admin.headers)).json()
    for name in (NUL, "ok\x00", "\x00"):
        made = await client.post(
            "/api/v1/oauth-clients",
            json={"name": name, "client_type": "confidential"},
            headers=admin.headers,
        )
        assert made.status_code == 422, made.text
    assert (await client.get("/api/v1/oauth-clients", headers=admin.headers)).json() == before


@pytest.mark.parametrize(
    ("escape", "field"),
    [
        pytest.param("\\ud800", "last_name", id="high-surrogate"),
        pytest.param("\\udc00", "last_name", id="low-surrogate"),
        pytest.param("x\\ude00\\ud83d", "last_name", id="pair-reversed"),
        pytest.param("\\u0000", "last_name", id="escaped-nul"),
    ],
)
async def test_escaped_unstorable_characters_in_json_are_refused(
    client: httpx.AsyncClient, admin: TenantUser, escape: str, field: str
) -> None:
    response = await client.post(
        "/api/v1/contacts",
        content=raw_json(f'{{"last_name": "{escape}"}}'),
        headers={**admin.headers, "content-type": "application/json"},
    )
    assert_refused(response, 422, field)


async def test_a_valid_surrogate_pair_is_stored(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    """Control: an escaped pair is one ordinary character (U+1F600)."""
    response = await client.post(
        "/api/v1/contacts",
        content=raw_json('{"last_name": "Smile \\ud83d\\ude00"}'),
        headers={**admin.headers, "content-type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["last_name"] == "Smile \U0001f600"


# -- GraphQL --------------------------------------------------------------------------------------
async def _graphql(client: httpx.AsyncClient, user: TenantUser | None, body: bytes) -> Json:
    headers = {"content-type": "application/json", **(user.headers if user else {})}
    response = await client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    result: Json = response.json()
    assert "data" not in result or result["data"] is None
    return result


def _only_error(result: Json) -> Json:
    [error] = result["errors"]
    assert error["message"]
    extensions: Json = error["extensions"]
    return extensions


AUDIT = "query($t: String) { auditEvents(type: $t) { edges { node { id } } } }"
CREATE = (
    "mutation($input: CreateContactInput!) { createContact(input: $input) { errors { code } } }"
)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        pytest.param('{ auditEvents(type: "\\u0000") { edges { node { id } } } }', "type",
                     id="escaped-nul-literal"),
        pytest.param('{ auditEvents(type: "x\\u{0}") { edges { node { id } } } }', "type",
                     id="braced-escape-literal"),
        pytest.param(
            'mutation { createContact(input: {lastName: "\\u0000"}) { errors { code } } }',
            "input.lastName",
            id="nested-input-literal",
        ),
    ],
)  # fmt: skip
async def test_graphql_string_literals_carrying_nul_are_refused(
    client: httpx.AsyncClient, admin: TenantUser, document: str, field: str
) -> None:
    body = json.dumps({"query": document}).encode()
    extensions = _only_error(await _graphql(client, admin, body))
    assert extensions == {"code": "BAD_USER_INPUT", "reason": "invalid_characters", "field": field}


@pytest.mark.parametrize(
    ("query", "variables", "field"),
    [
        pytest.param(AUDIT, '{"t": "\\u0000"}', "variables.t", id="variable-nul"),
        pytest.param(AUDIT, '{"t": "\\ud800"}', "variables.t", id="variable-surrogate"),
        pytest.param(CREATE, '{"input": {"lastName": "x\\u0000"}}', "variables.input.lastName",
                     id="input-variable"),
    ],
)  # fmt: skip
async def test_graphql_variables_carrying_unstorable_characters_are_refused(
    client: httpx.AsyncClient, admin: TenantUser, query: str, variables: str, field: str
) -> None:
    body = f'{{"query": {json.dumps(query)}, "variables": {variables}}}'.encode()
    extensions = _only_error(await _graphql(client, admin, body))
    assert extensions == {"code": "BAD_USER_INPUT", "reason": "invalid_characters", "field": field}


async def test_graphql_refuses_nul_without_a_token_too(client: httpx.AsyncClient) -> None:
    body = json.dumps({"query": '{ auditEvents(type: "\\u0000") { edges { node { id } } } }'})
    extensions = _only_error(await _graphql(client, None, body.encode()))
    assert extensions["field"] == "type"


async def test_graphql_escapes_that_are_fine_still_run(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    """Control: an escaped ordinary character passes the door."""
    body = json.dumps({"query": '{ auditEvents(type: "\\u0061uth") { edges { node { id } } } }'})
    response = await client.post(
        "/graphql", content=body, headers={**admin.headers, "content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["auditEvents"] == {"edges": []}


# -- duplicate keys -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "document", "field"),
    [
        pytest.param("/api/v1/contacts", '{"last_name": "A", "last_name": "B"}', "last_name",
                     id="top-level"),
        pytest.param(
            "/api/v1/sync",
            '{"device_id": "d", "changes": [{"client_id": "1", "op": "create", "op": "delete",'
            ' "entity": "contact"}]}',
            "changes[0].op",
            id="nested",
        ),
    ],
)  # fmt: skip
async def test_a_repeated_json_key_is_refused(
    client: httpx.AsyncClient, admin: TenantUser, path: str, document: str, field: str
) -> None:
    before = (await client.get("/api/v1/contacts", headers=admin.headers)).json()
    headers = {**admin.headers, "content-type": "application/json"}
    response = await client.post(path, content=document.encode(), headers=headers)
    assert_refused(response, 400, field, code="duplicate_key")
    assert (await client.get("/api/v1/contacts", headers=admin.headers)).json() == before


async def test_a_repeated_key_cannot_smuggle_a_second_email_into_sign_in(
    services: Services, client: httpx.AsyncClient, admin: TenantUser
) -> None:
    document = json.dumps({"tenant": admin.slug, "password": PASSWORD})[:-1]
    document += f', "email": "someone@else.example", "email": "{admin.email}"}}'
    before = await _counts(services, admin)
    response = await client.post(
        "/auth/sign-in", content=document.encode(), headers={"content-type": "application/json"}
    )
    assert_refused(response, 400, "email", code="duplicate_key")
    assert await _counts(services, admin) == before


async def test_graphql_refuses_a_repeated_key(client: httpx.AsyncClient, admin: TenantUser) -> None:
    body = b'{"query": "{ __typename }", "query": "{ __schema { types { name } } }"}'
    extensions = _only_error(await _graphql(client, admin, body))
    assert extensions == {"code": "BAD_USER_INPUT", "reason": "duplicate_key", "field": "query"}


async def test_malformed_json_is_still_a_400_problem(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    response = await client.post(
        "/api/v1/contacts",
        content=b'{"last_name": "A",',
        headers={**admin.headers, "content-type": "application/json"},
    )
    assert_refused(response, 400, "body", code="malformed_json")


# -- media types ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
async def test_a_json_endpoint_refuses_other_media_types_with_415(
    client: httpx.AsyncClient, admin: TenantUser, content_type: str | None
) -> None:
    headers = dict(admin.headers)
    if content_type is not None:
        headers["content-type"] = content_type
    before = (await client.get("/api/v1/contacts", headers=admin.headers)).json()
    response = await client.post(
        "/api/v1/contacts", content=b'{"last_name": "Typed"}', headers=headers
    )
    assert_refused(response, 415, "Content-Type", code="unsupported_media_type")
    assert (await client.get("/api/v1/contacts", headers=admin.headers)).json() == before


async def test_sign_in_refuses_a_text_plain_body(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    """A text/plain POST is what a cross-site form can send without a preflight."""
    body = json.dumps({"tenant": admin.slug, "email": admin.email, "password": PASSWORD})
    response = await client.post(
        "/auth/sign-in", content=body.encode(), headers={"content-type": "text/plain"}
    )
    assert_refused(response, 415, "Content-Type", code="unsupported_media_type")


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/merge-patch+json"]
)
async def test_json_media_types_are_accepted(
    client: httpx.AsyncClient, admin: TenantUser, content_type: str
) -> None:
    response = await client.post(
        "/api/v1/contacts",
        content=b'{"last_name": "Typed"}',
        headers={**admin.headers, "content-type": content_type},
    )
    assert response.status_code == 201, response.text


async def test_graphql_refuses_other_media_types_in_its_own_shape(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    response = await client.post(
        "/graphql",
        content=b'{"query": "{ __typename }"}',
        headers={**admin.headers, "content-type": "text/plain"},
    )
    assert response.status_code == 415, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert _only_error(response.json())["reason"] == "unsupported_media_type"


async def test_a_post_without_a_body_needs_no_media_type(
    client: httpx.AsyncClient, services: Services, admin: TenantUser
) -> None:
    user = await new_user(services, client, admin, f"feed-{uuid.uuid4().hex[:6]}")
    response = await client.post("/api/v1/me/calendar-feed", headers=user.headers)
    assert response.status_code == 201, response.text


# -- OAuth forms ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
async def test_nul_in_an_oauth_form_is_an_oauth_error(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(
        path,
        data={"grant_type": "client_credentials", "client_id": NUL, "token": "t"},
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert (body["code"], body["field"]) == ("invalid_characters", "client_id")
    assert response.headers["cache-control"] == "no-store"


async def test_oauth_forms_still_work(client: httpx.AsyncClient) -> None:
    """Control: a form post reaches the token endpoint (and is refused for its credentials)."""
    response = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": "nobody"}
    )
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] in ("invalid_client", "invalid_request")
    assert "code" not in response.json()


async def test_nul_in_the_authorize_page_query_is_an_error_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/oauth/authorize?response_type=code&client_id=%00")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers
    assert "<form" not in response.text
