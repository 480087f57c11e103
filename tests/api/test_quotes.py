"""Quotes with their lines for an opportunity: the total is the server's; accepting makes the
order (lines copied) in one transaction, once; nested GraphQL reads stay batched."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import event

from backend.runtime import Services
from tests.api.order_helpers import account, items, opportunity, post, product
from tests.conftest import TenantUser, gql, new_tenant


async def _quote(
    client: httpx.AsyncClient, user: TenantUser, opportunity_id: str, lines: list[dict[str, Any]]
) -> dict[str, Any]:
    body = {"name": "Offer", "opportunity_id": opportunity_id, "currency": "EUR", "lines": lines}
    return await post(client, user, "quotes", body)


async def _accept(client: httpx.AsyncClient, user: TenantUser, quote_id: str) -> httpx.Response:
    return await client.post(f"/api/v1/quotes/{quote_id}/accept", headers=user.headers)


async def test_accepting_a_quote_makes_its_order_once(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "quote")
    acme = await account(client, admin)
    deal = await opportunity(client, admin, acme["id"])
    a = await product(client, admin, "50.00", cost="20.00")
    b = await product(client, admin, "3.33", cost="1.00")
    quote = await _quote(
        client,
        admin,
        deal["id"],
        [
            {"product_id": a["id"], "quantity": 2, "unit_price": "45.00", "discount_percent": 5},
            {"product_id": b["id"], "quantity": 3},
        ],
    )
    # 2 x 45.00 x 0.95 = 85.50; 3 x 3.33 = 9.99.
    assert (quote["total"], quote["status"]) == ("95.49", "draft")
    assert "total_cost" not in quote
    quoted = await items(client, admin, "quote_lines", quote_id=quote["id"])
    assert [q["unit_price"] for q in quoted] == ["45.00", "3.33"]
    # Accepting is the only way to `accepted`.
    direct = await client.patch(
        f"/api/v1/quotes/{quote['id']}",
        json={"status": "accepted"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert (direct.status_code, direct.json()["field"]) == (422, "status")

    accepted = await _accept(client, admin, quote["id"])
    assert accepted.status_code == 201, accepted.text
    order = accepted.json()
    assert accepted.headers["location"] == f"/api/v1/orders/{order['id']}"
    assert (order["quote_id"], order["opportunity_id"], order["account_id"]) == (
        quote["id"],
        deal["id"],
        acme["id"],
    )
    # The quoted prices hold; the costs come from the products: 2 x 20 + 3 x 1 = 43.
    assert (order["total"], order["total_cost"], order["margin"]) == ("95.49", "43.00", "52.49")
    copied = await items(client, admin, "order_lines", order_id=order["id"])
    assert [
        (c["product_id"], c["quantity"], c["unit_price"], c["discount_percent"]) for c in copied
    ] == [
        (a["id"], "2.000", "45.00", "5.00"),
        (b["id"], "3.000", "3.33", "0.00"),
    ]
    now = (await client.get(f"/api/v1/quotes/{quote['id']}", headers=admin.headers)).json()
    assert (now["status"], now["version"]) == ("accepted", 2)
    again = await _accept(client, admin, quote["id"])
    assert again.status_code == 409, again.text
    assert (again.json()["code"], again.json()["field"]) == ("already_accepted", "status")
    assert len(await items(client, admin, "orders")) == 1


async def test_a_failed_accept_changes_nothing(
    services: Services, client: httpx.AsyncClient
) -> None:
    """The order cannot be made (the opportunity has no account): no order, the quote stays."""
    admin = await new_tenant(services, client, "qfail")
    deal = await opportunity(client, admin, None)
    widget = await product(client, admin, "5.00")
    quote = await _quote(client, admin, deal["id"], [{"product_id": widget["id"], "quantity": 1}])
    refused = await _accept(client, admin, quote["id"])
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "account_id"
    assert await items(client, admin, "orders") == []
    assert await items(client, admin, "order_lines") == []
    kept = (await client.get(f"/api/v1/quotes/{quote['id']}", headers=admin.headers)).json()
    assert (kept["status"], kept["version"]) == ("draft", 1)


async def test_another_tenants_quote_is_not_found(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "qiso")
    other = await new_tenant(services, client, "qiso2")
    deal = await opportunity(client, other, (await account(client, other))["id"])
    theirs = await _quote(client, other, deal["id"], [])
    answers = [
        await _accept(client, admin, theirs["id"]),
        await _accept(client, admin, "00000000-0000-0000-0000-000000000000"),
        await _accept(client, admin, "not-an-id"),
    ]
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(404, "not_found")] * 3
    kept = (await client.get(f"/api/v1/quotes/{theirs['id']}", headers=other.headers)).json()
    assert kept["status"] == "draft"


async def test_bad_quote_lines_are_refused_whole(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "qbad")
    deal = await opportunity(client, admin, None)
    widget = await product(client, admin, None)  # no price: a line must name one
    body = {"name": "Offer", "opportunity_id": deal["id"]}
    for lines, field, code in (
        ([{"product_id": widget["id"], "quantity": 1}], "lines[0].unit_price", "required"),
        (
            [{"product_id": widget["id"], "quantity": 1, "unit_price": 1, "discount_percent": 101}],
            "lines[0].discount_percent",
            "out_of_range",
        ),
        (
            [{"product_id": widget["id"], "quantity": 1, "unit_price": 1, "unit_cost": 1}],
            "unit_cost",
            "unknown_field",  # quote lines carry no cost
        ),
    ):
        refused = await client.post(
            "/api/v1/quotes", json={**body, "lines": lines}, headers=admin.headers
        )
        assert refused.status_code in (400, 422), refused.text
        assert (refused.json()["code"], refused.json()["field"].split(".")[-1]) == (
            code,
            field.split(".")[-1],
        ), refused.text
    assert await items(client, admin, "quotes") == []
    assert await items(client, admin, "quote_lines") == []


# The operation depth limit (10) leaves no room for account -> opportunities -> quotes -> lines
# in one Relay document (edges/node cost two levels each): the chain is read in two
# overlapping documents, each at a constant number of statements whatever the page sizes.
NESTED = (
    "{ accounts(first: %d) { edges { node { id opportunities(first: %d) { edges { node { id "
    "quotes(first: %d) { edges { node { id total } } } } } } } } } }",
    "{ opportunities(first: %d) { edges { node { id account { id } quotes(first: %d) { edges "
    "{ node { id lines(first: %d) { edges { node { id unitPrice product { sku } } } } } } } } } "
    "} }",
)


def _quotes_of(result: dict[str, Any], top: str) -> list[dict[str, Any]]:
    edges = result["data"][top]["edges"]
    deals = (
        [o for a in edges for o in a["node"]["opportunities"]["edges"]]
        if top == "accounts"
        else edges
    )
    return [q["node"] for o in deals for q in o["node"]["quotes"]["edges"]]


async def test_nested_account_opportunities_quotes_lines_cost_constant_statements(
    services: Services, client: httpx.AsyncClient
) -> None:
    tenant = await new_tenant(services, client, "qnest")
    widget = await product(client, tenant, "2.00")
    for _ in range(3):
        acme = await account(client, tenant)
        for _ in range(3):
            deal = await opportunity(client, tenant, acme["id"])
            for _ in range(3):
                line = {"product_id": widget["id"], "quantity": 1}
                await _quote(client, tenant, deal["id"], [line, line, line])
    counted = [0]

    def count(*_: Any) -> None:
        counted[0] += 1

    engine = services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    found: dict[tuple[str, int], int] = {}
    try:
        # Each size keeps its fewest (a periodic policy-version check may add one statement).
        for size in (1, 1, 3, 3, 1, 3):
            for top, document in zip(("accounts", "opportunities"), NESTED, strict=True):
                counted[0] = 0
                result = await gql(client, tenant, document % (size, size, size))
                assert "errors" not in result, result
                quotes = _quotes_of(result, top)
                assert len(quotes) == (size**3 if top == "accounts" else size**2)
                assert all(q["total"] == "6.00" for q in quotes if "total" in q)
                assert all(len(q["lines"]["edges"]) == size for q in quotes if "lines" in q)
                key = (top, size)
                found[key] = min(found.get(key, counted[0]), counted[0])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert found[("accounts", 1)] == found[("accounts", 3)], found
    assert found[("opportunities", 1)] == found[("opportunities", 3)], found


async def test_graphql_writes_lines_with_the_quote_and_accepts_once(
    services: Services, client: httpx.AsyncClient
) -> None:
    tenant = await new_tenant(services, client, "qgql")
    acme = await account(client, tenant)
    deal = await opportunity(client, tenant, acme["id"])
    widget = await product(client, tenant, "7.50", cost="2.50")
    created = await gql(
        client,
        tenant,
        "mutation($i: CreateQuoteInput!) { createQuote(input: $i) { record { id total "
        "lines { edges { node { quantity unitPrice } } } } errors { field code } } }",
        {
            "i": {
                "name": "Offer",
                "opportunityId": deal["id"],
                "lines": [{"productId": widget["id"], "quantity": "4", "discountPercent": "25"}],
            }
        },
    )
    quote = created["data"]["createQuote"]["record"]
    assert quote["total"] == "22.50"  # 4 x 7.50 x 0.75
    assert quote["lines"]["edges"][0]["node"] == {"quantity": "4.000", "unitPrice": "7.50"}
    bad = await gql(
        client,
        tenant,
        "mutation($i: CreateQuoteInput!) { createQuote(input: $i) { record { id } "
        "errors { field code } } }",
        {
            "i": {
                "name": "Bad",
                "opportunityId": deal["id"],
                "lines": [{"productId": widget["id"], "quantity": "-1"}],
            }
        },
    )
    assert bad["data"]["createQuote"] == {
        "record": None,
        "errors": [{"field": "lines[0].quantity", "code": "out_of_range"}],
    }
    accept = (
        "mutation($i: AcceptQuoteInput!) { acceptQuote(input: $i) { order { quoteId total "
        "totalCost margin } errors { field code } } }"
    )
    first = await gql(client, tenant, accept, {"i": {"id": quote["id"]}})
    assert first["data"]["acceptQuote"] == {
        "order": {
            "quoteId": quote["id"],
            "total": "22.50",
            "totalCost": "10.00",
            "margin": "12.50",
        },
        "errors": [],
    }
    second = await gql(client, tenant, accept, {"i": {"id": quote["id"]}})
    assert second["data"]["acceptQuote"] == {
        "order": None,
        "errors": [{"field": "status", "code": "already_accepted"}],
    }
    assert len(await items(client, tenant, "orders")) == 1
    assert len(await items(client, tenant, "quotes")) == 1
