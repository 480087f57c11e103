"""A tenant always keeps an active human admin: the guard counts only active people holding
tenant_admin (not a deactivated admin, not an app's service user), read from the database under
a per-tenant lock, on every path that can take an admin away (demoting over REST and GraphQL,
deactivating), and it holds when admins act at the same moment (requests released together)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import httpx
from sqlalchemy import select

from backend.db.base import table_of
from backend.policy.builtin import TENANT_ADMIN
from backend.policy.models import Role, UserRole
from backend.runtime import Services
from backend.tenants.models import User
from tests.conftest import TenantUser, gql, new_tenant
from tests.security.oauth_helpers import register
from tests.security.policy_helpers import assert_problem, role_ids, user_with_roles

ROUNDS = 6


@dataclass(frozen=True)
class Pair:
    """A fresh tenant with two admins, A (who created it) and B."""

    a: TenantUser
    b: TenantUser
    roles: dict[str, str]


async def _pair(services: Services, client: httpx.AsyncClient) -> Pair:
    a = await new_tenant(services, client, f"adm-{uuid.uuid4().hex[:6]}")
    b = await user_with_roles(services, client, a, "second-admin", [TENANT_ADMIN])
    return Pair(a, b, await role_ids(client, a))


async def _active_human_admins(services: Services, tenant_id: uuid.UUID) -> set[uuid.UUID]:
    """Straight from the database: who could still administer the tenant."""
    users, user_roles, roles = table_of(User), table_of(UserRole), table_of(Role)
    async with services.db.tenant_transaction(tenant_id) as conn:
        rows = await conn.execute(
            select(users.c.id)
            .join(user_roles, user_roles.c.user_id == users.c.id)
            .join(roles, roles.c.id == user_roles.c.role_id)
            .where(roles.c.name == TENANT_ADMIN, users.c.active, users.c.kind == "person")
        )
        return set(rows.scalars().all())


async def _demote(
    client: httpx.AsyncClient, caller: TenantUser, target: TenantUser, pair: Pair
) -> httpx.Response:
    return await client.put(
        f"/api/v1/users/{target.user_id}/roles",
        json={"role_ids": [pair.roles["salesperson"]]},
        headers=caller.headers,
    )


async def _deactivate(
    client: httpx.AsyncClient, caller: TenantUser, target: TenantUser
) -> httpx.Response:
    return await client.post(f"/api/v1/users/{target.user_id}/deactivate", headers=caller.headers)


async def test_a_deactivated_admin_does_not_count(
    services: Services, client: httpx.AsyncClient
) -> None:
    pair = await _pair(services, client)
    assert (await _deactivate(client, pair.a, pair.b)).status_code == 200

    # REST: A is the only active admin left, so A cannot step down.
    assert_problem(await _demote(client, pair.a, pair.a, pair), 409, "last_admin", "roles")
    # GraphQL: the same rule, as a payload error naming the field.
    result = await gql(
        client,
        pair.a,
        "mutation($u: ID!, $r: [ID!]!) { setUserRoles(input: {userId: $u, roleIds: $r}) "
        "{ roles { name } errors { field code } } }",
        {"u": str(pair.a.user_id), "r": [pair.roles["salesperson"]]},
    )
    assert result["data"]["setUserRoles"]["errors"] == [{"field": "roles", "code": "last_admin"}]
    assert await _active_human_admins(services, pair.a.tenant_id) == {pair.a.user_id}

    # Reactivated, B counts again and A may step down.
    back = await client.post(f"/api/v1/users/{pair.b.user_id}/activate", headers=pair.a.headers)
    assert back.status_code == 200
    assert (await _demote(client, pair.a, pair.a, pair)).status_code == 200
    assert await _active_human_admins(services, pair.a.tenant_id) == {pair.b.user_id}


async def test_an_apps_service_user_holding_tenant_admin_does_not_count(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, f"svc-{uuid.uuid4().hex[:6]}")
    await register(
        client,
        admin,
        name="Provisioning robot",
        client_type="confidential",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scopes=["crm.read"],
        role=TENANT_ADMIN,
    )
    roles = await role_ids(client, admin)
    demoted = await client.put(
        f"/api/v1/users/{admin.user_id}/roles",
        json={"role_ids": [roles["salesperson"]]},
        headers=admin.headers,
    )
    assert_problem(demoted, 409, "last_admin", "roles")
    assert await _active_human_admins(services, admin.tenant_id) == {admin.user_id}


async def test_non_admin_changes_still_work(services: Services, client: httpx.AsyncClient) -> None:
    """The guard refuses only losing the last admin: other role changes and deactivations of
    non-admins go through, and an admin may hand over to another before stepping down."""
    pair = await _pair(services, client)
    rep = await user_with_roles(services, client, pair.a, "rep", ["salesperson"])
    widened = await client.put(
        f"/api/v1/users/{rep.user_id}/roles",
        json={"role_ids": [pair.roles["salesperson"], pair.roles["auditor"]]},
        headers=pair.a.headers,
    )
    assert widened.status_code == 200, widened.text
    assert (await _deactivate(client, pair.a, rep)).status_code == 200
    assert (await _demote(client, pair.a, pair.b, pair)).status_code == 200
    # B is no longer an admin: B's own admin calls are refused.
    assert (await _demote(client, pair.b, pair.a, pair)).status_code == 403
    assert_problem(await _demote(client, pair.a, pair.a, pair), 409, "last_admin", "roles")


def _one_wins(answers: list[httpx.Response]) -> None:
    statuses = sorted(a.status_code for a in answers)
    assert statuses[0] == 200 and statuses[1] in (403, 409), [a.text for a in answers]
    loser = answers[0] if answers[0].status_code != 200 else answers[1]
    assert loser.json()["code"] in ("last_admin", "admin_required"), loser.text


async def test_two_admins_stepping_down_at_once_leave_one(
    services: Services, client: httpx.AsyncClient
) -> None:
    for _ in range(ROUNDS):
        pair = await _pair(services, client)
        answers = await asyncio.gather(
            _demote(client, pair.a, pair.a, pair), _demote(client, pair.b, pair.b, pair)
        )
        _one_wins(list(answers))
        assert len(await _active_human_admins(services, pair.a.tenant_id)) == 1


async def test_two_admins_demoting_each_other_at_once_leave_one(
    services: Services, client: httpx.AsyncClient
) -> None:
    for _ in range(ROUNDS):
        pair = await _pair(services, client)
        answers = await asyncio.gather(
            _demote(client, pair.a, pair.b, pair), _demote(client, pair.b, pair.a, pair)
        )
        _one_wins(list(answers))
        assert len(await _active_human_admins(services, pair.a.tenant_id)) == 1


async def test_two_admins_deactivating_each_other_at_once_leave_one(
    services: Services, client: httpx.AsyncClient
) -> None:
    for _ in range(ROUNDS):
        pair = await _pair(services, client)
        answers = await asyncio.gather(
            _deactivate(client, pair.a, pair.b), _deactivate(client, pair.b, pair.a)
        )
        _one_wins(list(answers))
        assert len(await _active_human_admins(services, pair.a.tenant_id)) == 1


async def test_demoting_and_deactivating_at_once_leave_one(
    services: Services, client: httpx.AsyncClient
) -> None:
    """A steps down while deactivating B; or A demotes B while B deactivates A. Whichever
    lands first, the other is refused."""
    for round_ in range(ROUNDS):
        pair = await _pair(services, client)
        if round_ % 2 == 0:
            first = _demote(client, pair.a, pair.a, pair)
            second = _deactivate(client, pair.a, pair.b)
        else:
            first = _demote(client, pair.a, pair.b, pair)
            second = _deactivate(client, pair.b, pair.a)
        _one_wins(list(await asyncio.gather(first, second)))
        assert len(await _active_human_admins(services, pair.a.tenant_id)) == 1
