"""Pipelines and stages: every tenant starts with the default pipeline (the six classic
stages); opportunities carry `pipeline_id` and `stage_id`, kept in step with the old `stage`
string; a stage of another pipeline is refused; only admins and managers edit pipelines."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant
from tests.security.policy_helpers import assert_problem, gql_codes, gql_data, user_with_roles

DEAL = {"name": "Fleet", "stage": "proposal", "amount": 1000, "close_date": "2026-02-10"}
CUSTOM = {
    "name": "Renewals",
    "stages": [
        {"name": "Lead", "probability": 10},
        {"name": "Demo", "probability": 40},
        {"name": "Signed", "probability": 100, "kind": "won"},
        {"name": "Dropped", "probability": 0, "kind": "lost"},
    ],
}


async def _pipelines(client: httpx.AsyncClient, user: TenantUser) -> list[dict[str, Any]]:
    listed = await client.get("/api/v1/pipelines", headers=user.headers)
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def _default(client: httpx.AsyncClient, user: TenantUser) -> dict[str, Any]:
    [default] = [p for p in await _pipelines(client, user) if p["is_default"]]
    return default


def _stage(pipeline: dict[str, Any], name: str) -> str:
    [stage] = [s["id"] for s in pipeline["stages"] if s["name"] == name]
    return str(stage)


async def _create(client: httpx.AsyncClient, user: TenantUser, **fields: Any) -> dict[str, Any]:
    made = await client.post("/api/v1/opportunities", json={**DEAL, **fields}, headers=user.headers)
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def _patch(
    client: httpx.AsyncClient, user: TenantUser, record: dict[str, Any], **fields: Any
) -> httpx.Response:
    return await client.patch(
        f"/api/v1/opportunities/{record['id']}",
        json=fields,
        headers={**user.headers, "If-Match": f'"{record["version"]}"'},
    )


@pytest.fixture(scope="module")
async def admin(services: Services, client: httpx.AsyncClient) -> TenantUser:
    return await new_tenant(services, client, "pipes")


async def test_a_new_tenant_has_the_default_pipeline(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    default = await _default(client, admin)
    assert default["name"] == "Sales"
    assert [(s["name"], s["position"], s["probability"], s["kind"]) for s in default["stages"]] == [
        ("prospecting", 0, 10, "open"),
        ("qualification", 1, 20, "open"),
        ("proposal", 2, 50, "open"),
        ("negotiation", 3, 80, "open"),
        ("closed_won", 4, 100, "won"),
        ("closed_lost", 5, 0, "lost"),
    ]


async def test_stage_and_stage_id_stay_in_step(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    default = await _default(client, admin)
    made = await _create(client, admin)
    assert made["pipeline_id"] == default["id"]
    assert made["stage_id"] == _stage(default, "proposal")
    moved = await _patch(client, admin, made, stage_id=_stage(default, "negotiation"))
    assert moved.status_code == 200, moved.text
    assert moved.json()["stage"] == "negotiation"
    won = await _patch(client, admin, moved.json(), stage="closed_won")
    assert won.status_code == 200, won.text
    assert won.json()["stage_id"] == _stage(default, "closed_won")
    # Only a stage_id: the stage string follows.
    bare = await _create(client, admin, stage=None, stage_id=_stage(default, "qualification"))
    assert (bare["stage"], bare["pipeline_id"]) == ("qualification", default["id"])
    # Neither: a new deal starts prospecting in the default pipeline.
    fresh = await _create(client, admin, stage=None)
    assert (fresh["stage"], fresh["stage_id"]) == ("prospecting", _stage(default, "prospecting"))
    unnamed = await client.post(
        "/api/v1/opportunities",
        json={"name": "Unnamed", "close_date": "2026-05-01"},
        headers=admin.headers,
    )
    assert unnamed.status_code == 201, unnamed.text
    assert unnamed.json()["stage_id"] == _stage(default, "prospecting")


async def test_a_custom_pipeline_and_a_stage_of_another_pipeline(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    made = await client.post("/api/v1/pipelines", json=CUSTOM, headers=admin.headers)
    assert made.status_code == 201, made.text
    custom = made.json()
    assert [s["position"] for s in custom["stages"]] == [0, 1, 2, 3]
    default = await _default(client, admin)
    deal = await _create(
        client, admin, stage=None, pipeline_id=custom["id"], stage_id=_stage(custom, "Demo")
    )
    # A stage outside the six classic ones reads, by its kind, as an open stage.
    assert deal["stage"] == "prospecting"
    wrong = await _patch(client, admin, deal, stage_id=_stage(default, "proposal"))
    assert_problem(wrong, 422, field="stage_id")
    refused = await client.post(
        "/api/v1/opportunities",
        json={**DEAL, "pipeline_id": custom["id"], "stage_id": _stage(default, "proposal")},
        headers=admin.headers,
    )
    assert_problem(refused, 422, field="stage_id")
    no_such = await _patch(client, admin, deal, stage="proposal")
    assert_problem(no_such, 422, field="stage")
    # Nothing half-written: the deal is where it was.
    got = await client.get(f"/api/v1/opportunities/{deal['id']}", headers=admin.headers)
    assert (got.json()["version"], got.json()["stage_id"]) == (1, _stage(custom, "Demo"))
    signed = await _patch(client, admin, deal, stage="closed_won")
    assert signed.status_code == 200, signed.text
    assert signed.json()["stage_id"] == _stage(custom, "Signed")


async def test_another_tenants_stage_names_no_stage(
    services: Services, client: httpx.AsyncClient, admin: TenantUser
) -> None:
    other = await new_tenant(services, client, "pipes-other")
    theirs = await _default(client, other)
    refused = await client.post(
        "/api/v1/opportunities",
        json={**DEAL, "stage_id": _stage(theirs, "proposal")},
        headers=admin.headers,
    )
    assert_problem(refused, 422, code="unknown_reference", field="stage_id")
    missing = await client.get(f"/api/v1/pipelines/{theirs['id']}", headers=admin.headers)
    assert_problem(missing, 404)
    changed = await client.patch(
        f"/api/v1/pipelines/{theirs['id']}", json={"name": "x"}, headers=admin.headers
    )
    assert_problem(changed, 404)


async def test_everyone_reads_only_admins_and_managers_edit(
    services: Services, client: httpx.AsyncClient, admin: TenantUser
) -> None:
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    manager = await user_with_roles(services, client, admin, "mgr", ["sales_manager"])
    support = await user_with_roles(services, client, admin, "sup", ["support_agent"])
    assert await _pipelines(client, rep) == await _pipelines(client, admin)
    assert await _pipelines(client, support) == await _pipelines(client, admin)
    for user in (rep, support):
        refused = await client.post(
            "/api/v1/pipelines", json={**CUSTOM, "name": "Mine"}, headers=user.headers
        )
        assert_problem(refused, 403, code="action_forbidden", field="pipeline")
    made = await client.post(
        "/api/v1/pipelines", json={**CUSTOM, "name": "Managed"}, headers=manager.headers
    )
    assert made.status_code == 201, made.text
    refused = await client.delete(f"/api/v1/pipelines/{made.json()['id']}", headers=rep.headers)
    assert_problem(refused, 403, field="pipeline")
    gone = await client.delete(f"/api/v1/pipelines/{made.json()['id']}", headers=manager.headers)
    assert gone.status_code == 204, gone.text


async def test_rewriting_stages_and_what_cannot_be_removed(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    made = await client.post(
        "/api/v1/pipelines", json={**CUSTOM, "name": "Rewrite"}, headers=admin.headers
    )
    pipeline = made.json()
    deal = await _create(
        client, admin, stage=None, pipeline_id=pipeline["id"], stage_id=_stage(pipeline, "Lead")
    )
    lead, demo, signed, dropped = pipeline["stages"]
    # Lead is in use: removing it is refused, and nothing changes.
    refused = await client.patch(
        f"/api/v1/pipelines/{pipeline['id']}",
        json={"stages": [demo, signed, dropped]},
        headers=admin.headers,
    )
    assert_problem(refused, 409, code="stage_in_use")
    # Renamed to a classic name and moved: kept (same id), the deal's stage string follows.
    changed = await client.patch(
        f"/api/v1/pipelines/{pipeline['id']}",
        json={
            "stages": [
                {**demo, "probability": 45},
                {**lead, "name": "qualification"},
                {"name": "Trial", "probability": 60},
                signed,
            ]
        },
        headers=admin.headers,
    )
    assert changed.status_code == 200, changed.text
    stages = changed.json()["stages"]
    assert [(s["name"], s["position"]) for s in stages] == [
        ("Demo", 0),
        ("qualification", 1),
        ("Trial", 2),
        ("Signed", 3),
    ]
    assert stages[1]["id"] == lead["id"] and stages[0]["probability"] == 45
    got = await client.get(f"/api/v1/opportunities/{deal['id']}", headers=admin.headers)
    assert (got.json()["stage"], got.json()["version"]) == ("qualification", 2)
    history = await client.get(f"/api/v1/opportunities/{deal['id']}/history", headers=admin.headers)
    newest = history.json()["items"][0]
    assert (newest["event"], newest["field"]) == ("update", "stage"), newest
    in_use = await client.delete(f"/api/v1/pipelines/{pipeline['id']}", headers=admin.headers)
    assert_problem(in_use, 409, code="pipeline_in_use")
    default = await _default(client, admin)
    assert_problem(
        await client.delete(f"/api/v1/pipelines/{default['id']}", headers=admin.headers),
        409,
        code="default_pipeline",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "stages": CUSTOM["stages"]}, "name"),
        ({"name": "Empty", "stages": []}, "stages"),
        ({"name": "P", "stages": [{"name": "A", "probability": 101}]}, "stages[0].probability"),
        ({"name": "K", "stages": [{"name": "A", "probability": 1, "kind": "x"}]}, "stages[0].kind"),
        ({"name": "W", "stages": [{"name": "A", "probability": 1, "kind": "won"}]}, "stages"),
        (
            {
                "name": "D",
                "stages": [{"name": "A", "probability": 1}, {"name": "A", "probability": 2}],
            },
            "stages",
        ),
    ],
)
async def test_bad_pipelines_are_refused_with_the_field(
    client: httpx.AsyncClient, admin: TenantUser, body: dict[str, Any], field: str
) -> None:
    refused = await client.post("/api/v1/pipelines", json=body, headers=admin.headers)
    assert_problem(refused, 422, field=field)


async def test_pipelines_over_graphql(client: httpx.AsyncClient, admin: TenantUser) -> None:
    made = gql_data(
        await gql(
            client,
            admin,
            "mutation M($input: CreatePipelineInput!) { createPipeline(input: $input) "
            "{ pipeline { id name isDefault stages { id name position kind } } "
            "errors { field code } } }",
            {"input": {"name": "Gql", "stages": [{"name": "One", "probability": 5}]}},
        )
    )["createPipeline"]
    assert made["errors"] == []
    pipeline = made["pipeline"]
    assert [s["name"] for s in pipeline["stages"]] == ["One"]
    listed = gql_data(await gql(client, admin, "{ pipelines { id isDefault } }"))["pipelines"]
    assert {"id": pipeline["id"], "isDefault": False} in listed
    deal = await _create(client, admin, stage=None, stage_id=pipeline["stages"][0]["id"])
    assert deal["pipeline_id"] == pipeline["id"]
    found = gql_data(
        await gql(
            client,
            admin,
            "query Q($s: ID) { opportunities(filter: {stageId: $s}) "
            "{ edges { node { id stage stageId pipelineId } } } }",
            {"s": pipeline["stages"][0]["id"]},
        )
    )["opportunities"]["edges"]
    assert [e["node"]["id"] for e in found] == [deal["id"]]
    bad = gql_data(
        await gql(
            client,
            admin,
            "mutation M($input: UpdatePipelineInput!) { updatePipeline(input: $input) "
            "{ pipeline { id } errors { field code } } }",
            {"input": {"id": pipeline["id"], "stages": []}},
        )
    )["updatePipeline"]
    assert bad == {"pipeline": None, "errors": [{"field": "stages", "code": "invalid_stages"}]}


async def test_a_salesperson_cannot_edit_pipelines_over_graphql(
    services: Services, client: httpx.AsyncClient, admin: TenantUser
) -> None:
    rep = await user_with_roles(services, client, admin, "gqlrep", ["salesperson"])
    refused = await gql(
        client,
        rep,
        "mutation M($input: CreatePipelineInput!) { createPipeline(input: $input) "
        "{ pipeline { id } errors { field code } } }",
        {"input": {"name": "Sneaky", "stages": [{"name": "One", "probability": 5}]}},
    )
    assert gql_codes(refused) == ["FORBIDDEN"], refused
    names = [p["name"] for p in await _pipelines(client, admin)]
    assert "Sneaky" not in names
    readable = gql_data(await gql(client, rep, "{ pipelines { name } }"))["pipelines"]
    assert [p["name"] for p in readable] == names
