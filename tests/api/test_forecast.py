"""The forecast: open opportunities closing in a period, counted, summed and weighted per
owner, team or stage, against hand-computed figures, within the caller's record scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant
from tests.security.policy_helpers import assert_problem, create_role, gql_data, user_with_roles

ZERO = {"count": 0, "amount": "0.00", "weighted_amount": "0.00"}


@dataclass
class World:
    users: dict[str, TenantUser]
    teams: dict[str, str]
    stages: dict[str, str]

    def uid(self, who: str) -> str:
        return str(self.users[who].user_id)


async def _deal(client: httpx.AsyncClient, user: TenantUser, **fields: Any) -> None:
    body = {"name": "Deal", "close_date": "2026-02-15", **fields}
    made = await client.post("/api/v1/opportunities", json=body, headers=user.headers)
    assert made.status_code == 201, made.text


@pytest.fixture(scope="module")
async def world(services: Services, client: httpx.AsyncClient) -> World:
    admin = await new_tenant(services, client, "forecast")
    users = {"admin": admin}
    for name, roles in [
        ("sp1", ["salesperson"]),
        ("sp2", ["salesperson"]),
        ("sp3", ["salesperson"]),
        ("mgr", ["sales_manager"]),
    ]:
        users[name] = await user_with_roles(services, client, admin, name, roles)
    teams: dict[str, str] = {}
    for team, members in [("north", ["mgr", "sp1"]), ("south", ["sp2"])]:
        made = await client.post("/api/v1/teams", headers=admin.headers, json={"name": team})
        assert made.status_code == 201, made.text
        teams[team] = made.json()["id"]
        put = await client.put(
            f"/api/v1/teams/{teams[team]}/members",
            headers=admin.headers,
            json={"user_ids": [str(users[m].user_id) for m in members]},
        )
        assert put.status_code == 200, put.text
    sp1, sp2, sp3, mgr = users["sp1"], users["sp2"], users["sp3"], users["mgr"]
    # In 2026-Q1 and open:                          weight = amount x probability / 100
    await _deal(client, sp1, stage="proposal", amount=1000)  # 1000 x 50 (stage) = 500
    await _deal(client, sp1, stage="prospecting", amount=2000, probability=30)  # 600
    await _deal(client, sp2, stage="qualification", amount="300.50", probability=25)  # 75.125
    await _deal(client, mgr, stage="negotiation")  # no amount: counted, 0
    await _deal(client, admin, stage="prospecting", amount=100, probability=90)  # 90
    # Not in the Q1 forecast: closed, or closing later (2026-04: 400 x 80 = 320).
    await _deal(client, sp1, stage="closed_won", amount=5000)
    await _deal(client, sp1, stage="closed_lost", amount=7000)
    await _deal(client, sp1, stage="negotiation", amount=400, close_date="2026-04-15")
    await _deal(client, sp3, stage="proposal", amount=50, close_date="2025-12-31")
    pipelines = (await client.get("/api/v1/pipelines", headers=admin.headers)).json()["items"]
    stages = {s["name"]: s["id"] for s in pipelines[0]["stages"]}
    return World(users=users, teams=teams, stages=stages)


async def _forecast(
    client: httpx.AsyncClient, user: TenantUser, period: str, group_by: str
) -> dict[str, Any]:
    got = await client.get(
        "/api/v1/forecast", params={"period": period, "group_by": group_by}, headers=user.headers
    )
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


def _figures(count: int, amount: str, weighted: str) -> dict[str, Any]:
    return {"count": count, "amount": amount, "weighted_amount": weighted}


async def test_per_owner_for_the_whole_tenant(client: httpx.AsyncClient, world: World) -> None:
    body = await _forecast(client, world.users["admin"], "2026-Q1", "owner")
    assert (body["period"], body["group_by"]) == ("2026-Q1", "owner")
    assert (body["from"], body["to"]) == ("2026-01-01", "2026-03-31")
    assert {r["key"]: {k: v for k, v in r.items() if k != "key"} for r in body["rows"]} == {
        world.uid("sp1"): _figures(2, "3000.00", "1100.00"),
        world.uid("sp2"): _figures(1, "300.50", "75.13"),
        world.uid("mgr"): _figures(1, "0.00", "0.00"),
        world.uid("admin"): _figures(1, "100.00", "90.00"),
    }
    # 1000x50 + 2000x30 + 300.50x25 + 100x90 = 126512.50, / 100 = 1265.125
    assert body["total"] == _figures(5, "3400.50", "1265.13")


async def test_per_team_and_per_stage(client: httpx.AsyncClient, world: World) -> None:
    teams = await _forecast(client, world.users["admin"], "2026-Q1", "team")
    assert {r["key"]: r["weighted_amount"] for r in teams["rows"]} == {
        world.teams["north"]: "1100.00",
        world.teams["south"]: "75.13",
        None: "90.00",  # the admin is in no team
    }
    stages = await _forecast(client, world.users["admin"], "2026-Q1", "stage")
    assert {r["key"]: (r["count"], r["amount"], r["weighted_amount"]) for r in stages["rows"]} == {
        world.stages["prospecting"]: (2, "2100.00", "690.00"),
        world.stages["qualification"]: (1, "300.50", "75.13"),
        world.stages["proposal"]: (1, "1000.00", "500.00"),
        world.stages["negotiation"]: (1, "0.00", "0.00"),
    }


async def test_a_month(client: httpx.AsyncClient, world: World) -> None:
    body = await _forecast(client, world.users["admin"], "2026-04", "owner")
    assert (body["from"], body["to"]) == ("2026-04-01", "2026-04-30")
    assert body["rows"] == [{"key": world.uid("sp1"), **_figures(1, "400.00", "320.00")}]
    assert (await _forecast(client, world.users["admin"], "2026-05", "team"))["total"] == ZERO


@pytest.mark.parametrize(
    ("who", "total"),
    [
        ("mgr", _figures(3, "3000.00", "1100.00")),  # north: mgr and sp1
        ("sp1", _figures(2, "3000.00", "1100.00")),
        ("sp2", _figures(1, "300.50", "75.13")),
        ("sp3", ZERO),  # own deals only, none in the period
    ],
)
async def test_the_record_scope_applies(
    client: httpx.AsyncClient, world: World, who: str, total: dict[str, Any]
) -> None:
    body = await _forecast(client, world.users[who], "2026-Q1", "owner")
    assert body["total"] == total
    assert sum(r["count"] for r in body["rows"]) == total["count"]


async def test_another_tenant_sees_nothing(
    services: Services, client: httpx.AsyncClient, world: World
) -> None:
    other = await new_tenant(services, client, "forecast-other")
    assert (await _forecast(client, other, "2026-Q1", "owner")) == {
        "period": "2026-Q1",
        "group_by": "owner",
        "from": "2026-01-01",
        "to": "2026-03-31",
        "rows": [],
        "total": ZERO,
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "2026-Q5", "group_by": "owner"}, "period"),
        ({"period": "2026-13", "group_by": "owner"}, "period"),
        ({"period": "26-Q1", "group_by": "owner"}, "period"),
        ({"period": "0000-01", "group_by": "owner"}, "period"),
        ({"group_by": "owner"}, "period"),
        ({"period": "2026-Q1", "group_by": "region"}, "group_by"),
        ({"period": "2026-Q1"}, "group_by"),
    ],
)
async def test_bad_parameters_are_named(
    client: httpx.AsyncClient, world: World, params: dict[str, str], field: str
) -> None:
    got = await client.get("/api/v1/forecast", params=params, headers=world.users["admin"].headers)
    assert_problem(got, 422, field=field)


@pytest.mark.parametrize("field", ["amount", "probability"])
async def test_a_hidden_amount_or_probability_refuses(
    services: Services, client: httpx.AsyncClient, world: World, field: str
) -> None:
    admin = world.users["admin"]
    role = f"no_{field}"
    await create_role(
        client,
        admin,
        role,
        [("allow", "*", "read"), ("deny", f"opportunity.{field}", "read")],
        {"*": "tenant"},
    )
    user = await user_with_roles(services, client, admin, f"hidden{field}", [role])
    got = await client.get(
        "/api/v1/forecast", params={"period": "2026-Q1", "group_by": "owner"}, headers=user.headers
    )
    assert_problem(got, 403, code="field_forbidden", field=field)


async def test_forecast_over_graphql(client: httpx.AsyncClient, world: World) -> None:
    query = (
        "query F($p: String!, $g: String!) { forecast(period: $p, groupBy: $g) "
        "{ period groupBy firstDay lastDay rows { key count amount weightedAmount } "
        "total { count amount weightedAmount } } }"
    )
    data = gql_data(await gql(client, world.users["mgr"], query, {"p": "2026-Q1", "g": "team"}))
    assert data["forecast"]["total"] == {
        "count": 3,
        "amount": "3000.00",
        "weightedAmount": "1100.00",
    }
    assert data["forecast"]["rows"] == [
        {"key": world.teams["north"], "count": 3, "amount": "3000.00", "weightedAmount": "1100.00"}
    ]
    bad = await gql(client, world.users["mgr"], query, {"p": "Q1", "g": "team"})
    assert "errors" in bad and bad["errors"][0]["extensions"]["field"] == "period", bad
