"""List range filters (`amount_min`/`amount_max`, `close_date_from`/`close_date_to`,
`due_at_from`...), choice filters (`stage`, `kind`, activity `status`) and the amount and
close-date sorts, through REST and GraphQL; a bad value is a 422 naming the parameter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant
from tests.security.policy_helpers import assert_problem, create_role, gql_data, user_with_roles

DEALS = {  # name: (amount, close date, stage)
    "a": ("100.00", "2026-01-10", "prospecting"),
    "b": ("500.00", "2026-02-20", "proposal"),
    "c": (None, "2026-03-05", "proposal"),
    "d": ("1000.00", "2026-02-20", "closed_won"),
    "e": ("500.00", "2026-04-01", "negotiation"),
}
TASKS = {  # subject: (kind, due, starts, completed)
    "t1": ("task", "2026-03-01T09:00:00Z", None, None),
    "t2": ("task", "2026-03-02T09:00:00Z", None, "2026-03-02T10:00:00Z"),
    "m1": ("meeting", None, "2026-03-01T14:00:00+02:00", None),
    "c1": ("call", "2026-03-05T09:00:00Z", "2026-03-04T09:00:00Z", None),
}


@dataclass
class World:
    admin: TenantUser
    ids: dict[str, str]  # deal or activity name -> id

    def names(self, items: list[dict[str, Any]]) -> list[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id[i["id"]] for i in items]


@pytest.fixture(scope="module")
async def world(services: Services, client: httpx.AsyncClient) -> World:
    admin = await new_tenant(services, client, "ranges")
    ids: dict[str, str] = {}
    for name, (amount, close, stage) in DEALS.items():
        body = {"name": name, "amount": amount, "close_date": close, "stage": stage}
        made = await client.post("/api/v1/opportunities", json=body, headers=admin.headers)
        assert made.status_code == 201, made.text
        ids[name] = made.json()["id"]
    for subject, (kind, due, starts, done) in TASKS.items():
        body = {"subject": subject, "kind": kind, "due_at": due, "starts_at": starts}
        body["completed_at"] = done
        made = await client.post("/api/v1/activities", json=body, headers=admin.headers)
        assert made.status_code == 201, made.text
        ids[subject] = made.json()["id"]
    return World(admin, ids)


async def _list(
    client: httpx.AsyncClient, world: World, plural: str, **params: Any
) -> list[dict[str, Any]]:
    got = await client.get(f"/api/v1/{plural}", params=params, headers=world.admin.headers)
    assert got.status_code == 200, got.text
    items: list[dict[str, Any]] = got.json()["items"]
    return items


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"amount_min": "500"}, ["b", "d", "e"]),
        ({"amount_max": "500.00"}, ["a", "b", "e"]),
        ({"amount_min": "200", "amount_max": "999.99"}, ["b", "e"]),
        ({"close_date_from": "2026-02-20", "close_date_to": "2026-03-05"}, ["b", "c", "d"]),
        ({"close_date_to": "2026-01-10"}, ["a"]),
        ({"stage": "proposal"}, ["b", "c"]),
        ({"stage": "proposal", "amount_min": "1"}, ["b"]),
    ],
)
async def test_opportunity_filters(
    client: httpx.AsyncClient, world: World, params: dict[str, str], expected: list[str]
) -> None:
    assert sorted(world.names(await _list(client, world, "opportunities", **params))) == expected


async def test_stage_id_filter(client: httpx.AsyncClient, world: World) -> None:
    [pipeline] = (await client.get("/api/v1/pipelines", headers=world.admin.headers)).json()[
        "items"
    ]
    proposal = next(s["id"] for s in pipeline["stages"] if s["name"] == "proposal")
    items = await _list(
        client, world, "opportunities", stage_id=proposal, pipeline_id=pipeline["id"]
    )
    assert sorted(world.names(items)) == ["b", "c"]


async def _walk(client: httpx.AsyncClient, world: World, sort: str) -> list[str]:
    """The whole list, one record a page: keyset cursors must carry the sort key."""
    seen: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, str | int] = {"sort": sort, "limit": 1}
        if after:
            params["after"] = after
        got = await client.get("/api/v1/opportunities", params=params, headers=world.admin.headers)
        assert got.status_code == 200, got.text
        seen += world.names(got.json()["items"])
        after = got.json()["next"]
        if after is None:
            return seen


async def test_sorts_by_amount_and_close_date_page_through_everything(
    client: httpx.AsyncClient, world: World
) -> None:
    # No amount sorts after every amount (first when descending); ties by id (creation order).
    assert await _walk(client, world, "amount") == ["a", "b", "e", "d", "c"]
    assert await _walk(client, world, "-amount") == ["c", "d", "e", "b", "a"]
    assert await _walk(client, world, "close_date") == ["a", "b", "d", "c", "e"]
    assert await _walk(client, world, "-close_date") == ["e", "c", "d", "b", "a"]


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"amount_min": "abc"}, "amount_min", "invalid_number"),
        ({"amount_max": "NaN"}, "amount_max", "invalid_number"),
        ({"amount_max": "1e400"}, "amount_max", "out_of_range"),
        ({"close_date_from": "2026-02-30"}, "close_date_from", "invalid_date"),
        ({"close_date_to": "2026-02-03T10:00:00"}, "close_date_to", "invalid_date"),
        ({"amount_min": "10", "amount_max": "5"}, "amount_min", "empty_range"),
        ({"stage": "won"}, "stage", "invalid_choice"),
        ({"sort": "-probability"}, "sort", "invalid_sort"),
    ],
)
async def test_bad_values_name_the_parameter(
    client: httpx.AsyncClient, world: World, params: dict[str, str], field: str, code: str
) -> None:
    got = await client.get("/api/v1/opportunities", params=params, headers=world.admin.headers)
    assert_problem(got, 400 if field == "sort" else 422, code=code, field=field)


async def test_a_cursor_of_another_sort_or_forged_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    first = await client.get(
        "/api/v1/opportunities", params={"sort": "amount", "limit": 1}, headers=world.admin.headers
    )
    cursor = first.json()["next"]
    other = await client.get(
        "/api/v1/opportunities",
        params={"sort": "close_date", "after": cursor},
        headers=world.admin.headers,
    )
    assert_problem(other, 400, code="invalid_cursor", field="after")


async def test_filters_and_sorts_on_a_hidden_field_are_refused(
    services: Services, client: httpx.AsyncClient, world: World
) -> None:
    await create_role(
        client,
        world.admin,
        "no_amount",
        [("allow", "*", "read"), ("deny", "opportunity.amount", "read")],
        {"*": "tenant"},
    )
    user = await user_with_roles(services, client, world.admin, "noamount", ["no_amount"])
    for params in ({"amount_min": "1"}, {"sort": "-amount"}):
        got = await client.get("/api/v1/opportunities", params=params, headers=user.headers)
        assert_problem(got, 403, code="field_forbidden", field="amount")
    allowed = await client.get(
        "/api/v1/opportunities", params={"close_date_to": "2026-01-31"}, headers=user.headers
    )
    assert world.names(allowed.json()["items"]) == ["a"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"due_at_from": "2026-03-01T09:00:00Z", "due_at_to": "2026-03-02T09:00:00Z"},
            ["t1", "t2"],
        ),
        ({"due_at_from": "2026-03-01T10:00:00+01:00"}, ["c1", "t1", "t2"]),
        ({"starts_at_to": "2026-03-01T12:00:00Z"}, ["m1"]),
        ({"status": "open"}, ["c1", "m1", "t1"]),
        ({"status": "done"}, ["t2"]),
        ({"kind": "task", "status": "open"}, ["t1"]),
    ],
)
async def test_activity_filters(
    client: httpx.AsyncClient, world: World, params: dict[str, str], expected: list[str]
) -> None:
    assert sorted(world.names(await _list(client, world, "activities", **params))) == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"due_at_from": "tomorrow"}, "due_at_from"),
        ({"status": "closed"}, "status"),
        ({"kind": "lunch"}, "kind"),
    ],
)
async def test_bad_activity_filters(
    client: httpx.AsyncClient, world: World, params: dict[str, str], field: str
) -> None:
    got = await client.get("/api/v1/activities", params=params, headers=world.admin.headers)
    assert_problem(got, 422, field=field)


async def test_filters_and_sorts_over_graphql(client: httpx.AsyncClient, world: World) -> None:
    data = gql_data(
        await gql(
            client,
            world.admin,
            '{ opportunities(filter: {amountMin: "200", closeDateTo: "2026-03-31"}, '
            "orderBy: {field: AMOUNT, direction: DESC}) { edges { node { id amount } } } }",
        )
    )
    nodes = [e["node"] for e in data["opportunities"]["edges"]]
    assert world.names(nodes) == ["d", "b"]
    tasks = gql_data(
        await gql(
            client,
            world.admin,
            '{ activities(filter: {status: "done"}) { edges { node { id } } } }',
        )
    )
    assert world.names([e["node"] for e in tasks["activities"]["edges"]]) == ["t2"]
    bad = await gql(
        client, world.admin, '{ opportunities(filter: {stage: "won"}) { edges { node { id } } } }'
    )
    assert bad["errors"][0]["extensions"]["field"] == "stage", bad


async def test_graphql_pages_by_amount_with_the_nulls_last(
    client: httpx.AsyncClient, world: World
) -> None:
    query = (
        "query P($after: String) { opportunities(first: 2, after: $after, "
        "orderBy: {field: AMOUNT}) { edges { node { id } } "
        "pageInfo { hasNextPage endCursor } } }"
    )
    seen: list[str] = []
    after: str | None = None
    while True:
        page = gql_data(await gql(client, world.admin, query, {"after": after}))["opportunities"]
        seen += world.names([e["node"] for e in page["edges"]])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["a", "b", "e", "d", "c"]
