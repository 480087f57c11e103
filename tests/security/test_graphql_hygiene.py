"""GraphQL hygiene (issue 15, items 6, 8, 9 and the GraphQL half of 11): persisted queries are
registered only by signed-in callers, into a per-tenant bounded cache; introspection needs a
token; every answer at /graphql is JSON with errors[].extensions.code; export answers (REST
and GraphQL) carry no internal fields."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import GraphQLObjectType, build_schema

from backend.api.gql.export import SDL_PATH
from backend.api.gql.persisted import MAX_PER_TENANT
from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant
from tests.exports.helpers import add_contacts, request_export, set_rules
from tests.security.policy_helpers import gql_codes, user_with_roles

OPERATIONS = Path(__file__).parents[2] / "graphql" / "operations"
JSON_TYPES = ("application/json", "application/graphql-response+json")


def _digest(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


async def _persisted(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    digest: str,
    query: str | None = None,
    variables: dict[str, Any] | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "variables": variables or {},
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}},
    }
    if query is not None:
        payload["query"] = query
    response = await client.post("/graphql", json=payload, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(JSON_TYPES)
    body: dict[str, Any] = response.json()
    return body


def _document(label: str) -> str:
    """A distinct, cheap document (its hash is unknown until registered)."""
    return f"query Q{uuid.uuid4().hex} {{ __typename }} # {label}"


NO_TOKEN: dict[str, str] = {}
BAD_TOKEN = {"Authorization": "Bearer not-a-token"}


# -- item 6: persisted queries -----------------------------------------------------------------
@pytest.mark.parametrize("headers", [NO_TOKEN, BAD_TOKEN], ids=["no-token", "invalid-token"])
async def test_registration_without_a_token_is_refused_and_registers_nothing(
    services: Services, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    tenant = await new_tenant(services, client, "pq-anon")
    document = _document("anonymous")
    digest = _digest(document)
    refused = await _persisted(client, headers, digest, document)
    assert refused["data"] is None
    assert gql_codes(refused) == ["UNAUTHENTICATED"]
    # Not in the cache: a signed-in caller asking by hash is told to send the document.
    assert gql_codes(await _persisted(client, tenant.headers, digest)) == [
        "PERSISTED_QUERY_NOT_FOUND"
    ]
    # Looking a hash up without a token says nothing about the cache either.
    registered = await _persisted(client, tenant.headers, digest, document)
    assert registered == {"data": {"__typename": "Query"}}
    assert gql_codes(await _persisted(client, headers, digest)) == ["UNAUTHENTICATED"]


async def test_a_hash_registered_by_one_tenant_is_not_found_for_another(
    services: Services, client: httpx.AsyncClient
) -> None:
    a = await new_tenant(services, client, "pq-a")
    b = await new_tenant(services, client, "pq-b")
    document = _document("tenant a's")
    digest = _digest(document)
    assert "errors" not in await _persisted(client, a.headers, digest, document)
    assert await _persisted(client, a.headers, digest) == {"data": {"__typename": "Query"}}
    theirs = await _persisted(client, b.headers, digest)
    assert theirs["data"] is None
    assert [e["message"] for e in theirs["errors"]] == ["PersistedQueryNotFound"]
    assert gql_codes(theirs) == ["PERSISTED_QUERY_NOT_FOUND"]
    # B registering the same document does not disturb A's entry.
    assert "errors" not in await _persisted(client, b.headers, digest, document)
    assert "errors" not in await _persisted(client, a.headers, digest)


async def test_the_per_tenant_bound_evicts_that_tenants_oldest_only(
    services: Services, client: httpx.AsyncClient
) -> None:
    busy = await new_tenant(services, client, "pq-busy")
    quiet = await new_tenant(services, client, "pq-quiet")
    theirs = _document("quiet")
    assert "errors" not in await _persisted(client, quiet.headers, _digest(theirs), theirs)
    documents = [_document(f"busy {i}") for i in range(MAX_PER_TENANT + 1)]
    for document in documents:
        assert "errors" not in await _persisted(client, busy.headers, _digest(document), document)
    first, second, last = documents[0], documents[1], documents[-1]
    assert gql_codes(await _persisted(client, busy.headers, _digest(first))) == [
        "PERSISTED_QUERY_NOT_FOUND"
    ]
    for kept in (second, last):
        assert "errors" not in await _persisted(client, busy.headers, _digest(kept))
    # Another tenant's entries survive the busy tenant's churn.
    assert await _persisted(client, quiet.headers, _digest(theirs)) == {
        "data": {"__typename": "Query"}
    }


async def test_checked_in_operations_run_by_hash_for_every_tenant(
    services: Services, client: httpx.AsyncClient
) -> None:
    card = (OPERATIONS / "CallerCard.graphql").read_text(encoding="utf-8")
    mine = (OPERATIONS / "MyActivities.graphql").read_text(encoding="utf-8")
    for label in ("pq-ops-1", "pq-ops-2"):
        tenant = await new_tenant(services, client, label)
        (contact,) = await add_contacts(client, tenant, 1)
        found = await _persisted(client, tenant.headers, _digest(card), variables={"id": contact})
        assert "errors" not in found, found
        assert found["data"]["contact"]["id"] == contact
        listed = await _persisted(client, tenant.headers, _digest(mine))
        assert "errors" not in listed, listed
        assert listed["data"]["activities"]["edges"] == []
    # They are for signed-in callers only, like everything else.
    assert gql_codes(await _persisted(client, NO_TOKEN, _digest(mine))) == ["UNAUTHENTICATED"]


async def test_checked_in_operations_survive_a_full_tenant_cache(
    services: Services, client: httpx.AsyncClient
) -> None:
    tenant = await new_tenant(services, client, "pq-ops-full")
    mine = (OPERATIONS / "MyActivities.graphql").read_text(encoding="utf-8")
    # Sending a checked-in document with its hash does not take a place in the tenant's share.
    assert "errors" not in await _persisted(client, tenant.headers, _digest(mine), mine)
    for i in range(MAX_PER_TENANT + 1):
        document = _document(f"filler {i}")
        assert "errors" not in await _persisted(client, tenant.headers, _digest(document), document)
    assert "errors" not in await _persisted(client, tenant.headers, _digest(mine))


# -- item 8: introspection ---------------------------------------------------------------------
INTROSPECTION = [
    pytest.param("{ __schema { queryType { name } } }", id="schema"),
    pytest.param('{ __type(name: "Contact") { name } }', id="type"),
    pytest.param("{ s: __schema { types { name } } }", id="aliased"),
    pytest.param(
        "query { ...F } fragment F on Query { __schema { mutationType { name } } }",
        id="in-fragment",
    ),
    pytest.param(
        '{ __typename ... on Query { __type(name: "Export") { fields { name } } } }',
        id="inline-fragment",
    ),
]


@pytest.mark.parametrize("document", INTROSPECTION)
async def test_introspection_needs_a_token(
    client: httpx.AsyncClient, tenant_a: TenantUser, document: str
) -> None:
    # Signed in first, so a validation cache shared between the two kinds of caller would show.
    allowed = await gql(client, tenant_a, document)
    assert "errors" not in allowed, allowed
    assert allowed["data"]
    for headers in (NO_TOKEN, BAD_TOKEN):
        response = await client.post("/graphql", json={"query": document}, headers=headers)
        assert response.status_code == 200, response.text
        refused = response.json()
        assert refused.get("data") is None
        assert set(gql_codes(refused)) == {"UNAUTHENTICATED"}, refused
        assert "queryType" not in response.text and "Contact" not in response.text
    assert "errors" not in await gql(client, tenant_a, document)


async def test_typename_alone_needs_no_token(client: httpx.AsyncClient) -> None:
    assert await gql(client, None, "{ __typename }") == {"data": {"__typename": "Query"}}


# -- item 11: every answer is JSON with errors[].extensions.code -------------------------------
DEEP = 10_000
MALFORMED_BODIES = [
    pytest.param(b'{"query": "{ __typename ', "BAD_REQUEST", id="truncated-json"),
    pytest.param(b'{"query": "\xff"}', "BAD_REQUEST", id="invalid-utf8"),
    pytest.param(b'"{ __typename }"', "BAD_REQUEST", id="json-string"),
    pytest.param(b"42", "BAD_REQUEST", id="json-number"),
    pytest.param(b"null", "BAD_REQUEST", id="json-null"),
    pytest.param(b"", "BAD_REQUEST", id="empty-body"),
    pytest.param(b"[]", "BAD_REQUEST", id="empty-batch"),
    pytest.param(b'[{"query": "{ __typename }"}]', "BAD_REQUEST", id="batch"),
    pytest.param(b"{}", "BAD_REQUEST", id="no-query"),
    pytest.param(b'{"query": null}', "BAD_REQUEST", id="null-query"),
    pytest.param(b'{"query": 5}', "BAD_REQUEST", id="query-not-a-string"),
    pytest.param(b'{"query": "{ __typename }", "variables": []}', "BAD_REQUEST", id="variables"),
    pytest.param(b'{"query": "{ __typename }", "extensions": 1}', "BAD_REQUEST", id="extensions"),
    pytest.param(
        b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * DEEP + b"]" * DEEP + b"}}",
        "BAD_REQUEST",
        id="nested-too-deeply",
    ),
    pytest.param(
        b'{"query": "{ __typename }", "extensions": {"persistedQuery": '
        b'{"version": 1, "sha256Hash": "' + b"0" * 64 + b'"}}}',
        "BAD_REQUEST",
        id="persisted-hash-mismatch",
    ),
    pytest.param(
        b'{"query": "{ __typename }", "extensions": {"persistedQuery": "yes"}}',
        "BAD_REQUEST",
        id="persisted-not-an-object",
    ),
    pytest.param(
        b'{"extensions": {"persistedQuery": {"version": 2, "sha256Hash": "ab"}}}',
        "BAD_REQUEST",
        id="persisted-version",
    ),
    pytest.param(b'{"query": "{ __typename"}', "GRAPHQL_PARSE_FAILED", id="syntax-error"),
]


def assert_graphql_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(JSON_TYPES), response.text
    body: dict[str, Any] = response.json()
    assert isinstance(body["errors"], list) and body["errors"], body
    for error in body["errors"]:
        assert isinstance(error["message"], str) and error["message"]
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], body
    assert "Traceback" not in response.text
    return body


@pytest.mark.parametrize("headers", [NO_TOKEN, "signed-in"], ids=["anonymous", "signed-in"])
@pytest.mark.parametrize(("content", "code"), MALFORMED_BODIES)
async def test_a_malformed_request_gets_a_json_graphql_error(
    client: httpx.AsyncClient,
    tenant_a: TenantUser,
    headers: dict[str, str] | str,
    content: bytes,
    code: str,
) -> None:
    sent = tenant_a.headers if headers == "signed-in" else {}
    response = await client.post(
        "/graphql", content=content, headers={**sent, "Content-Type": "application/json"}
    )
    assert_graphql_error(response, 200 if code == "GRAPHQL_PARSE_FAILED" else 400, code)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/graphql",
        None,
    ],
)
async def test_a_body_that_is_not_json_gets_415_as_json(
    client: httpx.AsyncClient, tenant_a: TenantUser, content_type: str | None
) -> None:
    headers = dict(tenant_a.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await client.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers=headers
    )
    assert_graphql_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_json_content_type_is_matched_without_case_or_parameters(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    response = await client.post(
        "/graphql",
        content=b'{"query": "{ __typename }"}',
        headers={**tenant_a.headers, "Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_a_method_other_than_post_gets_405_as_json(
    client: httpx.AsyncClient, tenant_a: TenantUser, method: str
) -> None:
    response = await client.request(
        method,
        "/graphql",
        params={"query": "{ __typename }"},
        headers={**tenant_a.headers, "Accept": "application/json"},
    )
    assert_graphql_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "POST"


async def test_a_body_over_the_limit_gets_413_as_json(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    padding = " " * 1_100_000
    response = await client.post(
        "/graphql",
        content=('{"query": "{ __typename }"' + padding + "}").encode(),
        headers={**tenant_a.headers, "Content-Type": "application/json"},
    )
    assert_graphql_error(response, 413, "PAYLOAD_TOO_LARGE")


async def test_persisted_query_not_found_is_json(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    response = await client.post(
        "/graphql",
        json={"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "f" * 64}}},
        headers=tenant_a.headers,
    )
    body = assert_graphql_error(response, 200, "PERSISTED_QUERY_NOT_FOUND")
    assert body["errors"][0]["message"] == "PersistedQueryNotFound"


# -- item 9: export answers carry no internal fields -------------------------------------------
EXPORT_KEYS = {
    "id",
    "entity",
    "format",
    "fields",
    "filter",
    "status",
    "reason",
    "row_count",
    "requested_by",
    "decided_by",
    "decided_at",
    "created_at",
    "expires_at",
    "file_size",
    "downloads",
}
INTERNAL = ("file_key", "link_hash", "link_expires_at", "link_used_at", "tenant_id")


def _export(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == EXPORT_KEYS, sorted(set(body) ^ EXPORT_KEYS)
    return body


async def test_rest_export_answers_carry_only_public_keys(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "exp-keys")
    approver = await user_with_roles(services, client, admin, "admin2", ["tenant_admin"])
    manager = await user_with_roles(services, client, admin, "mgr", ["sales_manager"])
    await set_rules(
        client,
        admin,
        roles={
            "sales_manager": {"max_rows": 10, "approval_threshold": 2, "daily_rows": 100},
            "tenant_admin": {"max_rows": 100, "daily_rows": 1000},
        },
    )
    await add_contacts(client, manager, 3)
    # Ready at once (an admin's own export): the file and its sealed key exist already.
    ready = _export(await request_export(client, admin, fields=["id", "last_name"]), 201)
    assert ready["status"] == "ready"
    pending = _export(await request_export(client, manager, fields=["id"]), 201)
    assert pending["status"] == "pending"
    approved = _export(
        await client.post(f"/api/v1/exports/{pending['id']}/approve", headers=approver.headers)
    )
    assert approved["status"] == "ready"
    link = await client.post(f"/api/v1/exports/{pending['id']}/link", headers=manager.headers)
    assert link.status_code == 200, link.text
    assert set(link.json()) == {"url", "expires_at"}
    # With a file key and a link hash stored, reading it shows neither.
    seen = _export(await client.get(f"/api/v1/exports/{pending['id']}", headers=manager.headers))
    assert seen["status"] == "ready"
    other = _export(await request_export(client, manager, fields=["id"]), 201)
    denied = _export(
        await client.post(
            f"/api/v1/exports/{other['id']}/deny", json={"reason": "no"}, headers=admin.headers
        )
    )
    assert denied["status"] == "denied"
    for reader in (admin, manager):
        listed = await client.get("/api/v1/exports", headers=reader.headers)
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert items
        for item in items:
            assert set(item) == EXPORT_KEYS, sorted(set(item) ^ EXPORT_KEYS)
        for internal in INTERNAL:
            assert internal not in listed.text


GRAPHQL_EXPORT_FIELDS = {
    "id",
    "entity",
    "format",
    "fields",
    "filter",
    "status",
    "reason",
    "rowCount",
    "requestedBy",
    "decidedBy",
    "decidedAt",
    "createdAt",
    "expiresAt",
    "downloads",
}


async def test_the_graphql_export_type_has_no_internal_fields(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    # In the published SDL (graphql/schema.graphql, checked against the code elsewhere)...
    published = build_schema(SDL_PATH.read_text(encoding="utf-8"))
    export = published.get_type("Export")
    assert isinstance(export, GraphQLObjectType)
    assert set(export.fields) == GRAPHQL_EXPORT_FIELDS
    # And as a client sees it (introspection, signed in).
    result = await gql(client, tenant_a, '{ __type(name: "Export") { fields { name } } }')
    seen = {f["name"] for f in result["data"]["__type"]["fields"]}
    assert seen == GRAPHQL_EXPORT_FIELDS
    link = await gql(client, tenant_a, '{ __type(name: "ExportLink") { fields { name } } }')
    assert {f["name"] for f in link["data"]["__type"]["fields"]} == {"url", "expiresAt"}


async def test_an_idempotency_refusal_at_graphql_is_json(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={**tenant_a.headers, "Idempotency-Key": "has spaces"},
    )
    body = assert_graphql_error(response, 400, "INVALID_IDEMPOTENCY_KEY")
    assert body["errors"][0]["extensions"]["field"] == "Idempotency-Key"
