"""Cases over REST and GraphQL: per-tenant sequential numbers (also under concurrent creates),
read-only server fields, resolved_at, links to accounts and contacts both ways, and the
built-in roles' access."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx

from backend.runtime import Services
from tests.api.cases_helpers import get_case, new_case
from tests.conftest import gql, new_tenant
from tests.security.policy_helpers import user_with_roles


async def test_numbers_are_sequential_per_tenant_under_concurrent_creates(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin, other = await asyncio.gather(
        new_tenant(services, client, "cases"), new_tenant(services, client, "cases-b")
    )
    made = await asyncio.gather(*(new_case(client, admin, subject=f"#{i}") for i in range(10)))
    numbers = sorted(c["number"] for c in made)
    assert numbers == [f"C-{n:06d}" for n in range(1, 11)]
    # Another tenant counts on its own.
    assert (await new_case(client, other))["number"] == "C-000001"
    assert (await new_case(client, admin))["number"] == "C-000011"


async def test_a_refused_create_takes_no_number(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cases-gap")
    bad = await client.post(
        "/api/v1/cases",
        json={"subject": "x", "account_id": "0190e0e0-0000-7000-8000-000000000000"},
        headers=admin.headers,
    )
    assert bad.status_code == 422, bad.text
    assert (await new_case(client, admin))["number"] == "C-000001"


async def test_server_fields_are_read_only(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "cases-ro")
    for field, value in (
        ("number", "C-999999"),
        ("resolved_at", "2027-01-15T09:30:00Z"),
        ("sla_breached_at", "2027-01-15T09:30:00Z"),
        ("resolution_due_at", "2027-01-15T09:30:00Z"),
    ):
        refused = await client.post(
            "/api/v1/cases", json={"subject": "x", field: value}, headers=admin.headers
        )
        assert refused.status_code in (400, 422), (field, refused.text)
    listed = await client.get("/api/v1/cases", headers=admin.headers)
    assert listed.json()["items"] == []


async def test_defaults_choices_and_resolved_at(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cases-st")
    case = await new_case(client, admin, channel="phone", type="complaint")
    assert (case["status"], case["priority"], case["type"]) == ("new", "normal", "complaint")
    assert case["resolved_at"] is None and case["owner_id"] == str(admin.user_id)
    bad = await client.post(
        "/api/v1/cases", json={"subject": "x", "priority": "whenever"}, headers=admin.headers
    )
    assert bad.status_code == 422 and bad.json()["field"] == "priority"
    resolved = await client.patch(
        f"/api/v1/cases/{case['id']}",
        json={"status": "resolved", "resolution": "Replaced the roller."},
        headers={**admin.headers, "If-Match": f'"{case["version"]}"'},
    )
    assert resolved.status_code == 200, resolved.text
    when = resolved.json()["resolved_at"]
    assert when is not None and datetime.fromisoformat(when) >= datetime.fromisoformat(
        case["created_at"]
    )
    closed = await client.patch(
        f"/api/v1/cases/{case['id']}",
        json={"status": "closed"},
        headers={**admin.headers, "If-Match": f'"{resolved.json()["version"]}"'},
    )
    assert closed.json()["resolved_at"] == when  # closing keeps when it was resolved
    reopened = await client.patch(
        f"/api/v1/cases/{case['id']}",
        json={"status": "open"},
        headers={**admin.headers, "If-Match": f'"{closed.json()["version"]}"'},
    )
    assert reopened.json()["resolved_at"] is None


async def test_account_and_contact_links_both_ways(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin, other = await asyncio.gather(
        new_tenant(services, client, "cases-rel"), new_tenant(services, client, "cases-rel-b")
    )
    account = await client.post("/api/v1/accounts", json={"name": "Acme"}, headers=admin.headers)
    contact = await client.post(
        "/api/v1/contacts", json={"first_name": "Ada", "last_name": "Byron"}, headers=admin.headers
    )
    assert account.status_code == contact.status_code == 201, (account.text, contact.text)
    case = await new_case(
        client, admin, account_id=account.json()["id"], contact_id=contact.json()["id"]
    )
    data = await gql(
        client,
        admin,
        """query($id: ID!, $acc: ID!) {
             case(id: $id) { number account { name } contact { lastName } }
             account(id: $acc) { cases { edges { node { number subject } } } }
           }""",
        {"id": case["id"], "acc": account.json()["id"]},
    )
    assert data["data"]["case"] == {
        "number": "C-000001",
        "account": {"name": "Acme"},
        "contact": {"lastName": "Byron"},
    }
    assert data["data"]["account"]["cases"]["edges"] == [
        {"node": {"number": "C-000001", "subject": "Printer jams"}}
    ]
    # Another tenant's account names no record: the same 422 as a missing one.
    foreign = await client.post("/api/v1/accounts", json={"name": "Theirs"}, headers=other.headers)
    refused = await client.post(
        "/api/v1/cases",
        json={"subject": "x", "account_id": foreign.json()["id"]},
        headers=admin.headers,
    )
    assert refused.status_code == 422 and refused.json()["field"] == "account_id"
    assert (
        await client.get(f"/api/v1/cases/{case['id']}", headers=other.headers)
    ).status_code == 404


async def test_built_in_roles(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "cases-roles")
    agent, rep, marketer, auditor = await asyncio.gather(
        *(
            user_with_roles(services, client, admin, role, [role])
            for role in ("support_agent", "salesperson", "marketing", "auditor")
        )
    )
    logged = await new_case(client, agent, subject="Call from Ada")
    changed = await client.patch(
        f"/api/v1/cases/{logged['id']}",
        json={"status": "open"},
        headers={**agent.headers, "If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    # The rep logs a case and sees only their own; may not work it.
    own = await new_case(client, rep, subject="Customer called me")
    seen = await client.get("/api/v1/cases", headers=rep.headers)
    assert [c["id"] for c in seen.json()["items"]] == [own["id"]]
    edit = await client.patch(
        f"/api/v1/cases/{own['id']}",
        json={"status": "open"},
        headers={**rep.headers, "If-Match": '"1"'},
    )
    assert edit.status_code == 403
    # Marketing sees no cases; the auditor reads them all and changes nothing.
    assert (await client.get("/api/v1/cases", headers=marketer.headers)).status_code == 403
    assert len((await client.get("/api/v1/cases", headers=auditor.headers)).json()["items"]) == 2
    refused = await client.post("/api/v1/cases", json={"subject": "x"}, headers=auditor.headers)
    assert refused.status_code == 403
    assert (await get_case(client, agent, own["id"]))["subject"] == "Customer called me"
