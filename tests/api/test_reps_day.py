"""A rep's day, end to end over REST as a phone would drive it: the agenda, a call logged, a
lead converted, the deal moved forward, a quote sent and turned into an order; then the
manager's weighted forecast of the team. Every step as the rep (or manager) themself, with the
built-in roles: nothing here runs as an admin but the setting up of the tenant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from backend.runtime import Services
from tests.api.sales_helpers import patch
from tests.conftest import new_tenant
from tests.security.policy_helpers import user_with_roles


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def test_a_reps_day_from_agenda_to_order_and_the_managers_forecast(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "repday")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    manager = await user_with_roles(services, client, admin, "mgr", ["sales_manager"])
    team = _ok(
        await client.post("/api/v1/teams", json={"name": "North"}, headers=admin.headers), 201
    )
    members = {"user_ids": [str(rep.user_id), str(manager.user_id)]}
    _ok(
        await client.put(f"/api/v1/teams/{team['id']}/members", json=members, headers=admin.headers)
    )
    product = _ok(
        await client.post(
            "/api/v1/products",
            json={"name": "Pump", "sku": "P-1", "unit_price": "250.00", "unit_cost": "150.00"},
            headers=admin.headers,
        ),
        201,
    )

    # Morning: the rep's zone, then today's agenda with a meeting and an overdue task.
    _ok(await client.patch("/api/v1/me", json={"time_zone": "Europe/Berlin"}, headers=rep.headers))
    soon = datetime.now(UTC) + timedelta(minutes=30)
    for body in (
        {"kind": "meeting", "subject": "Site visit", "starts_at": soon.isoformat()},
        {"kind": "task", "subject": "Send brochure", "due_at": "2020-01-01T09:00:00Z"},
    ):
        _ok(await client.post("/api/v1/activities", json=body, headers=rep.headers), 201)
    agenda = _ok(await client.get("/api/v1/agenda", headers=rep.headers))
    assert agenda["time_zone"] == "Europe/Berlin"
    subjects = {(i["activity"]["subject"], i["overdue"]) for i in agenda["items"]}
    assert {("Site visit", False), ("Send brochure", True)} <= subjects

    # A call with a prospect, logged; the prospect is a lead, converted with a deal.
    lead = _ok(
        await client.post(
            "/api/v1/leads",
            json={"first_name": "Ada", "last_name": "Berg", "company": "Berg Mills"},
            headers=rep.headers,
        ),
        201,
    )
    call = {"kind": "call", "subject": "Intro call with Ada", "completed_at": soon.isoformat()}
    _ok(await client.post("/api/v1/activities", json=call, headers=rep.headers), 201)
    close = date.today() + timedelta(days=20)
    converted = _ok(
        await client.post(
            f"/api/v1/leads/{lead['id']}/convert",
            json={"create_opportunity": {"name": "Mill pumps", "amount": "1000.00",
                                         "close_date": close.isoformat()}},
            headers=rep.headers,
        )
    )  # fmt: skip
    assert converted["lead"]["status"] == "converted"
    deal = converted["opportunity"]
    assert deal["owner_id"] == str(rep.user_id) and deal["account_id"] == converted["account"]["id"]

    # The deal moves forward; its stage history says so.
    moved = _ok(await patch(client, rep, "opportunities", deal, stage="proposal"))
    stays = _ok(await client.get(f"/api/v1/opportunities/{deal['id']}/stages", headers=rep.headers))
    assert [s["stage_name"] for s in stays["items"]][-2:] == ["prospecting", "proposal"]

    # A quote with a line from the catalog, sent, then accepted: the order carries the totals.
    quote = _ok(
        await client.post(
            "/api/v1/quotes",
            json={"name": "Offer", "opportunity_id": deal["id"], "currency": "EUR",
                  "lines": [{"product_id": product["id"], "quantity": "4"}]},
            headers=rep.headers,
        ),
        201,
    )  # fmt: skip
    assert Decimal(quote["total"]) == Decimal("1000.00")
    sent = _ok(await patch(client, rep, "quotes", quote, status="sent"))
    order = _ok(await client.post(f"/api/v1/quotes/{sent['id']}/accept", headers=rep.headers), 201)
    assert Decimal(order["total"]) == Decimal("1000.00")
    assert {"total_cost", "margin"} <= set(order["withheld_fields"])  # not the rep's to see
    assert "total_cost" not in order and "margin" not in order

    # The manager sees the team's weighted forecast: the deal at its stage's probability.
    quarter = f"{close.year}-Q{(close.month - 1) // 3 + 1}"
    forecast = _ok(
        await client.get(
            f"/api/v1/forecast?period={quarter}&group_by=owner", headers=manager.headers
        )
    )
    (row,) = [r for r in forecast["rows"] if r["key"] == str(rep.user_id)]
    probability = Decimal(moved["probability"] or 50)  # the proposal stage's default: 50
    assert Decimal(row["amount"]) == Decimal("1000.00")
    assert Decimal(row["weighted_amount"]) == Decimal("1000.00") * probability / 100
