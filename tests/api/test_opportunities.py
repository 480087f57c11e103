"""Opportunities (the pipeline) through both skins: money, percentages, dates and stages are
validated field by field, links stay within the caller's scope, nested lists are batched, and
every change keeps its history."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant, new_user

DEAL = {
    "name": "Fleet renewal",
    "stage": "proposal",
    "amount": 12500,
    "currency": "EUR",
    "probability": 60,
    "close_date": "2026-12-31",
}


async def _create(client: httpx.AsyncClient, user: TenantUser, **fields: Any) -> dict[str, Any]:
    made = await client.post("/api/v1/opportunities", json={**DEAL, **fields}, headers=user.headers)
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def _count(client: httpx.AsyncClient, user: TenantUser) -> int:
    listed = await client.get("/api/v1/opportunities?limit=200", headers=user.headers)
    assert listed.status_code == 200, listed.text
    return len(listed.json()["items"])


async def test_create_read_update_over_rest(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "opp")
    made = await _create(client, admin, budget="20000.5", cost=750.25)
    # Money comes back as an exact decimal string, scaled to cents; dates as ISO dates.
    assert made["amount"] == "12500.00"
    assert made["budget"] == "20000.50"
    assert made["cost"] == "750.25"
    assert made["probability"] == 60
    assert made["close_date"] == "2026-12-31"
    assert made["owner_id"] == str(admin.user_id)
    got = await client.get(f"/api/v1/opportunities/{made['id']}", headers=admin.headers)
    assert got.json() == made
    changed = await client.patch(
        f"/api/v1/opportunities/{made['id']}",
        json={"stage": "closed_won", "probability": 100, "amount": "13000.10"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["stage"], changed.json()["amount"]) == ("closed_won", "13000.10")


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("stage", "won", "invalid_choice"),
        ("amount", -1, "out_of_range"),
        ("amount", "1e13", "out_of_range"),
        ("amount", "1.234", "too_precise"),
        ("amount", "abc", "invalid_number"),
        ("amount", "NaN", "invalid_number"),
        ("amount", "Infinity", "invalid_number"),
        ("probability", 101, "out_of_range"),
        ("probability", -1, "out_of_range"),
        ("close_date", "2026-02-30", "invalid_date"),
        ("close_date", "2026-W01-1", "invalid_date"),
        ("close_date", "2026-12-31T10:00:00", "invalid_date"),
        ("currency", "eur", "invalid_currency"),
        ("currency", "EURO", "too_long"),
    ],
)
async def test_bad_values_are_refused_with_the_field(
    client: httpx.AsyncClient, tenant_a: TenantUser, field: str, value: Any, code: str
) -> None:
    before = await _count(client, tenant_a)
    made = await client.post(
        "/api/v1/opportunities", json={**DEAL, field: value}, headers=tenant_a.headers
    )
    assert made.status_code == 422, made.text
    body = made.json()
    assert (body["field"], body["code"]) == (field, code), body
    assert await _count(client, tenant_a) == before  # nothing half-written


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stage", 3),
        ("probability", 50.5),
        ("probability", True),
        ("amount", [1]),
        ("close_date", None),
    ],
)
async def test_wrong_json_types_are_refused(
    client: httpx.AsyncClient, tenant_a: TenantUser, field: str, value: Any
) -> None:
    made = await client.post(
        "/api/v1/opportunities", json={**DEAL, field: value}, headers=tenant_a.headers
    )
    assert made.status_code in (400, 422), made.text
    assert made.json()["field"] == field


async def test_graphql_create_with_typed_scalars_and_payload_errors(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    ok = await gql(
        client,
        tenant_a,
        'mutation { createOpportunity(input: {name: "Big deal", stage: "negotiation",'
        ' closeDate: "2027-01-15", amount: "99999.99", probability: 75}) {'
        " opportunity { id amount closeDate probability stage } errors { field code } } }",
    )
    payload = ok["data"]["createOpportunity"]
    assert payload["errors"] == []
    node = payload["opportunity"]
    assert (node["amount"], node["closeDate"], node["probability"]) == (
        "99999.99",
        "2027-01-15",
        75,
    )
    rest = await client.get(f"/api/v1/opportunities/{node['id']}", headers=tenant_a.headers)
    assert rest.json()["amount"] == "99999.99"  # the same record, the same id, both skins
    bad = await gql(
        client,
        tenant_a,
        'mutation { createOpportunity(input: {name: "X", stage: "won", closeDate: "2027-01-15",'
        " probability: 101}) { opportunity { id } errors { field code } } }",
    )
    errors = {(e["field"], e["code"]) for e in bad["data"]["createOpportunity"]["errors"]}
    assert errors == {("stage", "invalid_choice"), ("probability", "out_of_range")}


async def test_a_salesperson_never_sees_or_writes_the_cost_of_winning(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "oppcost")
    rep = await new_user(services, client, admin, "rep")
    mine = await _create(client, rep)
    assert mine["withheld_fields"] == ["cost"]
    assert "cost" not in mine
    refused = await client.post(
        "/api/v1/opportunities", json={**DEAL, "cost": 10}, headers=rep.headers
    )
    assert (refused.status_code, refused.json()["field"]) == (403, "cost")


async def test_links_only_to_records_in_scope(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "opplink")
    rep = await new_user(services, client, admin, "rep")
    theirs = await client.post(
        "/api/v1/contacts", json={"last_name": "Not yours"}, headers=admin.headers
    )
    refused = await client.post(
        "/api/v1/opportunities",
        json={**DEAL, "contact_id": theirs.json()["id"]},
        headers=rep.headers,
    )
    assert (refused.status_code, refused.json()["field"]) == (422, "contact_id")
    assert refused.json()["code"] == "unknown_reference"


async def test_another_tenants_contact_cannot_be_linked(
    client: httpx.AsyncClient, tenant_a: TenantUser, tenant_b: TenantUser
) -> None:
    link = await client.post(
        "/api/v1/contacts",
        json={"last_name": "Cross"},
        headers=tenant_b.headers,
    )
    crossed = await client.post(
        "/api/v1/opportunities",
        json={**DEAL, "contact_id": link.json()["id"]},
        headers=tenant_a.headers,
    )
    assert crossed.status_code == 422


async def test_nested_pipeline_of_accounts_and_contacts(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "oppnest")
    rep = await new_user(services, client, admin, "rep")
    account = await client.post("/api/v1/accounts", json={"name": "Acme"}, headers=rep.headers)
    account_id = account.json()["id"]
    contact = await client.post(
        "/api/v1/contacts",
        json={"last_name": "Buyer", "account_id": account_id},
        headers=rep.headers,
    )
    contact_id = contact.json()["id"]
    for n in range(3):
        await _create(client, rep, name=f"Deal {n}", account_id=account_id, contact_id=contact_id)
    # The admin's own deal on the same account is outside the rep's (own) scope.
    await _create(client, admin, name="Admin deal", account_id=account_id)
    query = (
        "{ accounts(first: 5) { edges { node { name opportunities(first: 2) {"
        " edges { node { name contact { lastName } } } pageInfo { hasNextPage } } } } } }"
    )
    result = await gql(client, rep, query)
    (edge,) = result["data"]["accounts"]["edges"]
    deals = edge["node"]["opportunities"]
    assert [e["node"]["name"] for e in deals["edges"]] == ["Deal 0", "Deal 1"]
    assert deals["pageInfo"]["hasNextPage"] is True
    assert {e["node"]["contact"]["lastName"] for e in deals["edges"]} == {"Buyer"}
    as_admin = await gql(client, admin, query.replace("first: 2", "first: 10"))
    names = {
        e["node"]["name"]
        for e in as_admin["data"]["accounts"]["edges"][0]["node"]["opportunities"]["edges"]
    }
    assert names == {"Deal 0", "Deal 1", "Deal 2", "Admin deal"}
    of_contact = await gql(
        client,
        rep,
        "query($id: ID!) { contact(id: $id) {"
        " opportunities { edges { node { account { name } } } } } }",
        {"id": contact_id},
    )
    edges = of_contact["data"]["contact"]["opportunities"]["edges"]
    assert [e["node"]["account"]["name"] for e in edges] == ["Acme"] * 3


async def test_history_and_revert_of_an_amount(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "opphist")
    made = await _create(client, admin)
    await client.patch(
        f"/api/v1/opportunities/{made['id']}",
        json={"amount": "14000"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    history = await client.get(f"/api/v1/opportunities/{made['id']}/history", headers=admin.headers)
    change = next(c for c in history.json()["items"] if c.get("field") == "amount")
    assert (change["old_value"], change["new_value"]) == ("12500.00", "14000.00")
    reverted = await gql(
        client,
        admin,
        "mutation($id: ID!, $change: ID!) { revertOpportunityChange(input:"
        " {recordId: $id, changeId: $change, version: 2}) { opportunity { amount version }"
        " errors { code } } }",
        {"id": made["id"], "change": change["id"]},
    )
    payload = reverted["data"]["revertOpportunityChange"]
    assert payload == {"opportunity": {"amount": "12500.00", "version": 3}, "errors": []}


async def test_deleting_the_account_keeps_the_opportunity(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "oppdel")
    account = await client.post("/api/v1/accounts", json={"name": "Gone"}, headers=admin.headers)
    made = await _create(client, admin, account_id=account.json()["id"])
    gone = await client.delete(f"/api/v1/accounts/{account.json()['id']}", headers=admin.headers)
    assert gone.status_code == 204
    kept = await client.get(f"/api/v1/opportunities/{made['id']}", headers=admin.headers)
    assert kept.status_code == 200
    assert kept.json()["account_id"] is None
