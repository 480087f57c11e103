"""Bad input gets a clear 4xx problem (or a GraphQL payload error) naming the field at fault,
never a stack trace, and nothing is written."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant

PROBLEM_JSON = "application/problem+json"
ACCOUNTS = "/api/v1/accounts"
CONTACTS = "/api/v1/contacts"
MINIMAL = {ACCOUNTS: {"name": "Valid GmbH"}, CONTACTS: {"last_name": "Valid"}}


@dataclass
class Fresh:
    """A tenant only this module writes to, with one account and one contact in it."""

    user: TenantUser
    account: dict[str, Any]
    contact: dict[str, Any]

    def record(self, collection: str) -> dict[str, Any]:
        return self.account if collection == ACCOUNTS else self.contact


@pytest.fixture(scope="module")
async def fresh(services: Services, client: httpx.AsyncClient) -> AsyncIterator[Fresh]:
    user = await new_tenant(services, client, "badinput")
    records = []
    for collection in (ACCOUNTS, CONTACTS):
        created = await client.post(collection, json=MINIMAL[collection], headers=user.headers)
        assert created.status_code == 201, created.text
        records.append(created.json())
    yield Fresh(user, records[0], records[1])


async def snapshot(client: httpx.AsyncClient, user: TenantUser) -> dict[str, list[Any]]:
    """Every record of the tenant, per collection, read through the list endpoint."""
    result: dict[str, list[Any]] = {}
    for collection in (ACCOUNTS, CONTACTS):
        items: list[Any] = []
        params: dict[str, str | int] = {"limit": 200}
        while True:
            response = await client.get(collection, params=params, headers=user.headers)
            assert response.status_code == 200, response.text
            page = response.json()
            items.extend(page["items"])
            if page["next"] is None:
                break
            params["after"] = page["next"]
        result[collection] = items
    return result


def assert_problem(response: httpx.Response, status: int, code: str, fault: str | None) -> None:
    assert "Traceback" not in response.text
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert body["status"] == status
    for key in ("title", "detail", "code"):
        assert isinstance(body[key], str), body
        assert body[key].strip(), body
    assert body["code"] == code, body
    assert body.get("field") == fault, body


@dataclass(frozen=True)
class Case:
    method: str
    collection: str
    status: int
    code: str
    fault: str
    json_body: Any = None
    content: bytes | None = None
    params: dict[str, str] = field(default_factory=dict)
    if_match: str | None = None
    on_record: bool = False  # PATCH the module's existing record instead of creating


def post(collection: str, body: Any, status: int, code: str, fault: str) -> Case:
    return Case("POST", collection, status, code, fault, json_body=body)


def raw(collection: str, content: bytes, status: int, code: str, fault: str) -> Case:
    return Case("POST", collection, status, code, fault, content=content)


def listing(collection: str, params: dict[str, str], code: str, fault: str) -> Case:
    return Case("GET", collection, 400, code, fault, params=params)


def patch(collection: str, body: Any, if_match: str | None, status: int, code: str) -> Case:
    fault = "If-Match" if if_match is None or "garbage" in if_match else "version"
    return Case("PATCH", collection, status, code, fault, body, if_match=if_match, on_record=True)


NUL = "Bad\x00Name"
DEEP = 200_000  # levels of JSON nesting that still fit well under the body limit


def forged_cursor(*parts: Any) -> str:
    """A cursor the server never issued: base64url JSON shaped like real ones."""
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


SOME_ID = str(uuid.uuid4())
CASES = [
    # the body's shape and types
    pytest.param(post(CONTACTS, {"last_name": "X", "nickname": "Y"}, 400, "unknown_field",
                      "nickname"), id="unknown-field"),
    pytest.param(post(ACCOUNTS, {"name": "X", "owner_id": str(uuid.uuid4())}, 400,
                      "unknown_field", "owner_id"), id="owner-id-not-writable-on-create"),
    pytest.param(post(CONTACTS, {"last_name": 42}, 400, "invalid_type", "last_name"),
                 id="number-for-last_name"),
    pytest.param(post(CONTACTS, {"last_name": "X", "tags": "vip"}, 400, "invalid_type", "tags"),
                 id="string-for-tags"),
    pytest.param(post(CONTACTS, {"last_name": "X", "tags": ["ok", 7]}, 400, "invalid_type",
                      "tags"), id="number-in-tags"),
    pytest.param(post(CONTACTS, {"last_name": "X", "email": {"a": 1}}, 400, "invalid_type",
                      "email"), id="object-for-email"),
    pytest.param(post(ACCOUNTS, {"name": ["X"]}, 400, "invalid_type", "name"),
                 id="array-for-name"),
    # field rules
    pytest.param(post(CONTACTS, {"last_name": "x" * 101}, 422, "too_long", "last_name"),
                 id="last_name-101-chars"),
    pytest.param(post(CONTACTS, {"last_name": "X", "notes": "n" * 10_001}, 422, "too_long",
                      "notes"), id="notes-10001-chars"),
    pytest.param(post(ACCOUNTS, {"name": "x" * 201}, 422, "too_long", "name"),
                 id="name-201-chars"),
    pytest.param(post(CONTACTS, {"last_name": "X", "email": "not-an-email"}, 422,
                      "invalid_email", "email"), id="invalid-email"),
    pytest.param(post(CONTACTS, {"last_name": "X", "email": "a@b@c.example"}, 422,
                      "invalid_email", "email"), id="invalid-email-two-ats"),
    pytest.param(post(ACCOUNTS, {"name": "X", "website": "javascript:alert(1)"}, 422,
                      "invalid_url", "website"), id="invalid-website-scheme"),
    pytest.param(post(ACCOUNTS, {"name": "X", "website": "example.com"}, 422, "invalid_url",
                      "website"), id="invalid-website-no-scheme"),
    pytest.param(post(ACCOUNTS, {"name": "X", "country": "1A"}, 422, "invalid_country",
                      "country"), id="invalid-country-name"),
    pytest.param(post(ACCOUNTS, {"name": "X", "website": "http://[::1"}, 422, "invalid_url",
                      "website"), id="invalid-website-broken-ipv6"),
    pytest.param(post(ACCOUNTS, {"name": "X", "country": "Germany"}, 422, "too_long",
                      "country"), id="country-too-long"),
    pytest.param(post(CONTACTS, {"last_name": "X", "country": "de"}, 422, "invalid_country",
                      "country"), id="invalid-country-lowercase"),
    pytest.param(post(CONTACTS, {"last_name": "X", "phone": "call me"}, 422, "invalid_phone",
                      "phone"), id="invalid-phone"),
    pytest.param(post(CONTACTS, {"last_name": NUL}, 422, "invalid_characters", "last_name"),
                 id="nul-in-last_name"),
    pytest.param(post(ACCOUNTS, {"name": NUL}, 422, "invalid_characters", "name"),
                 id="nul-in-name"),
    pytest.param(post(CONTACTS, {"last_name": "X", "notes": NUL}, 422, "invalid_characters",
                      "notes"), id="nul-in-multiline-notes"),
    # refused at the door (backend/api/boundary.py), which names the element
    pytest.param(post(CONTACTS, {"last_name": "X", "tags": ["a\x00b"]}, 422,
                      "invalid_characters", "tags[0]"), id="nul-in-tag"),
    pytest.param(post(CONTACTS, {"last_name": "X", "tags": ["t"] * 51}, 422, "too_many",
                      "tags"), id="too-many-tags"),
    pytest.param(post(CONTACTS, {"last_name": "X", "account_id": "acme"}, 422, "invalid_uuid",
                      "account_id"), id="non-uuid-account_id"),
    pytest.param(post(CONTACTS, {"last_name": "X", "account_id": str(uuid.uuid4())}, 422,
                      "unknown_reference", "account_id"), id="unknown-account_id"),
    pytest.param(post(CONTACTS, {"first_name": "Only"}, 400, "required", "last_name"),
                 id="missing-last_name"),
    pytest.param(post(ACCOUNTS, {"industry": "Only"}, 400, "required", "name"),
                 id="missing-name"),
    pytest.param(post(ACCOUNTS, {"name": "   "}, 422, "required", "name"), id="blank-name"),
    pytest.param(post(CONTACTS, {"last_name": ""}, 422, "required", "last_name"),
                 id="empty-last_name"),
    pytest.param(post(ACCOUNTS, {"name": None}, 400, "invalid_type", "name"), id="null-name"),
    # the body itself
    pytest.param(raw(CONTACTS, b'{"last_name": "X",', 400, "malformed_json", "body"),
                 id="malformed-json"),
    pytest.param(raw(ACCOUNTS, b"{name: 'X'}", 400, "malformed_json", "body"),
                 id="malformed-json-bad-character"),
    pytest.param(raw(ACCOUNTS, b'{"name": "\xff\xfe"}', 400, "malformed_json", "body"),
                 id="invalid-utf8"),
    pytest.param(raw(ACCOUNTS, b"", 400, "missing_body", "body"), id="empty-body"),
    pytest.param(raw(CONTACTS, b'{"last_name": "X", "tags": ' + b"[" * DEEP + b"]" * DEEP + b"}",
                     400, "nested_too_deeply", "body"), id="json-nested-too-deeply"),
    pytest.param(post(ACCOUNTS, [{"name": "X"}], 400, "invalid_type", "body"),
                 id="json-array"),
    pytest.param(post(CONTACTS, "Lovelace", 400, "invalid_type", "body"), id="json-string"),
    pytest.param(raw(ACCOUNTS, json.dumps({"name": "x" * 1_100_000}).encode(), 413,
                     "too_large", "body"), id="body-over-1mb"),
    # list parameters
    pytest.param(listing(CONTACTS, {"after": "garbage"}, "invalid_cursor", "after"),
                 id="cursor-garbage"),
    pytest.param(listing(ACCOUNTS, {"after": "W10"}, "invalid_cursor", "after"),
                 id="cursor-valid-base64-wrong-shape"),
    pytest.param(listing(ACCOUNTS, {"sort": "name", "after": forged_cursor("name", NUL, SOME_ID)},
                         "invalid_cursor", "after"), id="cursor-nul-value"),
    pytest.param(listing(ACCOUNTS, {"after": forged_cursor("id", None, 7)}, "invalid_cursor",
                         "after"), id="cursor-number-id"),
    pytest.param(listing(CONTACTS, {"sort": "updated_at", "after": forged_cursor(
        "updated_at", "9999-12-31T23:59:59-23:00", SOME_ID)}, "invalid_cursor", "after"),
                 id="cursor-time-out-of-range"),
    pytest.param(listing(CONTACTS, {"sort": "-created_at", "after": forged_cursor(
        "-created_at", "2024-01-01T00:00:00", SOME_ID)}, "invalid_cursor", "after"),
                 id="cursor-time-without-zone"),
    pytest.param(listing(CONTACTS, {"limit": "201"}, "out_of_range", "limit"), id="limit-201"),
    pytest.param(listing(ACCOUNTS, {"limit": "0"}, "out_of_range", "limit"), id="limit-0"),
    pytest.param(listing(CONTACTS, {"limit": "-5"}, "out_of_range", "limit"), id="limit-neg"),
    pytest.param(listing(ACCOUNTS, {"limit": "abc"}, "invalid_type", "limit"), id="limit-abc"),
    pytest.param(listing(CONTACTS, {"updated_since": "yesterday"}, "invalid_datetime",
                         "updated_since"), id="updated_since-garbage"),
    pytest.param(listing(ACCOUNTS, {"updated_since": "2024-13-45T00:00:00Z"},
                         "invalid_datetime", "updated_since"), id="updated_since-impossible"),
    pytest.param(listing(CONTACTS, {"updated_since": "9999-12-31T23:59:59-23:00"},
                         "invalid_datetime", "updated_since"), id="updated_since-after-year-9999"),
    pytest.param(listing(ACCOUNTS, {"updated_since": "0001-01-01T00:00:00+14:00"},
                         "invalid_datetime", "updated_since"), id="updated_since-before-year-1"),
    pytest.param(listing(CONTACTS, {"sort": "email"}, "invalid_sort", "sort"),
                 id="sort-not-allowed"),
    pytest.param(listing(ACCOUNTS, {"sort": "--name"}, "invalid_sort", "sort"),
                 id="sort-double-minus"),
    pytest.param(listing(ACCOUNTS, {"owner_id": "me"}, "invalid_uuid", "owner_id"),
                 id="owner_id-not-uuid"),
    pytest.param(listing(CONTACTS, {"account_id": "123"}, "invalid_uuid", "account_id"),
                 id="account_id-not-uuid"),
    pytest.param(listing(CONTACTS, {"q": "x" * 201}, "too_long", "q"), id="q-too-long"),
    pytest.param(listing(CONTACTS, {"q": "a\x00b"}, "invalid_characters", "q"), id="q-nul"),
    # guarded updates
    pytest.param(patch(CONTACTS, {"last_name": "Changed"}, None, 428, "if_match_required"),
                 id="patch-without-if-match"),
    pytest.param(patch(ACCOUNTS, {"name": "Changed"}, '"7"', 412, "version_mismatch"),
                 id="stale-if-match"),
    pytest.param(patch(CONTACTS, {"last_name": "Changed"}, "garbage", 400, "invalid_if_match"),
                 id="malformed-if-match"),
    pytest.param(
        Case("PATCH", CONTACTS, 422, "invalid_email", "email", {"email": "nope"}, if_match='"1"',
             on_record=True), id="patch-invalid-email"),
    pytest.param(
        Case("PATCH", ACCOUNTS, 400, "invalid_type", "name", {"name": None}, if_match='"1"',
             on_record=True), id="patch-null-required-name"),
    pytest.param(
        Case("PATCH", CONTACTS, 422, "invalid_uuid", "owner_id", {"owner_id": "boss"},
             if_match='"1"', on_record=True), id="patch-non-uuid-owner"),
    pytest.param(
        Case("PATCH", CONTACTS, 422, "unknown_reference", "owner_id",
             {"owner_id": str(uuid.uuid4())}, if_match='"1"', on_record=True),
        id="patch-unknown-owner"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
async def test_bad_input_is_a_problem_and_writes_nothing(
    client: httpx.AsyncClient, fresh: Fresh, case: Case
) -> None:
    before = await snapshot(client, fresh.user)
    url = case.collection
    headers = dict(fresh.user.headers)
    if case.on_record:
        url = f"{case.collection}/{fresh.record(case.collection)['id']}"
    if case.if_match is not None:
        headers["If-Match"] = case.if_match
    if case.content is not None:
        headers["Content-Type"] = "application/json"
    response = await client.request(
        case.method,
        url,
        params=case.params,
        headers=headers,
        json=case.json_body if case.content is None and case.method != "GET" else None,
        content=case.content,
    )
    assert_problem(response, case.status, case.code, case.fault)
    assert await snapshot(client, fresh.user) == before


async def test_problem_lists_every_invalid_field(client: httpx.AsyncClient, fresh: Fresh) -> None:
    before = await snapshot(client, fresh.user)
    response = await client.post(
        CONTACTS,
        json={"last_name": "x" * 101, "email": "nope", "country": "xx"},
        headers=fresh.user.headers,
    )
    assert_problem(response, 422, "too_long", "last_name")
    errors = {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert errors == {
        ("last_name", "too_long"),
        ("email", "invalid_email"),
        ("country", "invalid_country"),
    }
    assert await snapshot(client, fresh.user) == before


@pytest.mark.parametrize("collection", [ACCOUNTS, CONTACTS])
@pytest.mark.parametrize("record_id", ["not-a-uuid", "1", "00000000-0000-0000-0000-00000000000g"])
async def test_non_uuid_id_in_path_is_404(
    client: httpx.AsyncClient, fresh: Fresh, collection: str, record_id: str
) -> None:
    before = await snapshot(client, fresh.user)
    url = f"{collection}/{record_id}"
    headers = fresh.user.headers
    assert_problem(await client.get(url, headers=headers), 404, "not_found", None)
    patched = await client.patch(
        url, json=MINIMAL[collection], headers={**headers, "If-Match": '"1"'}
    )
    assert_problem(patched, 404, "not_found", None)
    assert_problem(await client.delete(url, headers=headers), 404, "not_found", None)
    assert await snapshot(client, fresh.user) == before


@pytest.mark.parametrize("collection", [ACCOUNTS, CONTACTS])
async def test_unknown_uuid_in_path_is_404(
    client: httpx.AsyncClient, fresh: Fresh, collection: str
) -> None:
    url = f"{collection}/{uuid.uuid4()}"
    headers = fresh.user.headers
    assert_problem(await client.get(url, headers=headers), 404, "not_found", None)
    patched = await client.patch(
        url, json=MINIMAL[collection], headers={**headers, "If-Match": '"1"'}
    )
    assert_problem(patched, 404, "not_found", None)
    assert_problem(await client.delete(url, headers=headers), 404, "not_found", None)


async def test_unauthenticated_request_is_401_problem(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eA=="}):
        response = await client.get(CONTACTS, headers=headers)
        assert "Traceback" not in response.text
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        assert response.json()["status"] == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_unknown_route_and_method_are_problems(
    client: httpx.AsyncClient, fresh: Fresh
) -> None:
    missing = await client.get("/api/v1/no-such-things", headers=fresh.user.headers)
    assert_problem(missing, 404, "not_found", None)
    wrong_method = await client.put(CONTACTS, json={}, headers=fresh.user.headers)
    assert_problem(wrong_method, 405, "method_not_allowed", None)


# -- the same rules over GraphQL ---------------------------------------------------------------
CREATE_CONTACT = """
mutation Create($input: CreateContactInput!) {
  createContact(input: $input) { contact { id } errors { field code message } }
}
"""
CREATE_ACCOUNT = """
mutation Create($input: CreateAccountInput!) {
  createAccount(input: $input) { account { id } errors { field code message } }
}
"""
UPDATE_CONTACT = """
mutation Update($input: UpdateContactInput!) {
  updateContact(input: $input) { contact { id version } errors { field code message } }
}
"""


@pytest.mark.parametrize(
    ("document", "root", "record_key", "input_", "fault", "code"),
    [
        pytest.param(CREATE_CONTACT, "createContact", "contact",
                      {"lastName": "X", "email": "not-an-email"}, "email", "invalid_email",
                      id="invalid-email"),
        pytest.param(CREATE_CONTACT, "createContact", "contact", {"lastName": "x" * 101},
                      "lastName", "too_long", id="lastName-too-long"),
        pytest.param(CREATE_CONTACT, "createContact", "contact", {"lastName": "  "},
                      "lastName", "required", id="blank-lastName"),
        pytest.param(CREATE_CONTACT, "createContact", "contact",
                      {"lastName": "X", "notes": "n" * 10_001}, "notes", "too_long",
                      id="notes-too-long"),
        pytest.param(CREATE_CONTACT, "createContact", "contact",
                      {"lastName": "X", "country": "D-"}, "country", "invalid_country",
                      id="invalid-country"),
        pytest.param(CREATE_CONTACT, "createContact", "contact",
                      {"lastName": "X", "accountId": str(uuid.uuid4())}, "accountId",
                      "unknown_reference", id="unknown-accountId"),
        pytest.param(CREATE_CONTACT, "createContact", "contact",
                      {"lastName": "X", "accountId": "acme"}, "accountId", "invalid_uuid",
                      id="non-uuid-accountId"),
        pytest.param(CREATE_ACCOUNT, "createAccount", "account",
                      {"name": "X", "website": "ftp://example.com"}, "website", "invalid_url",
                      id="invalid-website"),
        pytest.param(CREATE_ACCOUNT, "createAccount", "account", {"name": "x" * 201}, "name",
                      "too_long", id="name-too-long"),
    ],
)  # fmt: skip
async def test_graphql_validation_errors_are_in_the_payload_and_write_nothing(
    client: httpx.AsyncClient,
    fresh: Fresh,
    document: str,
    root: str,
    record_key: str,
    input_: dict[str, Any],
    fault: str,
    code: str,
) -> None:
    before = await snapshot(client, fresh.user)
    result = await gql(client, fresh.user, document, {"input": input_})
    assert "errors" not in result, result
    payload = result["data"][root]
    assert payload[record_key] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [(fault, code)]
    assert all(e["message"] for e in payload["errors"])
    assert await snapshot(client, fresh.user) == before


async def test_graphql_update_validation_error_changes_nothing(
    client: httpx.AsyncClient, fresh: Fresh
) -> None:
    before = await snapshot(client, fresh.user)
    result = await gql(
        client,
        fresh.user,
        UPDATE_CONTACT,
        {"input": {"id": fresh.contact["id"], "version": 1, "email": "nope", "title": "CEO"}},
    )
    assert "errors" not in result, result
    payload = result["data"]["updateContact"]
    assert payload["contact"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("email", "invalid_email")]
    assert await snapshot(client, fresh.user) == before


@pytest.mark.parametrize(
    "input_",
    [
        pytest.param({"lastName": 42}, id="number-for-lastName"),
        pytest.param({"lastName": "X", "tags": [1, {}]}, id="objects-in-tags"),
        pytest.param({"lastName": "X", "nickname": "Y"}, id="unknown-field"),
        pytest.param({"firstName": "Only"}, id="missing-lastName"),
        pytest.param({"lastName": "X", "ownerId": str(uuid.uuid4())}, id="ownerId-on-create"),
    ],
)
async def test_graphql_ill_typed_input_is_a_top_level_error(
    client: httpx.AsyncClient, fresh: Fresh, input_: dict[str, Any]
) -> None:
    before = await snapshot(client, fresh.user)
    result = await gql(client, fresh.user, CREATE_CONTACT, {"input": input_})
    assert result.get("data") is None
    assert len(result["errors"]) >= 1
    assert "Traceback" not in json.dumps(result)
    assert await snapshot(client, fresh.user) == before


@pytest.mark.parametrize(
    ("arguments", "fault", "reason"),
    [
        pytest.param("first: 0", "first", "out_of_range", id="first-0"),
        pytest.param("first: 201", "first", "out_of_range", id="first-201"),
        pytest.param('after: "garbage"', "after", "invalid_cursor", id="after-garbage"),
        pytest.param('filter: {ownerId: "me"}', "ownerId", "invalid_uuid", id="ownerId"),
        pytest.param(
            'filter: {updatedSince: "9999-12-31T23:59:59-23:00"}',
            "filter.updatedSince",
            "invalid_datetime",
            id="updatedSince-out-of-range",
        ),
        pytest.param(
            'orderBy: {field: LAST_NAME}, after: "W10"', "after", "invalid_cursor", id="after"
        ),
    ],
)
async def test_graphql_bad_list_arguments_name_the_argument(
    client: httpx.AsyncClient, fresh: Fresh, arguments: str, fault: str, reason: str
) -> None:
    result = await gql(
        client, fresh.user, f"{{ contacts({arguments}) {{ edges {{ node {{ id }} }} }} }}"
    )
    assert result["data"] is None
    [error] = result["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["reason"] == reason
    assert error["extensions"]["field"] == fault
    assert "Traceback" not in json.dumps(result)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"query": "{ __typename ', id="truncated-json"),
        pytest.param(b'{"query": "\xff"}', id="invalid-utf8"),
        pytest.param(b'"{ __typename }"', id="json-string"),
        pytest.param(b"42", id="json-number"),
        pytest.param(b"null", id="json-null"),
        pytest.param(b"[]", id="json-array"),
        pytest.param(b'{"query": 5}', id="query-not-a-string"),
        pytest.param(b'{"query": "{ __typename }", "variables": []}', id="variables-array"),
        pytest.param(b"{}", id="no-query"),
        pytest.param(
            b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * DEEP + b"]" * DEEP + b"}}",
            id="json-nested-too-deeply",
        ),
    ],
)
async def test_graphql_malformed_request_is_a_400(
    client: httpx.AsyncClient, fresh: Fresh, content: bytes
) -> None:
    before = await snapshot(client, fresh.user)
    response = await client.post(
        "/graphql",
        content=content,
        headers={**fresh.user.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert "Traceback" not in response.text
    assert await snapshot(client, fresh.user) == before
