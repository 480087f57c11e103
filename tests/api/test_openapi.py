"""The OpenAPI document Litestar serves describes the record endpoints a client can call."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

LIST_PARAMETERS = {"limit", "after", "q", "updated_since", "sort", "owner_id", "fields"}
ENTITIES = [
    pytest.param(
        "accounts",
        "AccountCreate",
        "AccountUpdate",
        {"name"},
        LIST_PARAMETERS | {"parent_account_id"},
        id="accounts",
    ),
    pytest.param(
        "contacts",
        "ContactCreate",
        "ContactUpdate",
        {"last_name"},
        LIST_PARAMETERS | {"account_id", "reports_to_id"},
        id="contacts",
    ),
    pytest.param(
        "activities",
        "ActivityCreate",
        "ActivityUpdate",
        {"kind", "subject"},
        LIST_PARAMETERS
        | {"account_id", "contact_id", "opportunity_id", "kind", "status"}
        | {"due_at_from", "due_at_to", "starts_at_from", "starts_at_to"},
        id="activities",
    ),
    pytest.param(
        "leads",
        "LeadCreate",
        "LeadUpdate",
        {"last_name"},
        LIST_PARAMETERS | {"campaign_id", "converted_contact_id", "rating", "status"},
        id="leads",
    ),
]


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    assert "json" in response.headers["content-type"]
    document: dict[str, Any] = response.json()
    return document


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    assert ref.startswith("#/components/schemas/"), ref
    resolved: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return resolved


def body_schema(document: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    body = operation["requestBody"]
    assert body["required"] is True
    return resolve(document, body["content"]["application/json"]["schema"])


def parameters(operation: dict[str, Any], location: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == location}


async def test_openapi_document_is_served(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.")
    assert openapi["info"]["title"] == "Caravan CRM"
    assert {"/api/v1/accounts", "/api/v1/contacts"} <= set(openapi["paths"])
    assert {"/api/v1/accounts/{record_id}", "/api/v1/contacts/{record_id}"} <= set(openapi["paths"])


@pytest.mark.parametrize(("plural", "create", "update", "required", "list_params"), ENTITIES)
async def test_record_endpoints_are_documented(
    openapi: dict[str, Any],
    plural: str,
    create: str,
    update: str,
    required: set[str],
    list_params: set[str],
) -> None:
    collection = openapi["paths"][f"/api/v1/{plural}"]
    item = openapi["paths"][f"/api/v1/{plural}/{{record_id}}"]
    assert {"get", "post"} <= set(collection)
    assert {"get", "patch", "delete"} <= set(item)

    query = parameters(collection["get"], "query")
    assert set(query) == list_params
    assert all(p["required"] is False for p in query.values())
    assert all(p.get("description") for p in query.values())
    limit_types = {s.get("type") for s in query["limit"]["schema"].get("oneOf", [])}
    assert "integer" in limit_types | {query["limit"]["schema"].get("type")}

    created = body_schema(openapi, collection["post"])
    assert collection["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{create}"
    }
    assert set(created["required"]) == required
    assert required < set(created["properties"])
    assert "tags" in created["properties"]
    assert "owner_id" not in created["properties"]  # the creator owns a new record
    assert "id" not in created["properties"]

    patched = body_schema(openapi, item["patch"])
    assert item["patch"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{update}"
    }
    assert not patched.get("required")  # PATCH sends only what changed
    assert set(created["properties"]) | {"owner_id"} == set(patched["properties"])

    assert "record_id" in parameters(item["get"], "path")
    assert "If-None-Match" in parameters(item["get"], "header")
    assert "If-None-Match" in parameters(collection["get"], "header")  # list ETags
    assert "fields" in parameters(item["get"], "query")
    assert "If-Match" in parameters(item["patch"], "header")
    assert "If-Match" in parameters(item["delete"], "header")
