"""Activities (calls, meetings, tasks, emails, notes) through both skins: date-times are
instants with an offset, kinds are a fixed choice, links stay within the caller's scope, and
accounts and contacts list their activities in batches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant, new_user

MEETING = {
    "kind": "meeting",
    "subject": "Fleet review",
    "starts_at": "2027-01-15T09:30:00+01:00",
    "ends_at": "2027-01-15T10:30:00+01:00",
    "remind_minutes_before": 15,
}


async def _create(client: httpx.AsyncClient, user: TenantUser, **fields: Any) -> dict[str, Any]:
    made = await client.post("/api/v1/activities", json={**MEETING, **fields}, headers=user.headers)
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def test_create_read_update_over_rest(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "act")
    made = await _create(client, admin, notes="Bring the price list")
    # An instant keeps its meaning whatever offset it was written with.
    assert datetime.fromisoformat(made["starts_at"]) == datetime.fromisoformat(
        "2027-01-15T08:30:00+00:00"
    )
    assert made["kind"] == "meeting"
    assert made["remind_minutes_before"] == 15
    assert made["owner_id"] == str(admin.user_id)
    assert made["completed_at"] is None
    got = await client.get(f"/api/v1/activities/{made['id']}", headers=admin.headers)
    assert got.json() == made
    done = await client.patch(
        f"/api/v1/activities/{made['id']}",
        json={"completed_at": "2027-01-15T10:31:00Z"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert done.status_code == 200, done.text
    assert datetime.fromisoformat(done.json()["completed_at"]).utcoffset() is not None
    history = await client.get(f"/api/v1/activities/{made['id']}/history", headers=admin.headers)
    assert any(c.get("field") == "completed_at" for c in history.json()["items"])


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("kind", "lunch", "invalid_choice"),
        ("starts_at", "2027-01-15T09:30:00", "invalid_datetime"),  # no offset: ambiguous
        ("starts_at", "2027-01-15", "invalid_datetime"),
        ("starts_at", "2027-02-30T09:30:00Z", "invalid_datetime"),
        ("starts_at", "tomorrow", "invalid_datetime"),
        ("due_at", "2027-01-15T25:00:00Z", "invalid_datetime"),
        ("remind_minutes_before", -5, "out_of_range"),
        ("remind_minutes_before", 100_000, "out_of_range"),
        ("subject", "a\nb", "invalid_characters"),
    ],
)
async def test_bad_values_are_refused_with_the_field(
    client: httpx.AsyncClient, tenant_a: TenantUser, field: str, value: Any, code: str
) -> None:
    refused = await client.post(
        "/api/v1/activities", json={**MEETING, field: value}, headers=tenant_a.headers
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert (refused.json()["field"], refused.json()["code"]) == (field, code)


async def test_an_activity_cannot_end_before_it_starts(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    refused = await client.post(
        "/api/v1/activities",
        json={**MEETING, "ends_at": "2027-01-15T08:00:00+01:00"},
        headers=tenant_a.headers,
    )
    assert refused.status_code == 422, refused.text
    assert (refused.json()["field"], refused.json()["code"]) == ("ends_at", "ends_before_start")
    made = await _create(client, tenant_a)
    path = f"/api/v1/activities/{made['id']}/history"
    history_before = (await client.get(path, headers=tenant_a.headers)).json()["items"]
    assert history_before
    moved = await client.patch(
        f"/api/v1/activities/{made['id']}",
        json={"starts_at": "2027-01-15T11:00:00+01:00"},
        headers={**tenant_a.headers, "If-Match": '"1"'},
    )
    assert (moved.status_code, moved.json()["field"]) == (422, "ends_at")
    # Nothing half-written: the record and its history are as they were.
    kept = await client.get(f"/api/v1/activities/{made['id']}", headers=tenant_a.headers)
    assert kept.json() == made
    history = (await client.get(path, headers=tenant_a.headers)).json()["items"]
    assert history == history_before
    result = await gql(
        client,
        tenant_a,
        "mutation($id: ID!) { updateActivity(input: {id: $id, version: 1,"
        ' endsAt: "2027-01-15T07:00:00Z"}) { activity { id } errors { field code } } }',
        {"id": made["id"]},
    )
    assert result["data"]["updateActivity"] == {
        "activity": None,
        "errors": [{"field": "endsAt", "code": "ends_before_start"}],
    }
    assert (await client.get(f"/api/v1/activities/{made['id']}", headers=tenant_a.headers)).json()[
        "version"
    ] == 1


async def test_graphql_create_and_typed_datetimes(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    ok = await gql(
        client,
        tenant_a,
        'mutation { createActivity(input: {kind: "task", subject: "Send offer",'
        ' dueAt: "2027-02-01T17:00:00+00:00", remindMinutesBefore: 60})'
        " { activity { id kind dueAt remindMinutesBefore } errors { field code } } }",
    )
    payload = ok["data"]["createActivity"]
    assert payload["errors"] == []
    node = payload["activity"]
    assert datetime.fromisoformat(node["dueAt"]) == datetime.fromisoformat(
        "2027-02-01T17:00:00+00:00"
    )
    rest = await client.get(f"/api/v1/activities/{node['id']}", headers=tenant_a.headers)
    assert rest.json()["subject"] == "Send offer"
    bad = await gql(
        client,
        tenant_a,
        'mutation { createActivity(input: {kind: "lunch", subject: "X",'
        ' startsAt: "2027-02-01T17:00:00"}) { activity { id } errors { field code } } }',
    )
    errors = {(e["field"], e["code"]) for e in bad["data"]["createActivity"]["errors"]}
    assert errors == {("kind", "invalid_choice"), ("startsAt", "invalid_datetime")}


async def test_a_colleagues_activity_is_not_found(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    mine = await _create(client, tenant_a)
    rep = await new_user(services, client, tenant_a, f"actrep{mine['id'][-6:]}")
    assert (
        await client.get(f"/api/v1/activities/{mine['id']}", headers=rep.headers)
    ).status_code == 404
    theirs = await client.post(
        "/api/v1/contacts", json={"last_name": "Not yours"}, headers=tenant_a.headers
    )
    refused = await client.post(
        "/api/v1/activities",
        json={**MEETING, "contact_id": theirs.json()["id"]},
        headers=rep.headers,
    )
    assert (refused.status_code, refused.json()["field"]) == (422, "contact_id")


async def test_accounts_and_contacts_list_their_activities(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "actnest")
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
        await _create(
            client,
            rep,
            subject=f"Call {n}",
            kind="call",
            account_id=account_id,
            contact_id=contact_id,
        )
    await _create(client, admin, subject="Admin meeting", account_id=account_id)
    result = await gql(
        client,
        rep,
        "{ accounts(first: 5) { edges { node { activities(first: 2) {"
        " edges { node { subject contact { lastName } } } pageInfo { hasNextPage } } } } } }",
    )
    (edge,) = result["data"]["accounts"]["edges"]
    listed = edge["node"]["activities"]
    assert [e["node"]["subject"] for e in listed["edges"]] == ["Call 0", "Call 1"]
    assert listed["pageInfo"]["hasNextPage"] is True
    of_contact = await gql(
        client,
        admin,
        "query($id: ID!) { contact(id: $id) { activities { edges { node { subject"
        " account { name } } } } } }",
        {"id": contact_id},
    )
    edges = of_contact["data"]["contact"]["activities"]["edges"]
    assert [e["node"]["subject"] for e in edges] == ["Call 0", "Call 1", "Call 2"]
    assert {e["node"]["account"]["name"] for e in edges} == {"Acme"}


async def test_an_opportunity_lists_its_activities(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    deal = await client.post(
        "/api/v1/opportunities",
        json={"name": "Deal", "stage": "proposal", "close_date": "2027-01-01"},
        headers=tenant_a.headers,
    )
    deal_id = deal.json()["id"]
    await _create(client, tenant_a, subject="Pitch", opportunity_id=deal_id)
    result = await gql(
        client,
        tenant_a,
        "query($id: ID!) { opportunity(id: $id) { activities { edges { node { subject"
        " opportunity { name } } } } } }",
        {"id": deal_id},
    )
    (edge,) = result["data"]["opportunity"]["activities"]["edges"]
    assert edge["node"] == {"subject": "Pitch", "opportunity": {"name": "Deal"}}
