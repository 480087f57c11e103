"""`caravan demo --size small` seeds a living tenant: reps in two teams, leads (some converted),
deals across the pipeline, a year of orders with lines, cases; checked over REST."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from tests.cli.test_cli import _env, run
from tests.conftest import PASSWORD, Cluster, sign_in

DEMO_EMAIL = "admin@demo.example"


async def _all(client: httpx.AsyncClient, path: str, token: str) -> list[dict[str, Any]]:
    response = await client.get(
        f"/api/v1/{path}?limit=200", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _quarter(day: str) -> str:
    when = date.fromisoformat(day)
    return f"{when.year}-Q{(when.month - 1) // 3 + 1}"


async def test_small_demo_is_a_living_tenant(cluster: Cluster, client: httpx.AsyncClient) -> None:
    slug = f"demol-{uuid.uuid4().hex[:8]}"
    made = run(["demo", "--slug", slug, "--size", "small", "--password", PASSWORD], _env(cluster))
    assert made.returncode == 0, made.stderr
    assert f"Demo tenant '{slug}': 8 accounts" in made.stdout
    # Every rep is printed with the admin's password.
    assert made.stdout.count("(sales_manager, ") == 2
    assert made.stdout.count("(salesperson, ") == 4
    token = (await sign_in(client, slug, DEMO_EMAIL, PASSWORD))["access_token"]

    leads = await _all(client, "leads", token)
    assert len(leads) == 9
    converted = [lead for lead in leads if lead["status"] == "converted"]
    assert 0 < len(converted) < len(leads)
    assert all(lead["converted_contact_id"] for lead in converted)

    deals = await _all(client, "opportunities", token)
    assert len({deal["stage"] for deal in deals}) >= 4
    assert len({deal["owner_id"] for deal in deals}) >= 4  # the reps', not the admin's
    moved = next(deal for deal in deals if deal["stage"] == "negotiation")
    history = await client.get(
        f"/api/v1/opportunities/{moved['id']}/stages",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert history.status_code == 200, history.text
    assert len(history.json()["items"]) == 4  # prospecting .. negotiation, stage by stage

    orders = await _all(client, "orders", token)
    assert len(orders) == 14
    assert all(Decimal(order["total"]) > 0 for order in orders)
    assert {order["status"] for order in orders} >= {"fulfilled", "open"}
    months = {order["ordered_at"][:7] for order in orders}
    assert len(months) >= 6
    assert all(order["ordered_at"][:10] <= date.today().isoformat() for order in orders)
    lines = await _all(client, "order_lines", token)
    assert {line["order_id"] for line in lines} == {order["id"] for order in orders}
    assert all(Decimal(line["unit_cost"]) > 0 for line in lines)

    teams = await _all(client, "teams", token)
    assert len(teams) == 2 and all(len(team["member_ids"]) == 3 for team in teams)

    # A manager's forecast for a quarter in which their team has open deals.
    owners = Counter(deal["owner_id"] for deal in deals)
    rows_seen = 0
    for first, last in (("greta", "hansen"), ("luca", "rossi")):
        manager = (await sign_in(client, slug, f"{first}.{last}@demo.example", PASSWORD))[
            "access_token"
        ]
        open_deals = [
            deal
            for deal in await _all(client, "opportunities", manager)
            if not deal["stage"].startswith("closed")
        ]
        assert open_deals and len(open_deals) < sum(owners.values())  # team scope, not all
        forecast = await client.get(
            "/api/v1/forecast",
            params={"period": _quarter(open_deals[0]["close_date"]), "group_by": "owner"},
            headers={"Authorization": f"Bearer {manager}"},
        )
        assert forecast.status_code == 200, forecast.text
        rows_seen += len(forecast.json()["rows"])
        assert Decimal(forecast.json()["total"]["amount"]) > 0
    assert rows_seen >= 2

    assert len(await _all(client, "cases", token)) == 3
    assert len(await _all(client, "quotes", token)) > 0
