"""Orders with their lines: written in one transaction, totals computed by the server (hand
computed here), prices and costs defaulted from the product, and cost and margin hidden from
the roles that may not see costs, in REST, GraphQL, sync and exports."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.api.order_helpers import account, items, post, product
from tests.conftest import TenantUser, gql, new_tenant
from tests.exports.helpers import download, request_export, set_rules
from tests.security.policy_helpers import assert_problem, create_role, user_with_roles


async def _order(
    client: httpx.AsyncClient, user: TenantUser, account_id: str, lines: list[dict[str, Any]]
) -> httpx.Response:
    body = {"account_id": account_id, "currency": "EUR", "lines": lines}
    return await client.post("/api/v1/orders", json=body, headers=user.headers)


async def _counts(client: httpx.AsyncClient, admin: TenantUser) -> tuple[int, int]:
    return len(await items(client, admin, "orders")), len(await items(client, admin, "order_lines"))


async def test_totals_with_discounts_and_defaults_from_the_product(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "ord")
    acme = await account(client, admin)
    a, b, c = (
        await product(client, admin, "99.00", cost="1.00"),
        await product(client, admin, "99.00", cost="1.00"),
        await product(client, admin, "4.00", cost="1.50"),
    )
    lines = [
        {
            "product_id": a["id"],
            "quantity": 3,
            "unit_price": "20.00",
            "unit_cost": "12.00",
            "discount_percent": 10,
        },
        {
            "product_id": b["id"],
            "quantity": "1",
            "unit_price": "0.13",
            "unit_cost": "0.05",
            "discount_percent": "50",
        },
        {"product_id": c["id"], "quantity": "2.56"},  # price 4.00 and cost 1.50 from the product
    ]
    made = await _order(client, admin, acme["id"], lines)
    assert made.status_code == 201, made.text
    order = made.json()
    # 3 x 20.00 x 0.9 = 54.00; 1 x 0.13 x 0.5 = 0.065; 2.56 x 4.00 = 10.24: 64.305, half up
    # 64.31 (half-even would say 64.30). Cost 36.00 + 0.05 + 3.84 = 39.89.
    assert (order["total"], order["total_cost"], order["margin"]) == ("64.31", "39.89", "24.42")
    assert order["version"] == 1 and order["status"] == "open"
    written = await items(client, admin, "order_lines", order_id=order["id"])
    assert [(w["product_id"], w["quantity"], w["unit_price"], w["unit_cost"]) for w in written] == [
        (a["id"], "3.000", "20.00", "12.00"),
        (b["id"], "1.000", "0.13", "0.05"),
        (c["id"], "2.560", "4.00", "1.50"),
    ]
    assert written[2]["discount_percent"] == "0.00"
    # A PATCH with lines replaces them all; the totals follow in the same new version.
    replaced = await client.patch(
        f"/api/v1/orders/{order['id']}",
        json={"lines": [{"product_id": a["id"], "quantity": 2}]},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert replaced.status_code == 200, replaced.text
    after = replaced.json()
    assert (after["version"], after["total"], after["total_cost"], after["margin"]) == (
        2,
        "198.00",
        "2.00",
        "196.00",
    )
    assert len(await items(client, admin, "order_lines", order_id=order["id"])) == 1
    # One line written on its own: the order's totals follow (a new version, with history).
    extra = await post(
        client,
        admin,
        "order_lines",
        {"order_id": order["id"], "product_id": c["id"], "quantity": 1},
    )
    assert (extra["unit_price"], extra["unit_cost"]) == ("4.00", "1.50")
    now = (await client.get(f"/api/v1/orders/{order['id']}", headers=admin.headers)).json()
    assert (now["version"], now["total"], now["margin"]) == (3, "202.00", "198.50")
    history = await client.get(f"/api/v1/orders/{order['id']}/history", headers=admin.headers)
    assert {"total", "margin"} <= {h["field"] for h in history.json()["items"]}
    # Deleting the order deletes its lines.
    gone = await client.delete(f"/api/v1/orders/{order['id']}", headers=admin.headers)
    assert gone.status_code == 204, gone.text
    assert await _counts(client, admin) == (0, 0)


async def test_default_price_book_price_comes_before_the_product_price(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "ordbook")
    acme = await account(client, admin)
    widget = await product(client, admin, "10.00", cost="2.00")
    other_book = await post(client, admin, "price_books", {"name": "Export"})
    book = await post(client, admin, "price_books", {"name": "List", "is_default": True})
    for price_book, price in ((other_book, "7.00"), (book, "8.50")):
        await post(
            client,
            admin,
            "price_book_entries",
            {"price_book_id": price_book["id"], "product_id": widget["id"], "unit_price": price},
        )
    made = await _order(client, admin, acme["id"], [{"product_id": widget["id"], "quantity": 2}])
    assert made.status_code == 201, made.text
    assert (made.json()["total"], made.json()["total_cost"]) == ("17.00", "4.00")


@pytest.mark.parametrize(
    ("line", "field", "code"),
    [
        ({"quantity": -1}, "lines[2].quantity", "out_of_range"),
        ({"unit_price": "-0.01"}, "lines[2].unit_price", "out_of_range"),
        ({"unit_cost": -5}, "lines[2].unit_cost", "out_of_range"),
        ({"discount_percent": "100.01"}, "lines[2].discount_percent", "out_of_range"),
        ({"product_id": str(uuid.uuid4())}, "lines[2].product_id", "unknown_reference"),
        ({"product_id": "nope"}, "lines[2].product_id", "invalid_uuid"),
    ],
)
async def test_a_bad_third_line_writes_nothing(
    services: Services,
    client: httpx.AsyncClient,
    line: dict[str, Any],
    field: str,
    code: str,
) -> None:
    admin = await new_tenant(services, client, "ordbad")
    acme = await account(client, admin)
    widget = await product(client, admin, "10.00", cost="2.00")
    good = {"product_id": widget["id"], "quantity": 1}
    refused = await _order(client, admin, acme["id"], [good, good, {**good, **line}])
    assert refused.status_code == 422, refused.text
    assert (refused.json()["code"], refused.json()["field"]) == (code, field)
    assert await _counts(client, admin) == (0, 0)
    # On update too: the old lines and totals stay as they were.
    order = (await _order(client, admin, acme["id"], [good])).json()
    again = await client.patch(
        f"/api/v1/orders/{order['id']}",
        json={"lines": [good, good, {**good, **line}]},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert again.status_code == 422, again.text
    assert await _counts(client, admin) == (1, 1)
    kept = (await client.get(f"/api/v1/orders/{order['id']}", headers=admin.headers)).json()
    assert (kept["version"], kept["total"]) == (1, "10.00")


async def test_another_tenants_product_is_the_same_422_as_a_missing_one(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "ordiso")
    other = await new_tenant(services, client, "ordiso2")
    acme = await account(client, admin)
    theirs = await product(client, other, "1.00", cost="0.50")
    answers = []
    for product_id in (theirs["id"], str(uuid.uuid4())):
        refused = await _order(
            client, admin, acme["id"], [{"product_id": product_id, "quantity": 1}]
        )
        assert refused.status_code == 422, refused.text
        body = refused.json()
        answers.append((body["code"], body["field"], body["detail"]))
    assert (
        answers[0]
        == answers[1]
        == ("unknown_reference", "lines[0].product_id", "lines[0].product_id: names no such record")
    )
    mine = await product(client, admin, "1.00")
    line = await client.post(
        "/api/v1/order_lines",
        json={"order_id": str(uuid.uuid4()), "product_id": mine["id"], "quantity": 1},
        headers=admin.headers,
    )
    assert (line.status_code, line.json()["code"]) == (422, "unknown_reference")


@pytest.mark.parametrize("field", ["total", "total_cost", "margin"])
async def test_totals_sent_by_the_client_are_read_only(
    services: Services, client: httpx.AsyncClient, field: str
) -> None:
    admin = await new_tenant(services, client, "ordro")
    acme = await account(client, admin)
    body = {"account_id": acme["id"], field: "1.00"}
    refused = await client.post("/api/v1/orders", json=body, headers=admin.headers)
    assert refused.status_code == 422, refused.text
    assert (refused.json()["code"], refused.json()["field"]) == ("read_only", field)
    order = await post(client, admin, "orders", {"account_id": acme["id"]})
    assert order["total"] == "0.00"
    patched = await client.patch(
        f"/api/v1/orders/{order['id']}",
        json={field: "5.00"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert (patched.status_code, patched.json()["code"]) == (422, "read_only")


async def test_cost_and_margin_are_hidden_from_salespeople(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "ordcost")
    seller = await user_with_roles(services, client, admin, "seller", ["salesperson"])
    manager = await user_with_roles(services, client, admin, "boss", ["sales_manager"])
    team = await client.post("/api/v1/teams", json={"name": "Road"}, headers=admin.headers)
    joined = await client.put(
        f"/api/v1/teams/{team.json()['id']}/members",
        json={"user_ids": [str(seller.user_id), str(manager.user_id)]},
        headers=admin.headers,
    )
    assert joined.status_code < 300, joined.text
    acme = await account(client, seller)
    widget = await product(client, admin, "10.00", cost="6.00")
    # A salesperson may not send a cost...
    sent_cost = await _order(
        client, seller, acme["id"], [{"product_id": widget["id"], "quantity": 1, "unit_cost": 1}]
    )
    assert (sent_cost.status_code, sent_cost.json()["field"]) == (403, "unit_cost")
    # ...but their order's lines carry the product's, so managers see the real margin.
    made = await _order(client, seller, acme["id"], [{"product_id": widget["id"], "quantity": 3}])
    assert made.status_code == 201, made.text
    order = made.json()
    hidden = {"total_cost", "margin"}
    assert order["total"] == "30.00" and not hidden & set(order)
    assert hidden <= set(order["withheld_fields"])
    line = (await items(client, seller, "order_lines", order_id=order["id"]))[0]
    assert "unit_cost" not in line and "unit_cost" in line["withheld_fields"]
    # The manager (and admin) see them.
    boss = (await client.get(f"/api/v1/orders/{order['id']}", headers=manager.headers)).json()
    assert (boss["total_cost"], boss["margin"]) == ("18.00", "12.00")
    # GraphQL: null and named as withheld.
    query = (
        "query($id: ID!) { order(id: $id) { total totalCost margin withheldFields "
        "lines { edges { node { unitPrice unitCost withheldFields } } } } }"
    )
    node = (await gql(client, seller, query, {"id": order["id"]}))["data"]["order"]
    assert (node["total"], node["totalCost"], node["margin"]) == ("30.00", None, None)
    assert {"totalCost", "margin"} <= set(node["withheldFields"])
    line_node = node["lines"]["edges"][0]["node"]
    assert (line_node["unitPrice"], line_node["unitCost"]) == ("10.00", None)
    shown = (await gql(client, manager, query, {"id": order["id"]}))["data"]["order"]
    assert (shown["totalCost"], shown["margin"]) == ("18.00", "12.00")
    assert shown["lines"]["edges"][0]["node"]["unitCost"] == "6.00"
    # Sync pull: the same masking.
    pulled = await client.get(
        "/api/v1/sync", params={"entities": "orders,order_lines,products"}, headers=seller.headers
    )
    assert pulled.status_code == 200, pulled.text
    records = {c["id"]: c for c in pulled.json()["changes"]}
    synced_order = records[order["id"]]["record"]
    assert synced_order["total"] == "30.00" and not hidden & set(synced_order)
    assert "unit_cost" not in records[line["id"]]["record"]
    assert "unit_cost" not in records[widget["id"]]["record"]
    managed = await client.get(
        "/api/v1/sync", params={"entities": "orders"}, headers=manager.headers
    )
    assert {c["id"]: c for c in managed.json()["changes"]}[order["id"]]["record"]["margin"] == (
        "12.00"
    )


async def test_exports_of_orders_leave_out_what_the_role_may_not_see(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "ordexp")
    seller = await user_with_roles(services, client, admin, "seller", ["salesperson"])
    # A role that may export but, like salespeople, not see costs.
    await create_role(
        client,
        admin,
        "exporter",
        [
            ("allow", "*", "read"),
            ("allow", "*", "export"),
            ("deny", "*.margin", "*"),
            ("deny", "*.total_cost", "*"),
            ("deny", "*.unit_cost", "*"),
        ],
        {"*": "tenant"},
    )
    exporter = await user_with_roles(services, client, admin, "exp", ["exporter"])
    limits = {"max_rows": 100, "daily_rows": 1000}
    await set_rules(client, admin, roles={"exporter": limits, "tenant_admin": limits})
    acme = await account(client, admin)
    widget = await product(client, admin, "10.00", cost="6.00")
    made = await _order(client, admin, acme["id"], [{"product_id": widget["id"], "quantity": 3}])
    assert made.status_code == 201, made.text
    refused = await request_export(client, seller, entity="orders")
    assert refused.status_code == 403, refused.text
    asked = await request_export(client, exporter, entity="orders", fields=["id", "margin"])
    assert_problem(asked, 403, "field_forbidden", "margin")

    async def exported(user: TenantUser, entity: str) -> list[dict[str, Any]]:
        export = await request_export(client, user, entity=entity, format="jsonl")
        assert export.status_code == 201 and export.json()["status"] == "ready", export.text
        body = (await download(client, user, export.json()["id"])).text
        # Leave out the watermark row (made-up values, see backend/exports/watermark.py).
        return [
            r for r in map(json.loads, body.splitlines()) if not str(r.get("id")).startswith("CRVN")
        ]

    rows = await exported(exporter, "orders")
    assert [r["total"] for r in rows] == ["30.00"]
    assert not {"margin", "total_cost"} & set(rows[0])
    lines = await exported(exporter, "order_lines")
    assert lines and "unit_cost" not in lines[0] and lines[0]["unit_price"] == "10.00"
    # Costs are never exported by default (export rules), not even by an admin...
    default = await exported(admin, "orders")
    assert not {"margin", "total_cost"} & set(default[0])
    # ...until the tenant's rules allow it; then a role that may read them exports them.
    await set_rules(client, admin, never_export=[])
    full = await exported(admin, "orders")
    assert (full[0]["total_cost"], full[0]["margin"]) == ("18.00", "12.00")
    assert not {"margin", "total_cost"} & set((await exported(exporter, "orders"))[0])
