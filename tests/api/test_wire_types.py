"""Both skins expose every field an entity's service declares, under each skin's naming."""

from __future__ import annotations

import httpx
import pytest

from backend.api.gql.errors import camel
from backend.crm.accounts.service import ACCOUNT
from backend.crm.activities.service import ACTIVITY
from backend.crm.contacts.service import CONTACT
from backend.records.spec import EntitySpec
from tests.conftest import TenantUser, gql

SYSTEM_FIELDS = {"id", "version", "created_at", "updated_at"}
REQUIRED = {"kind": "note"}  # required fields that are not free text
ENTITIES = [
    pytest.param(ACCOUNT, "Account", id="account"),
    pytest.param(CONTACT, "Contact", id="contact"),
    pytest.param(ACTIVITY, "Activity", id="activity"),
]


async def _graphql_fields(client: httpx.AsyncClient, user: TenantUser, type_name: str) -> set[str]:
    result = await gql(
        client,
        user,
        "query($n: String!) { __type(name: $n) { fields { name } inputFields { name } } }",
        {"n": type_name},
    )
    found = result["data"]["__type"]
    return {f["name"] for f in (found["fields"] or found["inputFields"] or [])}


@pytest.mark.parametrize(("entity", "type_name"), ENTITIES)
async def test_graphql_types_carry_every_field(
    client: httpx.AsyncClient, tenant_a: TenantUser, entity: EntitySpec, type_name: str
) -> None:
    declared = set(entity.fields)
    output = await _graphql_fields(client, tenant_a, type_name)
    assert {camel(f) for f in declared | SYSTEM_FIELDS} <= output
    created = await _graphql_fields(client, tenant_a, f"Create{type_name}Input")
    # `custom`: the tenant's custom field values by key, on every input (custom fields).
    assert created == {camel(f) for f in declared if entity.fields[f].on_create} | {"custom"}
    updated = await _graphql_fields(client, tenant_a, f"Update{type_name}Input")
    assert updated == {"id", "version", "custom"} | {
        camel(f) for f in declared if entity.fields[f].on_update
    }


@pytest.mark.parametrize(("entity", "type_name"), ENTITIES)
async def test_rest_records_and_bodies_carry_every_field(
    client: httpx.AsyncClient, tenant_a: TenantUser, entity: EntitySpec, type_name: str
) -> None:
    page = await client.get(
        f"/api/v1/{entity.plural}", params={"limit": 1}, headers=tenant_a.headers
    )
    assert page.status_code == 200
    openapi = (await client.get("/schema/openapi.json")).json()
    schemas = openapi["components"]["schemas"]
    # `custom`: the tenant's custom field values, {key: value} (see test_custom_fields.py).
    assert set(schemas[f"{type_name}Create"]["properties"]) == {
        f for f, spec in entity.fields.items() if spec.on_create
    } | {"custom"}
    assert set(schemas[f"{type_name}Update"]["properties"]) == {
        f for f, spec in entity.fields.items() if spec.on_update
    } | {"custom"}
    made = await client.post(
        f"/api/v1/{entity.plural}",
        json={f: REQUIRED.get(f, "Wire") for f, spec in entity.fields.items() if spec.required},
        headers=tenant_a.headers,
    )
    assert made.status_code == 201, made.text
    assert set(made.json()) == set(entity.fields) | SYSTEM_FIELDS | {"withheld_fields", "custom"}
    assert made.json()["withheld_fields"] == []
