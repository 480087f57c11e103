"""The API is no side door around the export rules: paging through REST lists, GraphQL
connections, nested GraphQL lists and delta sync all charge ONE read budget per user with
exports; past it every route is throttled (429 + Retry-After / BULK_READ_THROTTLED) and each
throttle episode is audited once. Exports cannot cross tenants; one GraphQL query cannot pull
the tenant (QUERY_TOO_COSTLY). Budgets are made small through the rules API."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
from strawberry.extensions.validation_cache import _get_validate_cache

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant
from tests.exports.helpers import add_contacts, audit_events, request_export, set_rules
from tests.security.policy_helpers import assert_problem, user_with_roles

BUDGET = 20
THROTTLED = "export.bulk_read_throttled"
PAGE = """
query Page($after: String) {
  contacts(first: 10, after: $after) { edges { node { id lastName } } pageInfo { endCursor } }
}
"""


async def _budgeted_tenant(
    services: Services, client: httpx.AsyncClient, label: str, rows: int = BUDGET
) -> tuple[TenantUser, TenantUser]:
    admin = await new_tenant(services, client, label)
    await set_rules(
        client, admin, bulk_read={"rows": rows, "cells": 1_000_000, "window_seconds": 3600}
    )
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    return admin, rep


async def test_rest_paging_past_the_budget_is_throttled_and_audited_once(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin, rep = await _budgeted_tenant(services, client, "door-rest")
    first_id = (await add_contacts(client, rep, 25))[0]
    statuses: list[int] = []
    after: str | None = None
    for _ in range(20):  # 20 pages of 10: ten times the budget
        params: dict[str, Any] = {"limit": 10, **({"after": after} if after else {})}
        response = await client.get("/api/v1/contacts", params=params, headers=rep.headers)
        statuses.append(response.status_code)
        if response.status_code == 200:
            after = response.json()["next"]
        else:
            body = assert_problem(response, 429, "BULK_READ_THROTTLED")
            assert int(response.headers["Retry-After"]) >= 1
            assert body["retry_after"] == int(response.headers["Retry-After"])
    assert statuses == [200, 200] + [429] * 18
    events = await audit_events(client, admin, THROTTLED, rep)
    assert len(events) == 1
    assert events[0]["details"]["route"] == "rest:list"
    assert events[0]["details"]["entity"] == "contact"
    # A single-record get is not a bulk read: still answered.
    assert (
        await client.get(f"/api/v1/contacts/{first_id}", headers=rep.headers)
    ).status_code == 200


async def test_graphql_paging_past_the_budget_is_throttled_and_audited_once(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin, rep = await _budgeted_tenant(services, client, "door-gql")
    await add_contacts(client, rep, 25)
    outcomes: list[str] = []
    after: str | None = None
    for _ in range(20):
        body = await gql(client, rep, PAGE, {"after": after})
        if body.get("errors"):
            (error,) = body["errors"]
            assert error["extensions"]["code"] == "BULK_READ_THROTTLED", error
            assert error["extensions"]["retryAfter"] >= 1
            assert body["data"] is None
            outcomes.append("throttled")
        else:
            after = body["data"]["contacts"]["pageInfo"]["endCursor"]
            outcomes.append("ok")
    assert outcomes == ["ok", "ok"] + ["throttled"] * 18
    events = await audit_events(client, admin, THROTTLED, rep)
    assert len(events) == 1 and events[0]["details"]["route"] == "graphql:list"


async def test_nested_graphql_lists_count_too(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin, rep = await _budgeted_tenant(services, client, "door-nested", rows=30)
    for n in range(2):
        account = await client.post(
            "/api/v1/accounts", json={"name": f"Nested {n}"}, headers=rep.headers
        )
        for i in range(10):
            made = await client.post(
                "/api/v1/contacts",
                json={"last_name": f"N{n}-{i}", "account_id": account.json()["id"]},
                headers=rep.headers,
            )
            assert made.status_code == 201, made.text
    query = """
    { accounts(first: 5) { edges { node { name contacts(first: 20) { edges { node { id } } } } } } }
    """
    outcomes = []
    for _ in range(10):
        body = await gql(client, rep, query)
        codes = {e["extensions"]["code"] for e in body.get("errors") or []}
        assert codes <= {"BULK_READ_THROTTLED"}, body
        outcomes.append("throttled" if codes else "ok")
    assert outcomes == ["ok"] + ["throttled"] * 9
    events = await audit_events(client, admin, THROTTLED, rep)
    assert len(events) == 1
    assert events[0]["details"]["route"] in ("graphql:list", "graphql:list_by")


async def test_delta_sync_pulls_charge_the_same_budget(
    services: Services, client: httpx.AsyncClient
) -> None:
    """A phone re-pulling its working set again and again is paging too: throttled, audited."""
    admin, rep = await _budgeted_tenant(services, client, "door-sync")
    await add_contacts(client, rep, 25)
    statuses: list[int] = []
    for _ in range(20):  # first syncs of 10 records each: ten times the budget
        response = await client.get(
            "/api/v1/sync", params={"entities": "contacts", "limit": 10}, headers=rep.headers
        )
        statuses.append(response.status_code)
        if response.status_code == 200:
            assert len(response.json()["changes"]) == 10
        else:
            assert_problem(response, 429, "BULK_READ_THROTTLED")
            assert int(response.headers["Retry-After"]) >= 1
    # The first pull charges its 10 rows and the look-ahead row (11 of 20); a second would pass
    # the budget, so it and every later one is refused (a refused read is not charged).
    assert statuses == [200] + [429] * 19
    events = await audit_events(client, admin, THROTTLED, rep)
    assert len(events) == 1
    assert events[0]["details"]["route"] == "rest:sync"
    assert events[0]["details"]["entity"] == "contact"


async def test_a_failing_field_does_not_undo_the_charge(
    services: Services, client: httpx.AsyncClient
) -> None:
    """A GraphQL operation with any error rolls back, yet returns the data that resolved:
    the read charge must stay anyway, or errors would be a free pass."""
    admin, rep = await _budgeted_tenant(services, client, "door-rollback", rows=25)
    account = await client.post("/api/v1/accounts", json={"name": "Acme"}, headers=rep.headers)
    for i in range(10):
        made = await client.post(
            "/api/v1/contacts",
            json={"last_name": f"R{i}", "account_id": account.json()["id"]},
            headers=rep.headers,
        )
        assert made.status_code == 201
    # `account` is nullable: its failing nested list nulls it, and the contacts still come back.
    failing = """
    { contacts(first: 10) { edges { node { id lastName
        account { name contacts(first: 0) { edges { node { id } } } } } } } }
    """
    rounds = []
    for _ in range(4):
        body = await gql(client, rep, failing)
        rounds.append(
            (
                len((body["data"] or {}).get("contacts", {}).get("edges", [])),
                {e["extensions"]["code"] for e in body["errors"]},
            )
        )
    # 10 contacts + 1 account per round: 11, 22, then 32 > 25.
    assert rounds == [
        (10, {"BAD_USER_INPUT"}),
        (10, {"BAD_USER_INPUT"}),
        (0, {"BULK_READ_THROTTLED"}),
        (0, {"BULK_READ_THROTTLED"}),
    ]
    assert len(await audit_events(client, admin, THROTTLED, rep)) == 1


async def test_exports_spend_the_same_budget(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "door-export")
    await add_contacts(client, admin, 25)
    await set_rules(client, admin, bulk_read={"rows": BUDGET, "cells": 10**6, "window_seconds": 60})
    refused = await request_export(client, admin, fields=["id", "last_name"])
    assert_problem(refused, 429, "BULK_READ_THROTTLED")
    assert int(refused.headers["Retry-After"]) <= 60
    assert (await client.get("/api/v1/exports", headers=admin.headers)).json()["items"] == []
    (blocked,) = await audit_events(client, admin, "export.blocked", admin)
    assert blocked["details"]["outcome"] == "throttled" and blocked["details"]["row_count"] == 25
    assert len(await audit_events(client, admin, THROTTLED, admin)) == 1


async def test_exports_do_not_cross_tenants(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser, tenant_b: TenantUser
) -> None:
    await add_contacts(client, tenant_a, 2)
    mine = (await request_export(client, tenant_a, fields=["id", "last_name"])).json()
    # B's admin cannot see, approve, deny or link A's export.
    for method, suffix in (("GET", ""), ("POST", "/approve"), ("POST", "/link")):
        response = await client.request(
            method, f"/api/v1/exports/{mine['id']}{suffix}", headers=tenant_b.headers
        )
        assert_problem(response, 404)
    denied = await client.post(
        f"/api/v1/exports/{mine['id']}/deny", json={}, headers=tenant_b.headers
    )
    assert_problem(denied, 404)
    # A filter naming A's user gets B nothing of A's.
    theirs = await request_export(
        client, tenant_b, fields=["id"], filter={"owner_id": str(tenant_a.user_id)}
    )
    assert theirs.status_code == 201 and theirs.json()["row_count"] == 0
    # A link re-pointed at the other tenant names nothing.
    link = await client.post(f"/api/v1/exports/{mine['id']}/link", headers=tenant_a.headers)
    token = link.json()["url"].rsplit("/", 1)[1]
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    moved = tenant_b.tenant_id.bytes + raw[16:]
    forged = base64.urlsafe_b64encode(moved).decode().rstrip("=")
    assert_problem(await client.get(f"/api/v1/exports/download/{forged}"), 404, "link_invalid")
    assert_problem(await client.get("/api/v1/exports/download/nonsense"), 404, "link_invalid")
    wrong_secret = base64.urlsafe_b64encode(raw[:32] + uuid.uuid4().bytes * 2).decode()
    assert_problem(
        await client.get(f"/api/v1/exports/download/{wrong_secret.rstrip('=')}"),
        404,
        "link_invalid",
    )
    assert (await client.get(link.json()["url"])).status_code == 200


async def test_one_query_cannot_pull_the_tenant(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    costly = """
    { contacts(first: 200) { edges { node { id
        opportunities(first: 50) { edges { node { id } } } } } } }
    """
    body = await gql(client, tenant_a, costly)
    assert body.get("data") is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["cost"] > error["extensions"]["maxCost"]
    # Variables count as the largest page.
    by_variable = """
    query ($n: Int!) { accounts(first: $n) { edges { node {
        contacts(first: 20) { edges { node { id } } }
        opportunities(first: 20) { edges { node { id } } } } } } }
    """
    refused = await gql(client, tenant_a, by_variable, {"n": 5})
    assert refused["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    fine = await gql(client, tenant_a, "{ contacts(first: 50) { edges { node { id } } } }")
    assert "errors" not in fine, fine


async def test_validation_is_cached_across_requests_and_limits_still_hold(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    query = "{ accounts(first: 3) { edges { node { id name } } } }"
    await gql(client, tenant_a, query)
    cache: Any = _get_validate_cache(256)  # Strawberry's process-wide lru_cache
    before = cache.cache_info().hits
    for _ in range(3):
        assert "errors" not in await gql(client, tenant_a, query)
    assert cache.cache_info().hits >= before + 3
    level = "contacts(first: 1) { edges { node { account { %s } } } }"
    deep = "{ " + level % (level % (level % "id")) + " }"
    for _ in range(2):  # the second answer comes from the cache: still refused
        refused = await gql(client, tenant_a, deep)
        assert any("depth" in e["message"].lower() for e in refused["errors"]), refused


async def test_graphql_export_mutation_is_the_same_service(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "door-gql-export")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    manager = await user_with_roles(services, client, admin, "mgr", ["sales_manager"])
    await add_contacts(client, manager, 2)
    mutation = """
    mutation ($input: CreateExportInput!) {
      createExport(input: $input) {
        export { id status rowCount fields format }
        errors { field code message }
      }
    }
    """
    refused = await gql(client, rep, mutation, {"input": {"entity": "contacts"}})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert len(await audit_events(client, admin, "export.blocked", rep)) == 1
    bad = await gql(
        client, manager, mutation, {"input": {"entity": "contacts", "fields": ["nope"]}}
    )
    assert bad["data"]["createExport"]["errors"][0]["field"] == "fields"
    (invalid,) = await audit_events(client, admin, "export.blocked", manager)
    assert invalid["details"]["outcome"] == "invalid" and invalid["details"]["fields"] == ["nope"]
    made = await gql(
        client,
        manager,
        mutation,
        {"input": {"entity": "contacts", "format": "XLSX", "fields": ["id", "lastName"]}},
    )
    export = made["data"]["createExport"]["export"]
    assert export["status"] == "ready" and export["rowCount"] == 2
    assert export["fields"] == ["id", "last_name"] and export["format"] == "XLSX"
    listed = await gql(client, manager, "{ exports { id status } }")
    assert [e["id"] for e in listed["data"]["exports"]] == [export["id"]]
    assert (await gql(client, rep, f'{{ export(id: "{export["id"]}") {{ id }} }}'))["data"] == {
        "export": None
    }
