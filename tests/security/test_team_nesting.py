"""Business units: teams nest. A member of a parent team sees, under the team scope, the
records of every team beneath it; a member of a child team never sees upwards or sideways.
The hierarchy refuses cycles, also when two moves that would close one are released together."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant
from tests.security.policy_helpers import (
    assert_problem,
    create_record,
    create_role,
    gql_data,
    user_with_roles,
)


async def _team(
    client: httpx.AsyncClient, admin: TenantUser, name: str, parent: str | None = None
) -> str:
    body: dict[str, Any] = {"name": name}
    if parent is not None:
        body["parent_team_id"] = parent
    made = await client.post("/api/v1/teams", headers=admin.headers, json=body)
    assert made.status_code == 201, made.text
    assert made.json()["parent_team_id"] == parent
    team_id: str = made.json()["id"]
    return team_id


async def _members(
    client: httpx.AsyncClient, admin: TenantUser, team: str, *users: TenantUser
) -> None:
    put = await client.put(
        f"/api/v1/teams/{team}/members",
        headers=admin.headers,
        json={"user_ids": [str(u.user_id) for u in users]},
    )
    assert put.status_code == 200, put.text


async def _visible(client: httpx.AsyncClient, user: TenantUser) -> set[str]:
    listed = await client.get("/api/v1/contacts?limit=200", headers=user.headers)
    assert listed.status_code == 200, listed.text
    return {c["last_name"] for c in listed.json()["items"]}


async def test_a_parent_teams_member_sees_the_child_teams_records_and_not_the_reverse(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "units")
    await create_role(
        client, admin, "team_reader",
        [("allow", "contact", "read"), ("allow", "contact", "create"),
         ("allow", "contact.*", "read"), ("allow", "contact.*", "create")],
        {"contact": "team"},
    )  # fmt: skip
    head, rep, peer, stranger = [
        await user_with_roles(services, client, admin, name, ["team_reader"])
        for name in ("head", "rep", "peer", "stranger")
    ]
    region = await _team(client, admin, "Region North")
    branch = await _team(client, admin, "Branch Oslo", parent=region)
    other = await _team(client, admin, "Region South")
    await _members(client, admin, region, head)
    await _members(client, admin, branch, rep, peer)
    await _members(client, admin, other, stranger)
    for user, name in ((head, "Head"), (rep, "Rep"), (peer, "Peer"), (stranger, "Stranger")):
        await create_record(client, user, "contacts", {"last_name": name})

    assert await _visible(client, head) == {"Head", "Rep", "Peer"}
    assert await _visible(client, rep) == {"Rep", "Peer"}  # not the parent team's head
    assert await _visible(client, stranger) == {"Stranger"}

    # Lifting the branch to the top ends the head's view of it, at the next request.
    lifted = await client.put(
        f"/api/v1/teams/{branch}/parent", headers=admin.headers, json={"parent_team_id": None}
    )
    assert lifted.status_code == 200 and lifted.json()["parent_team_id"] is None
    assert await _visible(client, head) == {"Head"}


async def test_the_hierarchy_refuses_cycles_and_foreign_teams(
    services: Services, client: httpx.AsyncClient, tenant_b: TenantUser
) -> None:
    admin = await new_tenant(services, client, "units-cycle")
    top = await _team(client, admin, "Top")
    middle = await _team(client, admin, "Middle", parent=top)
    bottom = await _team(client, admin, "Bottom", parent=middle)
    for team, parent in ((top, bottom), (top, top), (middle, bottom)):
        refused = await client.put(
            f"/api/v1/teams/{team}/parent", headers=admin.headers, json={"parent_team_id": parent}
        )
        assert_problem(refused, 422, "cycle", "parent_team_id")
    foreign = await _team(client, tenant_b, "Elsewhere")
    for attempt in (
        client.put(
            f"/api/v1/teams/{bottom}/parent",
            headers=admin.headers,
            json={"parent_team_id": foreign},
        ),
        client.post(
            "/api/v1/teams", headers=admin.headers, json={"name": "X", "parent_team_id": foreign}
        ),
    ):
        assert_problem(await attempt, 422, "unknown_team", "parent_team_id")
    # Deleting a parent keeps its child, at the top.
    deleted = await client.delete(f"/api/v1/teams/{middle}", headers=admin.headers)
    assert deleted.status_code == 204
    kept = await client.get(f"/api/v1/teams/{bottom}", headers=admin.headers)
    assert kept.status_code == 200 and kept.json()["parent_team_id"] is None


async def test_two_moves_that_would_close_a_cycle_released_together_cannot_both_win(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "units-race")
    for _ in range(5):
        a = await _team(client, admin, f"A-{_}")
        b = await _team(client, admin, f"B-{_}")
        results = await asyncio.gather(
            client.put(
                f"/api/v1/teams/{a}/parent", headers=admin.headers, json={"parent_team_id": b}
            ),
            client.put(
                f"/api/v1/teams/{b}/parent", headers=admin.headers, json={"parent_team_id": a}
            ),
        )
        assert sorted(r.status_code for r in results) == [200, 422], [r.text for r in results]


async def test_graphql_places_teams_with_the_same_rules(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "units-gql")
    created = gql_data(
        await gql(client, admin, 'mutation { createTeam(name: "Parent") { team { id } } }')
    )
    parent = created["createTeam"]["team"]["id"]
    child = gql_data(
        await gql(
            client,
            admin,
            'mutation($p: ID) { createTeam(name: "Child", parentTeamId: $p) '
            "{ team { id parentTeamId } errors { field code } } }",
            {"p": parent},
        )
    )["createTeam"]["team"]
    assert child["parentTeamId"] == parent
    move = (
        "mutation($i: SetTeamParentInput!) { setTeamParent(input: $i) "
        "{ team { id parentTeamId } errors { field code } } }"
    )
    cycle = gql_data(
        await gql(client, admin, move, {"i": {"teamId": parent, "parentTeamId": child["id"]}})
    )
    assert cycle["setTeamParent"] == {
        "team": None,
        "errors": [{"field": "parentTeamId", "code": "cycle"}],
    }
    top = gql_data(
        await gql(client, admin, move, {"i": {"teamId": child["id"], "parentTeamId": None}})
    )
    assert top["setTeamParent"]["team"]["parentTeamId"] is None
