"""Stage history: every stage move of an opportunity records a stay (stage, entered, left, by
whom) in the write's own transaction; `GET /opportunities/{id}/stages` lists them with the
time in each stage, to whoever may read the opportunity."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime
from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant
from tests.security.policy_helpers import assert_problem, create_role, gql_data, user_with_roles

DEAL = {"name": "Harbour cranes", "stage": "prospecting", "close_date": "2026-03-01"}


@pytest.fixture(scope="module")
async def admin(services: Services, client: httpx.AsyncClient) -> TenantUser:
    return await new_tenant(services, client, "stages")


async def _create(client: httpx.AsyncClient, user: TenantUser) -> dict[str, Any]:
    made = await client.post("/api/v1/opportunities", json=DEAL, headers=user.headers)
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def _move(
    client: httpx.AsyncClient, user: TenantUser, record: dict[str, Any], **fields: Any
) -> httpx.Response:
    return await client.patch(
        f"/api/v1/opportunities/{record['id']}",
        json=fields,
        headers={**user.headers, "If-Match": f'"{record["version"]}"'},
    )


async def _stays(
    client: httpx.AsyncClient, user: TenantUser, record_id: str
) -> list[dict[str, Any]]:
    got = await client.get(f"/api/v1/opportunities/{record_id}/stages", headers=user.headers)
    assert got.status_code == 200, got.text
    items: list[dict[str, Any]] = got.json()["items"]
    return items


def _at(raw: str) -> datetime:
    return datetime.fromisoformat(raw)


async def test_each_move_closes_one_stay_and_opens_the_next(
    services: Services, client: httpx.AsyncClient, admin: TenantUser
) -> None:
    rep = await user_with_roles(services, client, admin, "mover", ["salesperson"])
    deal = await _create(client, rep)
    first = await _stays(client, rep, deal["id"])
    assert [(s["stage_name"], s["left_at"]) for s in first] == [("prospecting", None)]
    assert first[0]["moved_by"] == str(rep.user_id)
    await asyncio.sleep(0.3)
    moved = await _move(client, rep, deal, stage="proposal")
    assert moved.status_code == 200, moved.text
    # A change that leaves the stage alone records no stay.
    renamed = await _move(client, rep, moved.json(), name="Harbour cranes, phase 2")
    assert renamed.status_code == 200, renamed.text
    await asyncio.sleep(0.2)
    won = await _move(client, admin, renamed.json(), stage_id=None, stage="closed_won")
    assert won.status_code == 200, won.text
    stays = await _stays(client, admin, deal["id"])
    assert [(s["stage_name"], s["kind"]) for s in stays] == [
        ("prospecting", "open"),
        ("proposal", "open"),
        ("closed_won", "won"),
    ]
    assert [s["moved_by"] for s in stays] == [
        str(rep.user_id),
        str(rep.user_id),
        str(admin.user_id),
    ]
    for stay, after in itertools.pairwise(stays):
        assert stay["left_at"] == after["entered_at"]
        spent = (_at(stay["left_at"]) - _at(stay["entered_at"])).total_seconds()
        assert stay["seconds_in_stage"] == pytest.approx(spent, abs=0.002)
    assert stays[0]["seconds_in_stage"] >= 0.3
    assert stays[1]["seconds_in_stage"] >= 0.2
    assert stays[2]["left_at"] is None and stays[2]["seconds_in_stage"] >= 0


async def test_a_refused_move_records_nothing(client: httpx.AsyncClient, admin: TenantUser) -> None:
    made = await client.post(
        "/api/v1/pipelines",
        json={"name": "Other", "stages": [{"name": "Only", "probability": 5}]},
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    deal = await _create(client, admin)
    refused = await _move(client, admin, deal, stage_id=made.json()["stages"][0]["id"])
    assert_problem(refused, 422, field="stage_id")
    assert [s["stage_name"] for s in await _stays(client, admin, deal["id"])] == ["prospecting"]


async def test_scope_and_policy_are_those_of_reading_the_opportunity(
    services: Services, client: httpx.AsyncClient, admin: TenantUser
) -> None:
    owner = await user_with_roles(services, client, admin, "own1", ["salesperson"])
    stranger = await user_with_roles(services, client, admin, "own2", ["salesperson"])
    deal = await _create(client, owner)
    missing = await client.get(
        f"/api/v1/opportunities/{deal['id']}/stages", headers=stranger.headers
    )
    assert_problem(missing, 404)
    other = await new_tenant(services, client, "stages-other")
    assert_problem(
        await client.get(f"/api/v1/opportunities/{deal['id']}/stages", headers=other.headers), 404
    )
    assert_problem(
        await client.get("/api/v1/opportunities/not-an-id/stages", headers=admin.headers), 404
    )
    await create_role(
        client,
        admin,
        "no_stage",
        [("allow", "*", "read"), ("deny", "opportunity.stage_id", "read")],
        {"*": "tenant"},
    )
    blind = await user_with_roles(services, client, admin, "blind", ["no_stage"])
    hidden = await client.get(f"/api/v1/opportunities/{deal['id']}/stages", headers=blind.headers)
    assert_problem(hidden, 403, code="field_forbidden", field="stage_id")


async def test_a_deleted_opportunity_has_no_stage_history(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    deal = await _create(client, admin)
    gone = await client.delete(f"/api/v1/opportunities/{deal['id']}", headers=admin.headers)
    assert gone.status_code == 204, gone.text
    assert_problem(
        await client.get(f"/api/v1/opportunities/{deal['id']}/stages", headers=admin.headers), 404
    )


async def test_stage_history_over_graphql(client: httpx.AsyncClient, admin: TenantUser) -> None:
    deal = await _create(client, admin)
    moved = await _move(client, admin, deal, stage="negotiation")
    assert moved.status_code == 200, moved.text
    data = gql_data(
        await gql(
            client,
            admin,
            "query S($id: ID!) { opportunityStages(id: $id) "
            "{ stageName kind leftAt secondsInStage } }",
            {"id": deal["id"]},
        )
    )
    names = [(s["stageName"], s["leftAt"] is None) for s in data["opportunityStages"]]
    assert names == [("prospecting", False), ("negotiation", True)]
