"""Bandwidth for phones: sparse fieldsets, list ETags with 304s, brotli and gzip, compact JSON,
and persisted GraphQL queries sent as a hash instead of the document."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, new_tenant, new_user

OPERATIONS = Path(__file__).parents[2] / "graphql" / "operations"


async def _contacts(client: httpx.AsyncClient, user: TenantUser, n: int) -> list[dict[str, Any]]:
    made = []
    for i in range(n):
        created = await client.post(
            "/api/v1/contacts",
            json={
                "first_name": f"Person {i}",
                "last_name": "Bandwidth",
                "email": f"p{i}@bandwidth.example",
                "notes": "Met at the trade fair; interested in the fleet offer. " * 3,
            },
            headers=user.headers,
        )
        assert created.status_code == 201, created.text
        made.append(created.json())
    return made


async def _raw(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> httpx.Response:
    """The response with its body exactly as sent (not decoded by httpx)."""
    async with client.stream("GET", path, headers=headers) as response:
        response._content = b"".join([c async for c in response.aiter_raw()])
    return response


async def test_sparse_fieldsets_on_list_and_get(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "sparse")
    (made,) = await _contacts(client, admin, 1)
    listed = await client.get(
        "/api/v1/contacts", params={"fields": "last_name,email"}, headers=admin.headers
    )
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert set(item) == {"id", "version", "last_name", "email", "withheld_fields"}
    got = await client.get(
        f"/api/v1/contacts/{made['id']}", params={"fields": "first_name"}, headers=admin.headers
    )
    assert got.json() == {
        "id": made["id"],
        "version": 1,
        "first_name": "Person 0",
        "withheld_fields": [],
    }
    for params in ({"fields": "last_name,password_hash"}, {"fields": "tenant_id"}):
        refused = await client.get("/api/v1/contacts", params=params, headers=admin.headers)
        assert refused.status_code == 400
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert (refused.json()["code"], refused.json()["field"]) == ("unknown_field", "fields")
    refused = await client.get(
        f"/api/v1/contacts/{made['id']}", params={"fields": "nope"}, headers=admin.headers
    )
    assert (refused.status_code, refused.json()["field"]) == (400, "fields")


async def test_masked_fields_stay_masked_when_asked_for(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "sparsemask")
    rep = await new_user(services, client, admin, "rep")
    deal = await client.post(
        "/api/v1/opportunities",
        json={"name": "Deal", "stage": "proposal", "close_date": "2027-01-01"},
        headers=rep.headers,
    )
    for path in ("/api/v1/opportunities", f"/api/v1/opportunities/{deal.json()['id']}"):
        got = await client.get(path, params={"fields": "name,cost"}, headers=rep.headers)
        body = got.json()
        record = body["items"][0] if "items" in body else body
        assert "cost" not in record
        assert record["withheld_fields"] == ["cost"]
        assert record["name"] == "Deal"


async def test_list_etag_gives_304_until_something_changes(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "listetag")
    (made, _) = await _contacts(client, admin, 2)
    first = await client.get("/api/v1/contacts", headers=admin.headers)
    tag = first.headers["etag"]
    same = await client.get("/api/v1/contacts", headers={**admin.headers, "If-None-Match": tag})
    assert same.status_code == 304
    assert same.content == b""
    # Another page shape is another representation.
    sparse = await client.get(
        "/api/v1/contacts",
        params={"fields": "email"},
        headers={**admin.headers, "If-None-Match": tag},
    )
    assert sparse.status_code == 200
    changed = await client.patch(
        f"/api/v1/contacts/{made['id']}",
        json={"title": "Buyer"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert changed.status_code == 200
    after = await client.get("/api/v1/contacts", headers={**admin.headers, "If-None-Match": tag})
    assert after.status_code == 200
    assert after.headers["etag"] != tag


async def test_brotli_gzip_and_compact_json(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "compress")
    await _contacts(client, admin, 12)
    plain = await _raw(client, "/api/v1/contacts", {**admin.headers, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    body = json.loads(plain.content)
    # Compact: no whitespace between tokens.
    assert plain.content == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    br = await _raw(client, "/api/v1/contacts", {**admin.headers, "Accept-Encoding": "br, gzip"})
    assert br.headers["content-encoding"] == "br"
    assert json.loads(brotli.decompress(br.content)) == body
    gz = await _raw(client, "/api/v1/contacts", {**admin.headers, "Accept-Encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(gz.content)) == body
    assert len(br.content) < len(gz.content) < len(plain.content)


async def _persisted(
    client: httpx.AsyncClient,
    user: TenantUser,
    digest: str,
    query: str | None = None,
    variables: dict[str, Any] | None = None,
) -> httpx.Response:
    payload: dict[str, Any] = {
        "variables": variables or {},
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}},
    }
    if query is not None:
        payload["query"] = query
    return await client.post("/graphql", json=payload, headers=user.headers)


async def test_checked_in_operations_run_by_hash(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    (made,) = await _contacts(client, tenant_a, 1)
    document = (OPERATIONS / "CallerCard.graphql").read_text(encoding="utf-8")
    digest = hashlib.sha256(document.encode()).hexdigest()
    result = await _persisted(client, tenant_a, digest, variables={"id": made["id"]})
    assert result.status_code == 200
    assert result.json()["data"]["contact"]["lastName"] == "Bandwidth"
    assert "errors" not in result.json()


async def test_unknown_hash_is_reported_then_registered(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    query = "{ contacts(first: 1) { edges { node { id } } } } # registered"
    digest = hashlib.sha256(query.encode()).hexdigest()
    unknown = await _persisted(client, tenant_a, digest)
    assert unknown.status_code == 200
    (error,) = unknown.json()["errors"]
    assert error["message"] == "PersistedQueryNotFound"
    assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = await _persisted(client, tenant_a, digest, query)
    assert "errors" not in registered.json()
    by_hash = await _persisted(client, tenant_a, digest)
    assert by_hash.json() == registered.json()


@pytest.mark.parametrize(
    "extension",
    [
        {"version": 1, "sha256Hash": "0" * 64},  # does not match the query sent with it
        {"version": 2, "sha256Hash": "0" * 64},
        {"version": 1},
        "not an object",
    ],
)
async def test_a_hash_that_does_not_fit_is_400(
    client: httpx.AsyncClient, tenant_a: TenantUser, extension: Any
) -> None:
    answer = await client.post(
        "/graphql",
        json={
            "query": "{ contacts(first: 1) { edges { node { id } } } }",
            "extensions": {"persistedQuery": extension},
        },
        headers=tenant_a.headers,
    )
    assert answer.status_code == 400, answer.text
