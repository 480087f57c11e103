"""Idempotency-Key: a retried POST gets the first answer and creates nothing more; the same
key on a different request is 422; a key still in use is 409; keys are per user; GraphQL
mutations honour the header and the `extensions.idempotencyKey` field."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

import backend.api.gql.sync as gql_sync
import backend.api.rest.sync as rest_sync
from backend.api.idempotency import fingerprint
from backend.idempotency import store
from backend.runtime import Services
from backend.sync.push import push_changes
from tests.conftest import TenantUser, gql, new_tenant
from tests.security.policy_helpers import assert_problem, user_with_roles


async def _count(client: httpx.AsyncClient, user: TenantUser, last_name: str) -> int:
    listed = await client.get("/api/v1/contacts?limit=200", headers=user.headers)
    assert listed.status_code == 200, listed.text
    return sum(1 for c in listed.json()["items"] if c["last_name"] == last_name)


def _keyed(user: TenantUser, key: str) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key}


async def test_a_retried_create_returns_the_first_answer_and_creates_one_record(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "idem-rest")
    key = str(uuid.uuid4())
    body = {"last_name": "Once", "email": "once@example.com"}
    first = await client.post("/api/v1/contacts", json=body, headers=_keyed(admin, key))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    second = await client.post("/api/v1/contacts", json=body, headers=_keyed(admin, key))
    assert second.status_code == 201
    assert second.json() == first.json()
    for header in ("location", "etag", "content-type"):
        assert second.headers[header] == first.headers[header]
    assert second.headers["idempotent-replayed"] == "true"
    assert await _count(client, admin, "Once") == 1
    # Without a key, the same body is a new record.
    third = await client.post("/api/v1/contacts", json=body, headers=admin.headers)
    assert third.json()["id"] != first.json()["id"]
    assert await _count(client, admin, "Once") == 2


async def test_the_same_key_with_a_different_request_is_422(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "idem-reuse")
    key = "reused-key"
    made = await client.post(
        "/api/v1/contacts", json={"last_name": "First"}, headers=_keyed(admin, key)
    )
    assert made.status_code == 201
    for path, body in (
        ("/api/v1/contacts", {"last_name": "Second"}),
        ("/api/v1/accounts", {"last_name": "First"}),
    ):
        response = await client.post(path, json=body, headers=_keyed(admin, key))
        assert_problem(response, 422, "idempotency_key_reused", "Idempotency-Key")
    assert await _count(client, admin, "Second") == 0


async def test_a_key_still_running_is_409_and_keys_are_per_user(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "idem-busy")
    other = await user_with_roles(services, client, admin, "other", ["tenant_admin"])
    body = {"last_name": "Busy"}
    request = client.build_request("POST", "/api/v1/contacts", json=body)
    scope: Any = {"method": "POST", "path": "/api/v1/contacts", "query_string": b""}
    principal = await services.tokens.authenticate(admin.token)
    # The first request with this key is still running (it has claimed the key).
    claimed = await store.claim(services.db, principal, "busy", fingerprint(scope, request.content))
    assert claimed.state is store.ClaimState.CLAIMED
    response = await client.post("/api/v1/contacts", json=body, headers=_keyed(admin, "busy"))
    assert_problem(response, 409, "idempotency_in_progress", "Idempotency-Key")
    assert await _count(client, admin, "Busy") == 0
    # Another user's key of the same name is theirs alone.
    theirs = await client.post("/api/v1/contacts", json=body, headers=_keyed(other, "busy"))
    assert theirs.status_code == 201
    assert await _count(client, admin, "Busy") == 1


async def test_client_errors_are_replayed_and_bad_keys_refused(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "idem-4xx")
    bad = {"first_name": "No last name"}
    first = await client.post("/api/v1/contacts", json=bad, headers=_keyed(admin, "k4"))
    assert first.status_code == 400
    again = await client.post("/api/v1/contacts", json=bad, headers=_keyed(admin, "k4"))
    assert (again.status_code, again.json()) == (400, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    for key in (b"", b"has space", b"x" * 256, "clé".encode()):
        response = await client.post(
            "/api/v1/contacts",
            json={"last_name": "K"},
            headers=[
                *((k.encode(), v.encode()) for k, v in admin.headers.items()),
                (b"Idempotency-Key", key),
            ],
        )
        assert_problem(response, 400, "invalid_idempotency_key", "Idempotency-Key")
    assert await _count(client, admin, "K") == 0
    # Without a valid token the key changes nothing: the API answers 401 as always.
    anonymous = await client.post(
        "/api/v1/contacts", json={"last_name": "K"}, headers={"Idempotency-Key": "k5"}
    )
    assert_problem(anonymous, 401)


async def test_a_sync_push_retried_with_its_key_is_answered_once(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "idem-sync")
    batch = {
        "device_id": "p1",
        "changes": [
            {"client_id": "1", "entity": "contacts", "op": "create", "fields": {"last_name": "S"}}
        ],
    }
    first = await client.post("/api/v1/sync", json=batch, headers=_keyed(admin, "push-1"))
    second = await client.post("/api/v1/sync", json=batch, headers=_keyed(admin, "push-1"))
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await _count(client, admin, "S") == 1


CREATE = """mutation($input: CreateContactInput!) {
  createContact(input: $input) { contact { id lastName } errors { field code } }
}"""


async def test_graphql_mutations_honour_the_key(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "idem-gql")
    variables = {"input": {"lastName": "Graph"}}
    payload = {"query": CREATE, "variables": variables}
    first = await client.post("/graphql", json=payload, headers=_keyed(admin, "g1"))
    second = await client.post("/graphql", json=payload, headers=_keyed(admin, "g1"))
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert first.json()["data"]["createContact"]["contact"]["lastName"] == "Graph"
    # The key may also travel in the request's extensions.
    extended = {**payload, "extensions": {"idempotencyKey": "g2"}}
    third = await client.post("/graphql", json=extended, headers=admin.headers)
    fourth = await client.post("/graphql", json=extended, headers=admin.headers)
    assert fourth.json() == third.json()
    assert fourth.headers["idempotent-replayed"] == "true"
    assert await _count(client, admin, "Graph") == 2
    changed = {**extended, "variables": {"input": {"lastName": "Other"}}}
    refused = await client.post("/graphql", json=changed, headers=admin.headers)
    # As a GraphQL client reads errors (issue 15, item 11), not problem+json.
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/json"
    (error,) = refused.json()["errors"]
    assert error["extensions"] == {
        "code": "IDEMPOTENCY_KEY_REUSED",
        "reason": "idempotency_key_reused",
        "field": "Idempotency-Key",
    }
    plain = await gql(client, admin, "{ contacts(first: 5) { edges { node { id } } } }")
    assert len(plain["data"]["contacts"]["edges"]) == 2


async def test_a_key_expires_after_a_day(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "idem-ttl")
    first = await client.post(
        "/api/v1/contacts", json={"last_name": "Day one"}, headers=_keyed(admin, "daily")
    )
    assert first.status_code == 201
    # A day passes (the stored answer's expiry moved into the past).
    async with services.db.tenant_transaction(admin.tenant_id) as conn:
        await conn.execute(
            text("update idempotency_keys set expires_at = now() - interval '1 second'")
        )
    again = await client.post(
        "/api/v1/contacts", json={"last_name": "Day two"}, headers=_keyed(admin, "daily")
    )
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert await _count(client, admin, "Day two") == 1


class _FailOnce:
    """Fault injection: the first call fails as a server bug would, later calls go through."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("injected server failure")
        return await self.real(*args, **kwargs)


async def test_a_server_failure_is_not_stored_so_the_retry_runs(
    services: Services, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await new_tenant(services, client, "idem-5xx")
    batch = {
        "device_id": "p",
        "changes": [
            {"client_id": "1", "entity": "contacts", "op": "create", "fields": {"last_name": "F"}}
        ],
    }
    rest = _FailOnce(push_changes)
    monkeypatch.setattr(rest_sync, "push_changes", rest)
    failed = await client.post("/api/v1/sync", json=batch, headers=_keyed(admin, "f1"))
    assert failed.status_code == 500
    retried = await client.post("/api/v1/sync", json=batch, headers=_keyed(admin, "f1"))
    assert retried.status_code == 200 and "idempotent-replayed" not in retried.headers
    assert retried.json()["results"][0]["status"] == "applied"

    graph = _FailOnce(push_changes)
    monkeypatch.setattr(gql_sync, "push_changes", graph)
    mutation = {
        "query": "mutation($i: PushChangesInput!) {"
        " pushChanges(input: $i) { results { status } } }",
        "variables": {
            "i": {
                "deviceId": "p",
                "changes": [
                    {
                        "clientId": "2",
                        "entity": "contacts",
                        "op": "CREATE",
                        "fields": {"last_name": "G"},
                    }
                ],
            }
        },
    }
    first = await client.post("/graphql", json=mutation, headers=_keyed(admin, "f2"))
    assert first.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    second = await client.post("/graphql", json=mutation, headers=_keyed(admin, "f2"))
    assert "idempotent-replayed" not in second.headers
    assert second.json()["data"]["pushChanges"]["results"] == [{"status": "APPLIED"}]
    assert (rest.calls, graph.calls) == (2, 2)


async def test_a_replay_reads_whatever_coding_the_retry_accepts(
    services: Services, client: httpx.AsyncClient
) -> None:
    """The first answer went out brotli-compressed (large enough to compress); the retry
    accepts no coding and still reads the same JSON."""
    admin = await new_tenant(services, client, "idem-coding")
    key = str(uuid.uuid4())
    body = {"last_name": "Coded", "notes": "a long note " * 200}
    first = await client.post(
        "/api/v1/contacts", json=body, headers={**_keyed(admin, key), "Accept-Encoding": "br"}
    )
    assert first.status_code == 201, first.text
    assert first.headers["content-encoding"] == "br"
    again = await client.post(
        "/api/v1/contacts",
        json=body,
        headers={**_keyed(admin, key), "Accept-Encoding": "identity"},
    )
    assert again.status_code == 201
    assert "content-encoding" not in again.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await _count(client, admin, "Coded") == 1
