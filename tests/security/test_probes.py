"""Cross-tenant and cross-scope probes, generated from the OpenAPI document and the GraphQL
schema (see probe_helpers.py): every REST operation with a path id and every GraphQL
single-record field or mutation taking an ID, for every built-in role, with tenant B's objects
(cross-tenant) and with objects of another user of the same tenant that the role may not reach
(cross-scope: records for `own`/`team` roles, personal objects for everyone, admin objects for
every role but tenant_admin). Leaks must be 0; probes and leaks are counted for the report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from backend.api.gql.schema import schema as strawberry_schema
from backend.crm.registry import ENTITIES
from backend.runtime import Services
from tests.conftest import Cluster, TenantUser
from tests.security.figures import count
from tests.security.policy_helpers import user_with_roles
from tests.security.probe_helpers import (
    Probe,
    Target,
    UndeclaredKind,
    Verdict,
    builtin_role_names,
    current_version,
    gql_probes,
    gql_variables,
    make_targets,
    out_of_scope,
    rest_param_kinds,
    rest_probes,
    rest_request,
    snapshot,
    verdict,
)


@dataclass
class World:
    probers: dict[str, TenantUser]  # one user of tenant A per built-in role
    owner_a: TenantUser
    in_tenant: dict[str, Target]  # tenant A's objects, owned by owner_a
    foreign: dict[str, Target]  # tenant B's objects
    rest: list[Probe]
    gql: list[Probe]


@pytest.fixture(scope="module")
async def world(
    services: Services,
    client: httpx.AsyncClient,
    tenant_a: TenantUser,
    tenant_b: TenantUser,
) -> World:
    owner_a = await user_with_roles(services, client, tenant_a, "owner", ["tenant_admin"])
    owner_b = await user_with_roles(services, client, tenant_b, "owner", ["tenant_admin"])
    probers = {
        role: await user_with_roles(services, client, tenant_a, role.replace("_", "-"), [role])
        for role in builtin_role_names()
    }
    document = await client.get("/schema/openapi.json")
    assert document.status_code == 200, document.text
    return World(
        probers=probers,
        owner_a=owner_a,
        in_tenant=await make_targets(client, owner_a),
        foreign=await make_targets(client, owner_b),
        rest=list(rest_probes(document.json())),
        gql=list(gql_probes(strawberry_schema._schema)),
    )


@pytest.fixture
async def conn(cluster: Cluster) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(
        cluster.urls.app_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    )
    yield connection
    await connection.close()


async def run_probe(
    http: httpx.AsyncClient,
    conn: asyncpg.Connection,
    probe: Probe,
    role: str,
    user: TenantUser,
    targets: Mapping[str, Target],
) -> Verdict:
    versions = {k: await current_version(conn, targets[k]) for k in probe.kinds if k in ENTITIES}
    before = {k: await snapshot(conn, targets[k]) for k in probe.kinds} if probe.mutates else {}
    if probe.rest is not None:
        method, url, body, headers = rest_request(probe, targets, versions)
        response = await http.request(
            method.upper(),
            url,
            params=probe.query,
            json=body,
            headers={**user.headers, **headers},
        )
    else:
        assert probe.gql is not None
        response = await http.post(
            "/graphql",
            json={"query": probe.gql[0], "variables": gql_variables(probe, targets, versions)},
            headers=user.headers,
        )
    found = verdict(probe, role, response, targets)
    for kind, was in before.items():
        if await snapshot(conn, targets[kind]) != was:
            found.why.append(f"{kind} {targets[kind].id} changed")
    if response.status_code >= 500:
        found.why.append(f"server error: {response.text[:200]}")
    return found


async def probe_all(
    http: httpx.AsyncClient,
    conn: asyncpg.Connection,
    world: World,
    probes: list[Probe],
    targets: Mapping[str, Target],
    *,
    cross_scope: bool,
) -> tuple[int, list[Verdict]]:
    tried, leaks = 0, []
    for probe in probes:
        for role, user in world.probers.items():
            if cross_scope and not all(out_of_scope(role, k) for k in probe.kinds):
                continue
            found = await run_probe(http, conn, probe, role, user, targets)
            tried += 1
            if found.why:
                leaks.append(found)
    return tried, leaks


def report(leaks: list[Verdict]) -> list[str]:
    return [f"{v.role} {v.probe} -> {v.status}: {'; '.join(v.why)}" for v in leaks]


# -- the generation itself ----------------------------------------------------------------------
async def test_every_route_and_field_with_an_id_is_probed(world: World) -> None:
    rest = {p.surface for p in world.rest}
    for entity in ENTITIES.values():
        for method in ("GET", "PATCH", "DELETE"):
            assert f"{method} /api/v1/{entity.plural}/{{record_id}}" in rest
        assert f"GET /api/v1/{entity.plural}/{{record_id}}/history" in rest
    assert "DELETE /api/v1/me/sessions/{session_id}" in rest
    assert "GET /api/v1/exports/{export_id}" in rest
    gql = {p.surface for p in world.gql}
    for name, entity in ENTITIES.items():
        field = name[0] + entity.graphql_name[1:]  # price_book: priceBook
        assert f"query {field}" in gql
        assert f"mutation delete{entity.graphql_name}" in gql
    assert "mutation revokeSession" in gql
    assert "query oauthApp" in gql
    assert len(world.rest) >= 40
    assert len(world.gql) >= 40


def test_a_path_parameter_of_an_undeclared_kind_fails_the_generation() -> None:
    with pytest.raises(UndeclaredKind, match="widget_id"):
        rest_param_kinds("/api/v1/widgets/{widget_id}")
    assert rest_param_kinds("/calendar/{feed}") is None  # a capability URL, declared as such
    assert rest_param_kinds("/api/v1/contacts/{record_id}/history/{change_id}/revert") == {
        "record_id": "contact",
        "change_id": "contact.change",
    }


async def test_the_detector_sees_an_owner_reading_their_own_objects(
    client: httpx.AsyncClient, conn: asyncpg.Connection, world: World
) -> None:
    """Control: the same generated reads, by the objects' owner, are flagged as 'returns the
    record' - so a leak would be seen, and a 0 below means something."""
    reads = [p for p in world.rest + world.gql if not p.mutates]
    seen = set()
    for probe in reads:
        found = await run_probe(client, conn, probe, "owner", world.owner_a, world.in_tenant)
        if found.why:
            seen.add(probe.surface)
    for entity in ENTITIES.values():
        assert f"GET /api/v1/{entity.plural}/{{record_id}}" in seen
        assert f"query {entity.name[0]}{entity.graphql_name[1:]}" in seen
    assert "GET /api/v1/teams/{team_id}" in seen
    assert "GET /api/v1/lookup/phone/{number}" in seen


async def test_the_detector_sees_an_owner_changing_their_own_objects(
    client: httpx.AsyncClient, conn: asyncpg.Connection, world: World
) -> None:
    """Control for writes: the generated PATCH and GraphQL delete, by the owner on fresh
    objects of their own, are seen as changes (snapshot) - a write that got through would be."""
    own = await make_targets(client, world.owner_a)
    surfaces = {"PATCH /api/v1/contacts/{record_id}", "mutation deleteAccount"}
    chosen = [p for p in world.rest + world.gql if p.surface in surfaces]
    assert len(chosen) == 2
    for probe in chosen:
        found = await run_probe(client, conn, probe, "owner", world.owner_a, own)
        assert any("changed" in why for why in found.why), found


# -- the probes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("surface", ["rest", "graphql"])
async def test_cross_tenant_probes_leak_nothing(
    client: httpx.AsyncClient, conn: asyncpg.Connection, world: World, surface: str
) -> None:
    probes = world.rest if surface == "rest" else world.gql
    tried, leaks = await probe_all(client, conn, world, probes, world.foreign, cross_scope=False)
    count("cross_tenant_probes", tried)
    count("leaks", len(leaks))
    assert tried >= len(probes) * len(world.probers)
    assert "\n".join(report(leaks)) == ""


@pytest.mark.parametrize("surface", ["rest", "graphql"])
async def test_cross_scope_probes_leak_nothing(
    client: httpx.AsyncClient, conn: asyncpg.Connection, world: World, surface: str
) -> None:
    probes = world.rest if surface == "rest" else world.gql
    tried, leaks = await probe_all(client, conn, world, probes, world.in_tenant, cross_scope=True)
    count("cross_scope_probes", tried)
    count("leaks", len(leaks))
    assert tried > len(probes)
    assert "\n".join(report(leaks)) == ""
