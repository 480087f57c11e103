"""Mass assignment: a write body cannot set what identifies, versions or places a record (its
tenant, id, version, timestamps, owner on create), nor the owner where the role may not
reassign; the refusal names the field and nothing is written."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant
from tests.security.policy_helpers import (
    assert_problem,
    create_record,
    gql_codes,
    gql_data,
    user_with_roles,
)


@dataclass
class Setup:
    admin: TenantUser
    sp: TenantUser  # salesperson
    mgr: TenantUser  # sales manager, in a team with sp
    support: TenantUser
    foreign: TenantUser  # the admin of another tenant


@pytest.fixture(scope="module")
async def setup(services: Services, client: httpx.AsyncClient, tenant_b: TenantUser) -> Setup:
    admin = await new_tenant(services, client, "massassign")
    sp = await user_with_roles(services, client, admin, "sp", ["salesperson"])
    mgr = await user_with_roles(services, client, admin, "mgr", ["sales_manager"])
    support = await user_with_roles(services, client, admin, "support", ["support_agent"])
    team = await client.post("/api/v1/teams", headers=admin.headers, json={"name": "reps"})
    members = await client.put(
        f"/api/v1/teams/{team.json()['id']}/members",
        headers=admin.headers,
        json={"user_ids": [str(sp.user_id), str(mgr.user_id)]},
    )
    assert members.status_code == 200, members.text
    return Setup(admin, sp, mgr, support, tenant_b)


ENTITIES = [("contacts", "last_name"), ("accounts", "name")]


def _smuggled(setup: Setup) -> list[tuple[str, Any]]:
    return [
        ("tenant_id", str(setup.foreign.tenant_id)),
        ("tenant_id", str(setup.admin.tenant_id)),
        ("id", str(uuid.uuid4())),
        ("version", 99),
        ("created_at", "2000-01-01T00:00:00Z"),
        ("updated_at", "2000-01-01T00:00:00Z"),
        ("withheld_fields", []),
        ("owner_id", str(setup.mgr.user_id)),
        ("owner_id", str(setup.sp.user_id)),
    ]


async def _admin_search(client: httpx.AsyncClient, setup: Setup, plural: str, q: str) -> list[Any]:
    found = await client.get(f"/api/v1/{plural}", headers=setup.admin.headers, params={"q": q})
    assert found.status_code == 200, found.text
    items: list[Any] = found.json()["items"]
    return items


@pytest.mark.parametrize(("plural", "name_field"), ENTITIES)
async def test_create_refuses_fields_the_server_owns(
    client: httpx.AsyncClient, setup: Setup, plural: str, name_field: str
) -> None:
    for user in (setup.sp, setup.admin):
        for field, value in _smuggled(setup):
            marker = f"Smuggle{uuid.uuid4().hex[:10]}"
            response = await client.post(
                f"/api/v1/{plural}", headers=user.headers, json={name_field: marker, field: value}
            )
            body = assert_problem(response, 400, "unknown_field", field)
            assert body["errors"][0]["field"] == field
            assert await _admin_search(client, setup, plural, marker) == []


@pytest.mark.parametrize(("plural", "name_field"), ENTITIES)
async def test_update_refuses_fields_the_server_owns(
    client: httpx.AsyncClient, setup: Setup, plural: str, name_field: str
) -> None:
    record = await create_record(client, setup.sp, plural, {name_field: "Original"})
    url = f"/api/v1/{plural}/{record['id']}"
    for user in (setup.sp, setup.admin):
        # (owner_id may be updated, by roles that may reassign: see below)
        for field, value in [(f, v) for f, v in _smuggled(setup) if f != "owner_id"]:
            response = await client.patch(
                url,
                headers={**user.headers, "If-Match": '"1"'},
                json={name_field: "Changed", field: value},
            )
            assert_problem(response, 400, "unknown_field", field)
    after = await client.get(url, headers=setup.admin.headers)
    assert after.status_code == 200
    unchanged = {
        k: after.json()[k] for k in ("id", "version", "created_at", name_field, "owner_id")
    }
    assert unchanged == {
        "id": record["id"],
        "version": 1,
        "created_at": record["created_at"],
        name_field: "Original",
        "owner_id": str(setup.sp.user_id),
    }


@pytest.mark.parametrize(("plural", "name_field"), ENTITIES)
async def test_a_salesperson_cannot_reassign_the_owner(
    client: httpx.AsyncClient, setup: Setup, plural: str, name_field: str
) -> None:
    record = await create_record(client, setup.sp, plural, {name_field: "Mine"})
    url = f"/api/v1/{plural}/{record['id']}"
    for new_owner in (setup.mgr.user_id, setup.sp.user_id, setup.admin.user_id):
        for body in (
            {"owner_id": str(new_owner)},
            {name_field: "Renamed", "owner_id": str(new_owner)},
        ):
            response = await client.patch(
                url, headers={**setup.sp.headers, "If-Match": '"1"'}, json=body
            )
            assert_problem(response, 403, "field_forbidden", "owner_id")
    # Nor clear it (every record has an owner).
    cleared = await client.patch(
        url, headers={**setup.sp.headers, "If-Match": '"1"'}, json={"owner_id": None}
    )
    assert_problem(cleared, 403, "field_forbidden", "owner_id")
    after = await client.get(url, headers=setup.admin.headers)
    assert (after.json()["version"], after.json()[name_field], after.json()["owner_id"]) == (
        1,
        "Mine",
        str(setup.sp.user_id),
    )


async def test_a_support_agent_cannot_reassign_a_contact(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    record = await create_record(client, setup.sp, "contacts", {"last_name": "Supported"})
    response = await client.patch(
        f"/api/v1/contacts/{record['id']}",
        headers={**setup.support.headers, "If-Match": '"1"'},
        json={"title": "Changed", "owner_id": str(setup.support.user_id)},
    )
    assert_problem(response, 403, "field_forbidden", "owner_id")
    after = await client.get(f"/api/v1/contacts/{record['id']}", headers=setup.admin.headers)
    assert (after.json()["version"], after.json()["title"]) == (1, None)


@pytest.mark.parametrize(("plural", "name_field"), ENTITIES)
async def test_a_sales_manager_may_reassign_within_the_tenant(
    client: httpx.AsyncClient, setup: Setup, plural: str, name_field: str
) -> None:
    record = await create_record(client, setup.mgr, plural, {name_field: "Handed over"})
    url = f"/api/v1/{plural}/{record['id']}"
    for stranger in (setup.foreign.user_id, uuid.uuid4()):
        refused = await client.patch(
            url, headers={**setup.mgr.headers, "If-Match": '"1"'}, json={"owner_id": str(stranger)}
        )
        assert_problem(refused, 422, "unknown_reference", "owner_id")
    moved = await client.patch(
        url,
        headers={**setup.mgr.headers, "If-Match": '"1"'},
        json={"owner_id": str(setup.sp.user_id)},
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["owner_id"], moved.json()["version"]) == (str(setup.sp.user_id), 2)
    # The new owner now has it; the manager still does, through the team.
    assert (await client.get(url, headers=setup.sp.headers)).status_code == 200
    back = await client.patch(
        url,
        headers={**setup.mgr.headers, "If-Match": '"2"'},
        json={"owner_id": str(setup.mgr.user_id)},
    )
    assert back.status_code == 200, back.text
    assert_problem(await client.get(url, headers=setup.sp.headers), 404, "not_found")
    # Every record has an owner: clearing it is refused, naming the field (was a 500).
    cleared = await client.patch(
        url, headers={**setup.mgr.headers, "If-Match": '"3"'}, json={"owner_id": None}
    )
    assert_problem(cleared, 422, "required", "owner_id")
    after = await client.get(url, headers=setup.mgr.headers)
    assert (after.json()["version"], after.json()["owner_id"]) == (3, str(setup.mgr.user_id))


# -- GraphQL ---------------------------------------------------------------------------------
UPDATE_CONTACT = """
mutation U($input: UpdateContactInput!) {
  updateContact(input: $input) { contact { id version ownerId } errors { field code } }
}
"""
CREATE_CONTACT = """
mutation C($input: CreateContactInput!) {
  createContact(input: $input) { contact { id ownerId } errors { field code } }
}
"""


async def test_graphql_salesperson_cannot_reassign_the_owner(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    record = await create_record(client, setup.sp, "contacts", {"last_name": "Graph"})
    for extra in ({}, {"lastName": "Renamed"}):
        result = await gql(
            client,
            setup.sp,
            UPDATE_CONTACT,
            {
                "input": {
                    "id": record["id"],
                    "version": 1,
                    "ownerId": str(setup.mgr.user_id),
                    **extra,
                }
            },
        )
        assert gql_codes(result) == ["FORBIDDEN"]
        assert result["errors"][0]["extensions"]["field"] == "ownerId"
        assert result["errors"][0]["extensions"]["reason"] == "field_forbidden"
    after = await client.get(f"/api/v1/contacts/{record['id']}", headers=setup.admin.headers)
    assert (after.json()["version"], after.json()["last_name"], after.json()["owner_id"]) == (
        1,
        "Graph",
        str(setup.sp.user_id),
    )
    # A sales manager may.
    mine = await create_record(client, setup.mgr, "contacts", {"last_name": "Graph 2"})
    moved = await gql(
        client,
        setup.mgr,
        UPDATE_CONTACT,
        {"input": {"id": mine["id"], "version": 1, "ownerId": str(setup.sp.user_id)}},
    )
    assert gql_data(moved)["updateContact"] == {
        "contact": {"id": mine["id"], "version": 2, "ownerId": str(setup.sp.user_id)},
        "errors": [],
    }
    cleared = await gql(
        client,
        setup.mgr,
        UPDATE_CONTACT,
        {"input": {"id": mine["id"], "version": 2, "ownerId": None}},
    )
    assert gql_data(cleared)["updateContact"] == {
        "contact": None,
        "errors": [{"field": "ownerId", "code": "required"}],
    }


@pytest.mark.parametrize(
    "field", ["tenantId", "ownerId", "id", "version", "createdAt", "withheldFields"]
)
async def test_graphql_create_input_has_no_server_owned_fields(
    client: httpx.AsyncClient, setup: Setup, field: str
) -> None:
    marker = f"Smuggle{uuid.uuid4().hex[:10]}"
    value: Any = 1 if field == "version" else str(setup.mgr.user_id)
    result = await gql(
        client, setup.sp, CREATE_CONTACT, {"input": {"lastName": marker, field: value}}
    )
    assert result.get("data") is None
    assert gql_codes(result) == ["BAD_USER_INPUT"]
    assert field in result["errors"][0]["message"]
    assert await _admin_search(client, setup, "contacts", marker) == []


@pytest.mark.parametrize("field", ["tenantId", "createdAt", "withheldFields"])
async def test_graphql_update_input_has_no_server_owned_fields(
    client: httpx.AsyncClient, setup: Setup, field: str
) -> None:
    record = await create_record(client, setup.sp, "contacts", {"last_name": "Graph input"})
    result = await gql(
        client,
        setup.sp,
        UPDATE_CONTACT,
        {"input": {"id": record["id"], "version": 1, "lastName": "Changed", field: "x"}},
    )
    assert result.get("data") is None
    assert gql_codes(result) == ["BAD_USER_INPUT"]
    assert field in result["errors"][0]["message"]
    after = await client.get(f"/api/v1/contacts/{record['id']}", headers=setup.admin.headers)
    assert (after.json()["version"], after.json()["last_name"]) == (1, "Graph input")
