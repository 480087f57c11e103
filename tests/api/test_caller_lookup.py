"""Caller lookup: an incoming number, however it is written, finds the contact or account it
belongs to, within the caller's scope, field mask and tenant; bad numbers are refused."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant, new_user
from tests.security.policy_helpers import create_role, user_with_roles

CALLER = "+1 (415) 555-0100"


def _path(number: str) -> str:
    return f"/api/v1/lookup/phone/{quote(number, safe='')}"


async def _contact(client: httpx.AsyncClient, user: TenantUser, **fields: str) -> dict[str, object]:
    made = await client.post("/api/v1/contacts", json=fields, headers=user.headers)
    assert made.status_code == 201, made.text
    body: dict[str, object] = made.json()
    return body


async def test_a_local_number_is_found_from_its_international_form(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "lookup")
    contact = await _contact(client, admin, last_name="Caller", phone="415-555-0100")
    call = await client.post(
        "/api/v1/activities",
        json={
            "kind": "call",
            "subject": "Order query",
            "notes": "Wants the spring catalogue",
            "contact_id": contact["id"],
        },
        headers=admin.headers,
    )
    assert call.status_code == 201, call.text
    for written in (CALLER, "+14155550100", "(415) 555-0100", "415.555.0100"):
        found = await client.get(_path(written), headers=admin.headers)
        assert found.status_code == 200, (written, found.text)
        body = found.json()
        assert (body["entity"], body["number"]) == ("contact", "+14155550100")
        assert body["record"]["id"] == contact["id"]
        assert [a["notes"] for a in body["activities"]] == ["Wants the spring catalogue"]


async def test_an_account_number_and_the_index_follows_updates_and_deletes(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "lookupacc")
    account = await client.post(
        "/api/v1/accounts",
        json={"name": "Acme", "phone": "+44 20 7946 0958"},
        headers=admin.headers,
    )
    found = await client.get(_path("+442079460958"), headers=admin.headers)
    assert (found.status_code, found.json()["entity"]) == (200, "account")
    moved = await client.patch(
        f"/api/v1/accounts/{account.json()['id']}",
        json={"phone": "+44 20 7946 0000"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert moved.status_code == 200
    assert (await client.get(_path("+442079460958"), headers=admin.headers)).status_code == 404
    assert (await client.get(_path("+442079460000"), headers=admin.headers)).status_code == 200
    gone = await client.delete(f"/api/v1/accounts/{account.json()['id']}", headers=admin.headers)
    assert gone.status_code == 204
    assert (await client.get(_path("+442079460000"), headers=admin.headers)).status_code == 404


async def test_scope_mask_and_tenant_are_respected(
    services: Services, client: httpx.AsyncClient, tenant_b: TenantUser
) -> None:
    admin = await new_tenant(services, client, "lookupscope")
    rep = await new_user(services, client, admin, "rep")
    other = await new_user(services, client, admin, "other")
    await _contact(client, other, last_name="Theirs", mobile_phone="415 555 0199")
    # Another salesperson's contact: the same 404 as an unknown number.
    hidden = await client.get(_path("+14155550199"), headers=rep.headers)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found")
    assert (await client.get(_path("+14155550199"), headers=admin.headers)).status_code == 200
    # Another tenant never finds it.
    assert (await client.get(_path("+14155550199"), headers=tenant_b.headers)).status_code == 404
    # A role that may not read phone numbers cannot find a record by one.
    await create_role(
        client,
        admin,
        "no_phones",
        [
            ("allow", "*", "read"),
            ("deny", "*.*phone", "read"),
            ("deny", "activity.notes", "read"),
        ],
        scopes={"*": "tenant"},
    )
    viewer = await user_with_roles(services, client, admin, "viewer", ["no_phones"])
    assert (await client.get(_path("+14155550199"), headers=viewer.headers)).status_code == 404


async def test_activity_notes_on_the_card_are_masked(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "lookupmask")
    contact = await _contact(
        client, admin, last_name="Masked", email="m@x.example", phone="415 555 0142"
    )
    await client.post(
        "/api/v1/activities",
        json={"kind": "call", "subject": "Secret", "notes": "hidden", "contact_id": contact["id"]},
        headers=admin.headers,
    )
    await create_role(
        client,
        admin,
        "no_notes",
        [
            ("allow", "*", "read"),
            ("deny", "*.notes", "read"),
            ("deny", "contact.email", "read"),
        ],
        scopes={"*": "tenant"},
    )
    viewer = await user_with_roles(services, client, admin, "viewer", ["no_notes"])
    card = await client.get(_path("4155550142"), headers=viewer.headers)
    assert card.status_code == 200, card.text
    body = card.json()
    assert "email" not in body["record"] and "email" in body["record"]["withheld_fields"]
    (activity,) = body["activities"]
    assert activity["subject"] == "Secret"
    assert "notes" not in activity and "notes" in activity["withheld_fields"]


@pytest.mark.parametrize("number", ["hello", "12", "+1 415 555 0100 999 999 999", "+999 1234"])
async def test_invalid_numbers_are_400(
    client: httpx.AsyncClient, tenant_a: TenantUser, number: str
) -> None:
    refused = await client.get(_path(number), headers=tenant_a.headers)
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert (refused.json()["code"], refused.json()["field"]) == ("invalid_phone", "number")


async def test_lookup_needs_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get(_path(CALLER))).status_code == 401


async def test_the_default_region_is_set_by_admins_and_rereads_numbers(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "lookupregion")
    rep = await new_user(services, client, admin, "rep")
    settings = await client.get("/api/v1/tenant/settings", headers=admin.headers)
    assert settings.json() == {"default_region": "US", "time_zone": "UTC"}
    await _contact(client, admin, last_name="Berlin", phone="030 1234567")
    # Read as a US number first; as German once the tenant says so.
    assert (await client.get(_path("+49301234567"), headers=admin.headers)).status_code == 404
    refused = await client.patch(
        "/api/v1/tenant/settings", json={"default_region": "DE"}, headers=rep.headers
    )
    assert refused.status_code == 403
    bad = await client.patch(
        "/api/v1/tenant/settings", json={"default_region": "XX"}, headers=admin.headers
    )
    assert (bad.status_code, bad.json()["field"]) == (422, "default_region")
    changed = await client.patch(
        "/api/v1/tenant/settings", json={"default_region": "DE"}, headers=admin.headers
    )
    assert changed.json() == {"default_region": "DE", "time_zone": "UTC"}
    found = await client.get(_path("+49 30 1234567"), headers=admin.headers)
    assert (found.status_code, found.json()["record"]["last_name"]) == (200, "Berlin")
    assert (await client.get(_path("030 1234567"), headers=admin.headers)).status_code == 200


async def test_graphql_caller_lookup(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "lookupgql")
    rep = await new_user(services, client, admin, "rep")
    contact = await _contact(client, admin, last_name="Graph", mobile_phone="415 555 0177")
    await client.post(
        "/api/v1/activities",
        json={"kind": "note", "subject": "Prefers mornings", "contact_id": contact["id"]},
        headers=admin.headers,
    )
    query = (
        "query($n: String!) { callerLookup(number: $n) { number contact { id lastName }"
        " account { id } activities { subject } } }"
    )
    found = await gql(client, admin, query, {"n": CALLER.replace("0100", "0177")})
    assert found["data"]["callerLookup"] == {
        "number": "+14155550177",
        "contact": {"id": contact["id"], "lastName": "Graph"},
        "account": None,
        "activities": [{"subject": "Prefers mornings"}],
    }
    hidden = await gql(client, rep, query, {"n": "+14155550177"})
    assert hidden["data"]["callerLookup"] is None
    bad = await gql(client, admin, query, {"n": "hello"})
    (error,) = bad["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["reason"] == "invalid_phone"
