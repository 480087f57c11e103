"""Custom fields over GraphQL: every entity type has `custom: JSON` and `customField(key)`, and
create/update inputs take `custom`. The same policy as REST: a salesperson sees and edits a
custom field only once a role rule names it; a hidden one is absent, null and withheld."""

from __future__ import annotations

from typing import Any

import httpx

from backend.runtime import Services
from tests.api.test_custom_fields import define
from tests.conftest import TenantUser, gql, new_tenant
from tests.security.policy_helpers import create_record, user_with_roles

READ = """query($id: ID!) { contact(id: $id) {
  version custom region: customField(key: "region_code") withheldFields } }"""
UPDATE = """mutation($input: UpdateContactInput!) { updateContact(input: $input) {
  record { version custom } errors { field code } } }"""
CREATE = """mutation($input: CreateContactInput!) { createContact(input: $input) {
  record { id custom } errors { field code } } }"""


async def _read(client: httpx.AsyncClient, user: TenantUser, record_id: str) -> dict[str, Any]:
    body = await gql(client, user, READ, {"id": record_id})
    assert "errors" not in body, body
    contact: dict[str, Any] = body["data"]["contact"]
    return contact


async def _allow(
    client: httpx.AsyncClient, admin: TenantUser, role: str, obj: str, action: str
) -> None:
    roles = (await client.get("/api/v1/roles", headers=admin.headers)).json()["items"]
    role_id = next(r["id"] for r in roles if r["name"] == role)
    response = await client.post(
        f"/api/v1/roles/{role_id}/rules",
        headers=admin.headers,
        json={"effect": "allow", "object": obj, "action": action},
    )
    assert response.status_code == 201, response.text


async def test_a_salesperson_reads_and_edits_a_custom_field_only_once_a_rule_names_it(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cfgql")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    await define(client, admin, key="region_code", label="Region code", type="text")
    mine = await create_record(client, rep, "contacts", {"last_name": "Own"})

    # The admin writes it through GraphQL and reads it back both ways.
    written = await gql(
        client,
        admin,
        UPDATE,
        {"input": {"id": mine["id"], "version": mine["version"], "custom": {"region_code": "N7"}}},
    )
    assert written["data"]["updateContact"]["errors"] == [], written
    assert written["data"]["updateContact"]["record"]["custom"] == {"region_code": "N7"}
    seen = await _read(client, admin, mine["id"])
    assert (seen["custom"], seen["region"]) == ({"region_code": "N7"}, "N7")

    # No rule yet: hidden (absent, null, withheld), and writing it is refused.
    hidden = await _read(client, rep, mine["id"])
    assert (hidden["custom"], hidden["region"]) == ({}, None)
    assert "custom.region_code" in hidden["withheldFields"]
    refused = await gql(
        client,
        rep,
        UPDATE,
        {
            "input": {
                "id": mine["id"],
                "version": hidden["version"],
                "custom": {"region_code": "S1"},
            }
        },
    )
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"], refused
    assert (await _read(client, admin, mine["id"]))["region"] == "N7"  # nothing written

    # A rule naming the field: the rep reads it, then may edit it.
    await _allow(client, admin, "salesperson", "contact.cf_region_code", "read")
    visible = await _read(client, rep, mine["id"])
    assert (visible["custom"], visible["region"]) == ({"region_code": "N7"}, "N7")
    await _allow(client, admin, "salesperson", "contact.cf_region_code", "update")
    changed = await gql(
        client,
        rep,
        UPDATE,
        {
            "input": {
                "id": mine["id"],
                "version": visible["version"],
                "custom": {"region_code": "S1"},
            }
        },
    )
    assert changed["data"]["updateContact"]["errors"] == [], changed
    assert (await _read(client, admin, mine["id"]))["region"] == "S1"


async def test_a_bad_custom_value_is_a_payload_error_naming_the_field(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cfgqlbad")
    await define(client, admin, key="headcount", label="Headcount", type="number")
    body = await gql(
        client,
        admin,
        CREATE,
        {"input": {"lastName": "Bad", "custom": {"headcount": "many"}}},
    )
    payload = body["data"]["createContact"]
    assert payload["record"] is None
    assert [e["field"] for e in payload["errors"]] == ["custom.headcount"], payload
    listed = await client.get("/api/v1/contacts", params={"q": "Bad"}, headers=admin.headers)
    assert listed.json()["items"] == []  # nothing written
    good = await gql(
        client, admin, CREATE, {"input": {"lastName": "Good", "custom": {"headcount": 12}}}
    )
    assert good["data"]["createContact"]["record"]["custom"] == {"headcount": 12}, good
