"""Products and price books: sku unique per tenant (409 naming the field), money checked,
one default price book per tenant, and the product's cost hidden from the roles that may not
see costs."""

from __future__ import annotations

import httpx
import pytest

from backend.runtime import Services
from tests.api.order_helpers import items, post, product
from tests.conftest import gql, new_tenant
from tests.security.policy_helpers import user_with_roles


async def test_product_round_trip_and_duplicate_sku(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "prod")
    body = {
        "name": "Anvil",
        "sku": "ANV-1",
        "description": "Heavy",
        "unit_price": "99.90",
        "unit_cost": 40,
        "currency": "EUR",
        "active": True,
        "category": "tools",
    }
    made = await post(client, admin, "products", body)
    assert (made["unit_price"], made["unit_cost"], made["active"]) == ("99.90", "40.00", True)
    assert made["category"] == "tools"
    again = await client.post("/api/v1/products", json=body, headers=admin.headers)
    assert again.status_code == 409, again.text
    assert (again.json()["code"], again.json()["field"]) == ("duplicate", "sku")
    # Unique per tenant: another tenant may use the same sku.
    other = await new_tenant(services, client, "prod2")
    await post(client, other, "products", body)
    # Renaming onto a taken sku is the same 409.
    second = await post(client, admin, "products", {**body, "sku": "ANV-2"})
    renamed = await client.patch(
        f"/api/v1/products/{second['id']}",
        json={"sku": "ANV-1"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert (renamed.status_code, renamed.json()["field"]) == (409, "sku")


@pytest.mark.parametrize(
    ("field", "value", "status", "code"),
    [
        ("unit_price", "-1", 422, "out_of_range"),
        ("unit_cost", -0.01, 422, "out_of_range"),
        ("unit_price", "1.001", 422, "too_precise"),
        ("sku", "", 422, "required"),
        ("active", "yes", 400, "invalid_type"),  # a wrong JSON type fails decoding: 400
    ],
)
async def test_bad_product_fields_are_refused(
    services: Services,
    client: httpx.AsyncClient,
    field: str,
    value: object,
    status: int,
    code: str,
) -> None:
    admin = await new_tenant(services, client, "badprod")
    body = {"name": "Anvil", "sku": "A", field: value}
    refused = await client.post("/api/v1/products", json=body, headers=admin.headers)
    assert refused.status_code == status, refused.text
    assert (refused.json()["code"], refused.json()["field"]) == (code, field)
    assert await items(client, admin, "products") == []


async def test_one_default_price_book_per_tenant(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "books")
    first = await post(client, admin, "price_books", {"name": "List", "is_default": True})
    assert first["is_default"] is True
    second = await client.post(
        "/api/v1/price_books", json={"name": "Retail", "is_default": True}, headers=admin.headers
    )
    assert second.status_code == 409, second.text
    assert (second.json()["code"], second.json()["field"]) == ("duplicate", "is_default")
    plain = await post(client, admin, "price_books", {"name": "Retail"})
    made_default = await client.patch(
        f"/api/v1/price_books/{plain['id']}",
        json={"is_default": True},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert made_default.status_code == 409, made_default.text
    # Once the first is no longer the default, the other may be.
    await client.patch(
        f"/api/v1/price_books/{first['id']}",
        json={"is_default": False},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    moved = await client.patch(
        f"/api/v1/price_books/{plain['id']}",
        json={"is_default": True},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert moved.status_code == 200, moved.text
    # Entries: a product's price in a book; deleting the book takes its entries along.
    widget = await product(client, admin, "10.00")
    entry = await post(
        client,
        admin,
        "price_book_entries",
        {"price_book_id": plain["id"], "product_id": widget["id"], "unit_price": "8.50"},
    )
    assert entry["unit_price"] == "8.50"
    listed = await items(client, admin, "price_book_entries", price_book_id=plain["id"])
    assert [e["id"] for e in listed] == [entry["id"]]
    gone = await client.delete(f"/api/v1/price_books/{plain['id']}", headers=admin.headers)
    assert gone.status_code == 204, gone.text
    assert await items(client, admin, "price_book_entries") == []


async def test_product_cost_is_hidden_from_salespeople(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "pcost")
    seller = await user_with_roles(services, client, admin, "seller", ["salesperson"])
    manager = await user_with_roles(services, client, admin, "boss", ["sales_manager"])
    widget = await product(client, admin, "10.00", cost="6.00")
    seen = await client.get(f"/api/v1/products/{widget['id']}", headers=seller.headers)
    assert seen.status_code == 200, seen.text
    assert "unit_cost" not in seen.json() and seen.json()["unit_price"] == "10.00"
    assert "unit_cost" in seen.json()["withheld_fields"]
    boss = await client.get(f"/api/v1/products/{widget['id']}", headers=manager.headers)
    assert boss.json()["unit_cost"] == "6.00"
    query = "query($id: ID!) { product(id: $id) { sku unitPrice unitCost withheldFields } }"
    answer = await gql(client, seller, query, {"id": widget["id"]})
    node = answer["data"]["product"]
    assert (node["unitPrice"], node["unitCost"]) == ("10.00", None)
    assert "unitCost" in node["withheldFields"]
    # The catalog is the manager's: a salesperson may not change it.
    refused = await client.patch(
        f"/api/v1/products/{widget['id']}",
        json={"unit_price": "1.00"},
        headers={**seller.headers, "If-Match": '"1"'},
    )
    assert refused.status_code == 403, refused.text
