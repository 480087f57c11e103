"""Escalation: only tenant admins change policy, only in their own tenant, never beyond what they
hold themselves; built-in roles and the last admin are protected; bad rules are refused;
every change is a security event and takes effect on the very next request, in any process."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from backend.runtime import Services
from tests.conftest import Cluster, TenantUser, gql, new_tenant
from tests.security.policy_helpers import (
    assert_problem,
    create_record,
    create_role,
    gql_codes,
    gql_data,
    role_ids,
    user_with_roles,
)

BUILTIN = (
    "tenant_admin",
    "sales_manager",
    "salesperson",
    "support_agent",
    "marketing",
    "auditor",
    "integration",
)


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _calls(*calls: tuple[str, str, Any]) -> list[tuple[str, str, Any]]:
    """Requests as (method, url, JSON body or None)."""
    return list(calls)


def _calls4(*calls: tuple[str, str, Any, str]) -> list[tuple[str, str, Any, str]]:
    """Requests as (method, url, JSON body or None, the field a refusal names)."""
    return list(calls)


@dataclass
class Setup:
    admin: TenantUser
    sp: TenantUser  # a salesperson
    other: TenantUser  # another salesperson
    roles: dict[str, str]  # name -> id, built-in and custom
    team_id: str
    export_deny_rule: str  # the id of salesperson's ["deny", "*", "export"]
    b_admin: TenantUser  # tenant B
    b_user: TenantUser
    b_roles: dict[str, str]
    b_team_id: str


@pytest.fixture(scope="module")
async def setup(services: Services, client: httpx.AsyncClient) -> Setup:
    admin = await new_tenant(services, client, "escalation")
    await create_role(client, admin, "hide_email", [("deny", "contact.email", "read")])
    await create_role(client, admin, "viewer", [("allow", "*", "read")], {"*": "tenant"})
    sp = await user_with_roles(services, client, admin, "sp", ["salesperson"])
    other = await user_with_roles(services, client, admin, "other", ["salesperson"])
    team = await client.post("/api/v1/teams", headers=admin.headers, json={"name": "core"})
    assert team.status_code == 201, team.text
    roles = await role_ids(client, admin)
    sp_role = await client.get(f"/api/v1/roles/{roles['salesperson']}", headers=admin.headers)
    (export_deny,) = [
        r["id"]
        for r in sp_role.json()["rules"]
        if (r["effect"], r["object"], r["action"]) == ("deny", "*", "export")
    ]
    b_admin = await new_tenant(services, client, "escalationb")
    await create_role(client, b_admin, "b_custom", [("allow", "contact", "read")])
    b_user = await user_with_roles(services, client, b_admin, "buser", ["salesperson"])
    b_team = await client.post("/api/v1/teams", headers=b_admin.headers, json={"name": "bteam"})
    assert b_team.status_code == 201, b_team.text
    return Setup(
        admin=admin,
        sp=sp,
        other=other,
        roles=roles,
        team_id=team.json()["id"],
        export_deny_rule=export_deny,
        b_admin=b_admin,
        b_user=b_user,
        b_roles=await role_ids(client, b_admin),
        b_team_id=b_team.json()["id"],
    )


async def snapshot(client: httpx.AsyncClient, admin: TenantUser, *users: TenantUser) -> Any:
    """The tenant's whole policy as its admin sees it: roles, rules, scopes, teams, holders."""
    roles = await client.get("/api/v1/roles", headers=admin.headers)
    teams = await client.get("/api/v1/teams", headers=admin.headers)
    assert roles.status_code == teams.status_code == 200
    held = {}
    for user in (admin, *users):
        mine = await client.get(f"/api/v1/users/{user.user_id}/roles", headers=admin.headers)
        assert mine.status_code == 200, mine.text
        held[str(user.user_id)] = sorted(r["name"] for r in mine.json()["items"])
    return roles.json(), teams.json(), held


def _admin_requests(s: Setup, target: TenantUser) -> list[tuple[str, str, Any]]:
    r = s.roles
    return [
        ("GET", "/api/v1/roles", None),
        ("GET", f"/api/v1/roles/{r['salesperson']}", None),
        ("POST", "/api/v1/roles", {"name": "sneaky", "rules": []}),
        (
            "POST",
            "/api/v1/roles",
            {"name": "sneaky2", "rules": [{"effect": "allow", "object": "*", "action": "*"}]},
        ),
        ("PATCH", f"/api/v1/roles/{r['viewer']}", {"name": "renamed"}),
        ("PATCH", f"/api/v1/roles/{r['salesperson']}", {"description": "mine now"}),
        ("DELETE", f"/api/v1/roles/{r['viewer']}", None),
        ("DELETE", f"/api/v1/roles/{r['hide_email']}", None),
        (
            "POST",
            f"/api/v1/roles/{r['salesperson']}/rules",
            {"effect": "allow", "object": "contact", "action": "export"},
        ),
        (
            "POST",
            f"/api/v1/roles/{r['hide_email']}/rules",
            {"effect": "deny", "object": "*", "action": "*"},
        ),
        ("DELETE", f"/api/v1/roles/{r['salesperson']}/rules/{s.export_deny_rule}", None),
        ("PUT", f"/api/v1/roles/{r['salesperson']}/scopes/contact", {"scope": "tenant"}),
        ("PUT", f"/api/v1/roles/{r['salesperson']}/scopes/*", {"scope": "tenant"}),
        ("PUT", f"/api/v1/users/{target.user_id}/roles", {"role_ids": [r["tenant_admin"]]}),
        ("PUT", f"/api/v1/users/{target.user_id}/roles", {"role_ids": [r["viewer"]]}),
        ("PUT", f"/api/v1/users/{target.user_id}/roles", {"role_ids": []}),
        ("PUT", f"/api/v1/users/{s.other.user_id}/roles", {"role_ids": [r["auditor"]]}),
        ("GET", f"/api/v1/users/{s.other.user_id}/roles", None),
        ("GET", f"/api/v1/users/{s.other.user_id}/effective-permissions?entity=contact", None),
        ("GET", "/api/v1/teams", None),
        ("POST", "/api/v1/teams", {"name": "my own team"}),
        ("GET", f"/api/v1/teams/{s.team_id}", None),
        (
            "PUT",
            f"/api/v1/teams/{s.team_id}/members",
            {"user_ids": [str(target.user_id), str(s.other.user_id)]},
        ),
        ("DELETE", f"/api/v1/teams/{s.team_id}", None),
    ]


async def test_a_salesperson_cannot_change_policy_over_rest(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    before = await snapshot(client, setup.admin, setup.sp, setup.other)
    for method, url, body in _admin_requests(setup, setup.sp):
        response = await client.request(method, url, headers=setup.sp.headers, json=body)
        assert_problem(response, 403, "admin_required")
    assert await snapshot(client, setup.admin, setup.sp, setup.other) == before
    # They may still look at their own roles and permissions.
    mine = await client.get(f"/api/v1/users/{setup.sp.user_id}/roles", headers=setup.sp.headers)
    assert [r["name"] for r in mine.json()["items"]] == ["salesperson"]
    eff = await client.get(
        f"/api/v1/users/{setup.sp.user_id}/effective-permissions",
        params={"entity": "contact"},
        headers=setup.sp.headers,
    )
    assert eff.status_code == 200, eff.text
    assert {a["action"]: a["allowed"] for a in eff.json()["actions"]}["export"] is False


def _gql_attempts(s: Setup, target: TenantUser) -> list[tuple[str, dict[str, Any]]]:
    r = s.roles
    role_payload = "{ role { id } errors { field code } }"
    deleted = "{ deletedId errors { field code } }"
    return [
        ("{ roles { id name } }", {}),
        ("{ teams { id name } }", {}),
        (
            'query Q($u: ID!) { effectivePermissions(userId: $u, entity: "contact") { roles } }',
            {"u": str(s.other.user_id)},
        ),
        (
            f"mutation M($i: CreateRoleInput!) {{ createRole(input: $i) {role_payload} }}",
            {"i": {"name": "sneaky", "rules": [{"effect": "allow", "object": "*", "action": "*"}]}},
        ),
        (
            f"mutation M($i: UpdateRoleInput!) {{ updateRole(input: $i) {role_payload} }}",
            {"i": {"id": r["viewer"], "name": "renamed"}},
        ),
        (f"mutation M($id: ID!) {{ deleteRole(id: $id) {deleted} }}", {"id": r["viewer"]}),
        (
            "mutation M($i: GrantPermissionInput!) { grantPermission(input: $i) "
            "{ rule { id } errors { field code } } }",
            {
                "i": {
                    "roleId": r["salesperson"],
                    "effect": "allow",
                    "object": "*",
                    "action": "export",
                }
            },
        ),
        (
            f"mutation M($i: RevokePermissionInput!) {{ revokePermission(input: $i) {deleted} }}",
            {"i": {"roleId": r["salesperson"], "ruleId": s.export_deny_rule}},
        ),
        (
            f"mutation M($i: SetRoleScopeInput!) {{ setRoleScope(input: $i) {role_payload} }}",
            {"i": {"roleId": r["salesperson"], "entity": "*", "scope": "tenant"}},
        ),
        (
            "mutation M($i: SetUserRolesInput!) { setUserRoles(input: $i) "
            "{ roles { id } errors { field code } } }",
            {"i": {"userId": str(target.user_id), "roleIds": [r["tenant_admin"]]}},
        ),
        (
            "mutation M($i: SetUserRolesInput!) { setUserRoles(input: $i) "
            "{ roles { id } errors { field code } } }",
            {"i": {"userId": str(s.other.user_id), "roleIds": [r["auditor"]]}},
        ),
        (
            "mutation M($n: String!) { createTeam(name: $n) { team { id } errors { code } } }",
            {"n": "my own team"},
        ),
        (f"mutation M($id: ID!) {{ deleteTeam(id: $id) {deleted} }}", {"id": s.team_id}),
        (
            "mutation M($i: SetTeamMembersInput!) { setTeamMembers(input: $i) "
            "{ team { id } errors { code } } }",
            {"i": {"teamId": s.team_id, "userIds": [str(target.user_id)]}},
        ),
    ]


async def test_a_salesperson_cannot_change_policy_over_graphql(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    before = await snapshot(client, setup.admin, setup.sp, setup.other)
    for query, variables in _gql_attempts(setup, setup.sp):
        result = await gql(client, setup.sp, query, variables)
        assert gql_codes(result) == ["FORBIDDEN"], (query, result)
        assert result["errors"][0]["extensions"]["reason"] == "admin_required"
    assert await snapshot(client, setup.admin, setup.sp, setup.other) == before


# -- tenants ---------------------------------------------------------------------------------
async def test_an_admin_cannot_reach_another_tenants_roles_users_or_teams(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    a, b = setup.admin, setup.b_admin
    before_b = await snapshot(client, b, setup.b_user)
    listed = await client.get("/api/v1/roles", headers=a.headers)
    a_ids = {r["id"] for r in listed.json()["items"]}
    assert set(setup.roles.values()) <= a_ids
    assert not a_ids & set(setup.b_roles.values())
    assert "b_custom" not in {r["name"] for r in listed.json()["items"]}
    b_sp_role = await client.get(f"/api/v1/roles/{setup.b_roles['salesperson']}", headers=b.headers)
    some_rule = b_sp_role.json()["rules"][0]["id"]
    for name in ("b_custom", "salesperson", "tenant_admin"):
        role = setup.b_roles[name]
        for method, url, body in _calls(
            ("GET", f"/api/v1/roles/{role}", None),
            ("PATCH", f"/api/v1/roles/{role}", {"name": "taken_over"}),
            ("PATCH", f"/api/v1/roles/{role}", {"description": "taken over"}),
            ("DELETE", f"/api/v1/roles/{role}", None),
            (
                "POST",
                f"/api/v1/roles/{role}/rules",
                {"effect": "deny", "object": "*", "action": "*"},
            ),
            ("DELETE", f"/api/v1/roles/{role}/rules/{some_rule}", None),
            ("PUT", f"/api/v1/roles/{role}/scopes/contact", {"scope": "own"}),
        ):
            response = await client.request(method, url, headers=a.headers, json=body)
            assert_problem(response, 404, "not_found")
    for user in (setup.b_user, b):
        for method, url, body in _calls(
            ("GET", f"/api/v1/users/{user.user_id}/roles", None),
            ("PUT", f"/api/v1/users/{user.user_id}/roles", {"role_ids": [setup.roles["viewer"]]}),
            ("PUT", f"/api/v1/users/{user.user_id}/roles", {"role_ids": []}),
            ("GET", f"/api/v1/users/{user.user_id}/effective-permissions?entity=contact", None),
        ):
            response = await client.request(method, url, headers=a.headers, json=body)
            assert_problem(response, 404, "not_found")
    # B's ids used inside A's requests name nothing in A.
    foreign_role = await client.put(
        f"/api/v1/users/{setup.other.user_id}/roles",
        headers=a.headers,
        json={"role_ids": [setup.b_roles["b_custom"]]},
    )
    assert_problem(foreign_role, 422, "unknown_role", "roles")
    foreign_member = await client.put(
        f"/api/v1/teams/{setup.team_id}/members",
        headers=a.headers,
        json={"user_ids": [str(setup.b_user.user_id)]},
    )
    assert_problem(foreign_member, 422, "unknown_user", "user_ids")
    for method, url, body in _calls(
        ("GET", f"/api/v1/teams/{setup.b_team_id}", None),
        ("DELETE", f"/api/v1/teams/{setup.b_team_id}", None),
        ("PUT", f"/api/v1/teams/{setup.b_team_id}/members", {"user_ids": [str(a.user_id)]}),
    ):
        assert_problem(await client.request(method, url, headers=a.headers, json=body), 404)
    # The same over GraphQL.
    renamed = await gql(
        client,
        a,
        "mutation M($i: UpdateRoleInput!) { updateRole(input: $i) "
        "{ role { id } errors { code } } }",
        {"i": {"id": setup.b_roles["b_custom"], "name": "taken_over"}},
    )
    assert gql_codes(renamed) == ["NOT_FOUND"]
    assigned = await gql(
        client,
        a,
        "mutation M($i: SetUserRolesInput!) { setUserRoles(input: $i) { roles { id } } }",
        {"i": {"userId": str(setup.b_user.user_id), "roleIds": [setup.roles["viewer"]]}},
    )
    assert gql_codes(assigned) == ["NOT_FOUND"]
    roles = gql_data(await gql(client, a, "{ roles { id } }"))["roles"]
    assert set(setup.roles.values()) <= {r["id"] for r in roles}
    assert not {r["id"] for r in roles} & set(setup.b_roles.values())
    assert await snapshot(client, b, setup.b_user) == before_b


# -- deny beats allow ------------------------------------------------------------------------
async def test_a_deny_in_one_role_beats_an_allow_in_another(
    services: Services, client: httpx.AsyncClient, setup: Setup
) -> None:
    both = await user_with_roles(
        services, client, setup.admin, "both", ["salesperson", "hide_email"]
    )
    plain = await user_with_roles(services, client, setup.admin, "plain", ["salesperson"])
    query = "query Q($id: ID!) { contact(id: $id) { email withheldFields } }"
    for user, expected in [(both, None), (plain, "me@own.example")]:
        made = await create_record(
            client, user, "contacts", {"last_name": "Own", "email": "me@own.example"}
        )
        got = await client.get(f"/api/v1/contacts/{made['id']}", headers=user.headers)
        assert got.json().get("email") == expected
        assert got.json()["withheld_fields"] == ([] if expected else ["email"])
        node = gql_data(await gql(client, user, query, {"id": made["id"]}))["contact"]
        assert node == {"email": expected, "withheldFields": [] if expected else ["email"]}
    eff = await client.get(
        f"/api/v1/users/{both.user_id}/effective-permissions",
        params={"entity": "contact"},
        headers=setup.admin.headers,
    )
    (read,) = [a for a in eff.json()["actions"] if a["action"] == "read"]
    assert read["fields"]["email"]["allowed"] is False
    assert "hide_email" in read["fields"]["email"]["because"]


# -- no admin grants more than they hold -----------------------------------------------------
async def test_an_admin_cannot_grant_what_their_own_roles_deny(
    services: Services, client: httpx.AsyncClient, setup: Setup
) -> None:
    partial = await user_with_roles(
        services, client, setup.admin, "partial", ["tenant_admin", "hide_email"]
    )
    target = await user_with_roles(services, client, setup.admin, "target", ["hide_email"])
    before = await snapshot(client, setup.admin, partial, target, setup.other)
    roles = setup.roles
    grants = [
        ("contact.email", "read"),
        ("contact.email", "*"),
        ("contact.*", "read"),
        ("contact.*", "*"),
        ("*.email", "read"),
        ("contact.e*", "read"),
        ("*mail", "read"),
        ("c*", "read"),
        ("*.*", "read"),
        ("*", "read"),
        ("*", "*"),
    ]
    for role in ("viewer", "hide_email", "salesperson"):
        for obj, action in grants:
            response = await client.post(
                f"/api/v1/roles/{roles[role]}/rules",
                headers=partial.headers,
                json={"effect": "allow", "object": obj, "action": action},
            )
            assert_problem(response, 403, "escalation_refused", "rules")
    for obj, action in grants:
        made = await client.post(
            "/api/v1/roles",
            headers=partial.headers,
            json={
                "name": "smuggler",
                "rules": [{"effect": "allow", "object": obj, "action": action}],
            },
        )
        assert_problem(made, 403, "escalation_refused", "rules")
    # Nor by handing out a role that allows it.
    for role in ("salesperson", "viewer", "auditor", "tenant_admin"):
        response = await client.put(
            f"/api/v1/users/{target.user_id}/roles",
            headers=partial.headers,
            json={"role_ids": [roles["hide_email"], roles[role]]},
        )
        assert_problem(response, 403, "escalation_refused", "rules")
    graphql = await gql(
        client,
        partial,
        "mutation M($i: GrantPermissionInput!) { grantPermission(input: $i) { rule { id } } }",
        {
            "i": {
                "roleId": roles["viewer"],
                "effect": "allow",
                "object": "contact.email",
                "action": "read",
            }
        },
    )
    assert gql_codes(graphql) == ["FORBIDDEN"]
    assert graphql["errors"][0]["extensions"]["reason"] == "escalation_refused"
    assert await snapshot(client, setup.admin, partial, target, setup.other) == before
    # What they do hold, they may grant.
    allowed = await client.post(
        f"/api/v1/roles/{roles['hide_email']}/rules",
        headers=partial.headers,
        json={"effect": "allow", "object": "contact.phone", "action": "read"},
    )
    assert allowed.status_code == 201, allowed.text
    revoked = await client.delete(
        f"/api/v1/roles/{roles['hide_email']}/rules/{allowed.json()['id']}",
        headers=partial.headers,
    )
    assert revoked.status_code == 204, revoked.text


async def test_an_admin_cannot_lift_a_deny_that_binds_them(
    services: Services, client: httpx.AsyncClient, setup: Setup
) -> None:
    binds = await create_role(
        client,
        setup.admin,
        "binds_me",
        [("deny", "contact.email", "read"), ("allow", "contact.phone", "read")],
    )
    partial = await user_with_roles(
        services, client, setup.admin, "bound", ["tenant_admin", "binds_me"]
    )
    contact = await create_record(
        client, setup.admin, "contacts", {"last_name": "Bound", "email": "b@bound.example"}
    )
    url = f"/api/v1/contacts/{contact['id']}"
    assert (await client.get(url, headers=partial.headers)).json()["withheld_fields"] == ["email"]
    before = await snapshot(client, setup.admin, partial)
    (rules,) = [r["rules"] for r in before[0]["items"] if r["id"] == binds]
    deny = next(r["id"] for r in rules if r["effect"] == "deny")
    allow = next(r["id"] for r in rules if r["effect"] == "allow")
    h = partial.headers
    for method, path, body, field in _calls4(
        (
            "PUT",
            f"/api/v1/users/{partial.user_id}/roles",
            {"role_ids": [setup.roles["tenant_admin"]]},
            "roles",
        ),
        ("DELETE", f"/api/v1/roles/{binds}/rules/{deny}", None, "rules"),
        ("DELETE", f"/api/v1/roles/{binds}", None, "id"),
    ):
        response = await client.request(method, path, headers=h, json=body)
        assert_problem(response, 403, "escalation_refused", field)
    graphql = await gql(
        client,
        partial,
        "mutation M($i: SetUserRolesInput!) { setUserRoles(input: $i) { roles { id } } }",
        {"i": {"userId": str(partial.user_id), "roleIds": [setup.roles["tenant_admin"]]}},
    )
    assert gql_codes(graphql) == ["FORBIDDEN"]
    assert graphql["errors"][0]["extensions"]["reason"] == "escalation_refused"
    assert await snapshot(client, setup.admin, partial) == before
    assert (await client.get(url, headers=partial.headers)).json()["withheld_fields"] == ["email"]
    # Narrowing themselves is fine; so is another admin lifting the deny.
    narrowed = await client.delete(f"/api/v1/roles/{binds}/rules/{allow}", headers=h)
    assert narrowed.status_code == 204, narrowed.text
    lifted = await client.put(
        f"/api/v1/users/{partial.user_id}/roles",
        headers=setup.admin.headers,
        json={"role_ids": [setup.roles["tenant_admin"]]},
    )
    assert lifted.status_code == 200, lifted.text
    assert (await client.get(url, headers=partial.headers)).json()["withheld_fields"] == []


# -- built-in roles and the last admin -------------------------------------------------------
async def test_builtin_roles_cannot_be_deleted_or_renamed(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    before = await snapshot(client, setup.admin)
    for name in BUILTIN:
        role = setup.roles[name]
        deleted = await client.delete(f"/api/v1/roles/{role}", headers=setup.admin.headers)
        assert_problem(deleted, 403, "builtin_role")
        renamed = await client.patch(
            f"/api/v1/roles/{role}", headers=setup.admin.headers, json={"name": f"{name}_x"}
        )
        assert_problem(renamed, 403, "builtin_role", "name")
        gql_deleted = await gql(
            client,
            setup.admin,
            "mutation M($id: ID!) { deleteRole(id: $id) { deletedId errors { code } } }",
            {"id": role},
        )
        assert gql_codes(gql_deleted) == ["FORBIDDEN"]
    assert await snapshot(client, setup.admin) == before


async def test_the_tenant_admin_role_cannot_be_narrowed(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    before = await snapshot(client, setup.admin)
    role = setup.roles["tenant_admin"]
    (rules,) = [r["rules"] for r in before[0]["items"] if r["id"] == role]
    rule = rules[0]["id"]
    headers = setup.admin.headers
    for effect, obj, action in [("deny", "contact.email", "read"), ("deny", "*", "*")]:
        response = await client.post(
            f"/api/v1/roles/{role}/rules",
            headers=headers,
            json={"effect": effect, "object": obj, "action": action},
        )
        assert_problem(response, 403, "builtin_role")
    assert_problem(
        await client.delete(f"/api/v1/roles/{role}/rules/{rule}", headers=headers),
        403,
        "builtin_role",
    )
    for entity in ("*", "contact"):
        response = await client.put(
            f"/api/v1/roles/{role}/scopes/{entity}", headers=headers, json={"scope": "own"}
        )
        assert_problem(response, 403, "builtin_role")
    assert await snapshot(client, setup.admin) == before


async def test_the_last_admin_keeps_the_tenant_admin_role(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "lastadmin")
    roles = await role_ids(client, admin)
    url = f"/api/v1/users/{admin.user_id}/roles"
    for kept in ([], [roles["salesperson"]], [roles["auditor"], roles["sales_manager"]]):
        response = await client.put(url, headers=admin.headers, json={"role_ids": kept})
        assert_problem(response, 409, "last_admin", "roles")
    result = await gql(
        client,
        admin,
        "mutation M($i: SetUserRolesInput!) { setUserRoles(input: $i) "
        "{ roles { id } errors { field code } } }",
        {"i": {"userId": str(admin.user_id), "roleIds": [roles["salesperson"]]}},
    )
    assert gql_data(result)["setUserRoles"] == {
        "roles": None,
        "errors": [{"field": "roles", "code": "last_admin"}],
    }
    mine = await client.get(url, headers=admin.headers)
    assert [r["name"] for r in mine.json()["items"]] == ["tenant_admin"]
    # With a second admin, the first may step down; then the second is the last.
    second = await user_with_roles(services, client, admin, "second", ["tenant_admin"])
    stepped = await client.put(
        url, headers=admin.headers, json={"role_ids": [roles["salesperson"]]}
    )
    assert stepped.status_code == 200, stepped.text
    last = await client.put(
        f"/api/v1/users/{second.user_id}/roles", headers=second.headers, json={"role_ids": []}
    )
    assert_problem(last, 409, "last_admin", "roles")


# -- validation ------------------------------------------------------------------------------
BAD_RULES = [
    (("allow", "widget", "read"), "object", "unknown_entity"),
    (("allow", "widget.name", "read"), "object", "unknown_entity"),
    (("allow", "contact.salary", "read"), "object", "unknown_field"),
    (("allow", "contact.tenant_id", "read"), "object", "unknown_field"),
    (("allow", "contact", "destroy"), "action", "invalid_action"),
    (("allow", "contact", "READ"), "action", "invalid_action"),
    (("allow", "contact", ""), "action", "invalid_action"),
    (("maybe", "contact", "read"), "effect", "invalid_effect"),
    (("", "contact", "read"), "effect", "invalid_effect"),
    (("allow", "Contact", "read"), "object", "invalid_object"),
    (("allow", "contact..email", "read"), "object", "invalid_object"),
    (("allow", "contact.email.x", "read"), "object", "invalid_object"),
    (("allow", "contact.e?", "read"), "object", "invalid_object"),
    (("allow", "contact/email", "read"), "object", "invalid_object"),
    (("allow", "con[a-z]act", "read"), "object", "invalid_object"),
    (("allow", "", "read"), "object", "invalid_object"),
    (("allow", "*.*.*", "read"), "object", "invalid_object"),
]


@pytest.mark.parametrize(("rule", "field", "code"), BAD_RULES)
async def test_invalid_rules_are_refused_naming_the_field(
    client: httpx.AsyncClient, setup: Setup, rule: tuple[str, str, str], field: str, code: str
) -> None:
    before = await snapshot(client, setup.admin)
    effect, obj, action = rule
    body = {"effect": effect, "object": obj, "action": action}
    granted = await client.post(
        f"/api/v1/roles/{setup.roles['viewer']}/rules", headers=setup.admin.headers, json=body
    )
    assert_problem(granted, 422, code, field)
    made = await client.post(
        "/api/v1/roles", headers=setup.admin.headers, json={"name": "invalid", "rules": [body]}
    )
    assert_problem(made, 422, code, field)
    graphql = await gql(
        client,
        setup.admin,
        "mutation M($i: GrantPermissionInput!) { grantPermission(input: $i) "
        "{ rule { id } errors { field code } } }",
        {"i": {"roleId": setup.roles["viewer"], **body}},
    )
    assert gql_data(graphql)["grantPermission"] == {
        "rule": None,
        "errors": [{"field": field, "code": code}],
    }
    assert await snapshot(client, setup.admin) == before


@pytest.mark.parametrize(
    ("entity", "scope", "field", "code"),
    [
        ("contact", "everyone", "scope", "invalid_scope"),
        ("contact", "", "scope", "invalid_scope"),
        ("contact", "Tenant", "scope", "invalid_scope"),
        ("widget", "own", "entity", "unknown_entity"),
    ],
)
async def test_invalid_scopes_are_refused_naming_the_field(
    client: httpx.AsyncClient, setup: Setup, entity: str, scope: str, field: str, code: str
) -> None:
    before = await snapshot(client, setup.admin)
    put = await client.put(
        f"/api/v1/roles/{setup.roles['viewer']}/scopes/{entity}",
        headers=setup.admin.headers,
        json={"scope": scope},
    )
    assert_problem(put, 422, code, field)
    made = await client.post(
        "/api/v1/roles",
        headers=setup.admin.headers,
        json={"name": "invalid", "rules": [], "scopes": {entity: scope}},
    )
    assert_problem(made, 422, code, field)
    assert await snapshot(client, setup.admin) == before


@pytest.mark.parametrize("name", ["Bad Name", "x", "9lives", "a" * 65, "drop;table", ""])
async def test_invalid_role_names_are_refused(
    client: httpx.AsyncClient, setup: Setup, name: str
) -> None:
    made = await client.post(
        "/api/v1/roles", headers=setup.admin.headers, json={"name": name, "rules": []}
    )
    assert_problem(made, 422, "invalid_name", "name")
    renamed = await client.patch(
        f"/api/v1/roles/{setup.roles['viewer']}", headers=setup.admin.headers, json={"name": name}
    )
    assert_problem(renamed, 422, "invalid_name", "name")


# -- security events -------------------------------------------------------------------------
@pytest.fixture
async def owner(cluster: Cluster) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(_dsn(cluster.urls.owner_url))
    yield connection
    await connection.close()


class EventLog:
    """Reads a tenant's policy events as the owner; `new()` gives those since the last call."""

    def __init__(self, conn: asyncpg.Connection, tenant: TenantUser) -> None:
        self.conn, self.tenant, self.seen = conn, tenant, set[uuid.UUID]()

    async def new(self) -> list[asyncpg.Record]:
        async with self.conn.transaction():
            await self.conn.execute(
                "select set_config('app.tenant_id', $1, true)", str(self.tenant.tenant_id)
            )
            rows = await self.conn.fetch(
                "select id, type, outcome, actor_user_id, channel, details from security_events"
                " where type like 'policy.%' order by id"
            )
        fresh = [r for r in rows if r["id"] not in self.seen]
        self.seen.update(r["id"] for r in rows)
        return fresh

    async def expect(self, *types: str, channel: str = "rest") -> list[dict[str, Any]]:
        fresh = await self.new()
        assert Counter(r["type"] for r in fresh) == Counter(types), fresh
        assert {(r["outcome"], r["actor_user_id"], r["channel"]) for r in fresh} == {
            ("success", self.tenant.user_id, channel)
        }
        return [json.loads(r["details"]) for r in fresh]


async def test_every_policy_change_is_a_security_event(
    services: Services, client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    admin = await new_tenant(services, client, "policyevents")
    user = await user_with_roles(services, client, admin, "evented", ["salesperson"])
    log = EventLog(owner, admin)
    await log.new()
    h = admin.headers
    role_id = await create_role(client, admin, "evented_role", [("allow", "contact", "read")])
    (details,) = await log.expect("policy.role_created")
    assert details == {"role_id": role_id, "name": "evented_role"}

    renamed = await client.patch(f"/api/v1/roles/{role_id}", headers=h, json={"name": "renamed"})
    assert renamed.status_code == 200, renamed.text
    (details,) = await log.expect("policy.role_updated")
    assert details["name"] == "renamed"

    scoped = await client.put(
        f"/api/v1/roles/{role_id}/scopes/contact", headers=h, json={"scope": "team"}
    )
    assert scoped.status_code == 200, scoped.text
    (details,) = await log.expect("policy.role_updated")
    assert (details["entity"], details["scope"]) == ("contact", "team")

    granted = await client.post(
        f"/api/v1/roles/{role_id}/rules",
        headers=h,
        json={"effect": "deny", "object": "contact.email", "action": "read"},
    )
    assert granted.status_code == 201, granted.text
    (details,) = await log.expect("policy.permission_granted")
    assert (details["effect"], details["object"], details["action"]) == (
        "deny",
        "contact.email",
        "read",
    )

    revoked = await client.delete(
        f"/api/v1/roles/{role_id}/rules/{granted.json()['id']}", headers=h
    )
    assert revoked.status_code == 204, revoked.text
    (details,) = await log.expect("policy.permission_revoked")
    assert details["object"] == "contact.email"

    roles = await role_ids(client, admin)
    url = f"/api/v1/users/{user.user_id}/roles"
    assigned = await client.put(url, headers=h, json={"role_ids": [roles["salesperson"], role_id]})
    assert assigned.status_code == 200, assigned.text
    (details,) = await log.expect("policy.role_assigned")
    assert details == {"user_id": str(user.user_id), "role": "renamed"}

    swapped = await client.put(url, headers=h, json={"role_ids": [roles["auditor"]]})
    assert swapped.status_code == 200, swapped.text
    await log.expect("policy.role_assigned", "policy.role_unassigned", "policy.role_unassigned")

    team = await client.post("/api/v1/teams", headers=h, json={"name": "evented"})
    assert team.status_code == 201, team.text
    members = await client.put(
        f"/api/v1/teams/{team.json()['id']}/members",
        headers=h,
        json={"user_ids": [str(user.user_id)]},
    )
    assert members.status_code == 200, members.text
    gone = await client.delete(f"/api/v1/teams/{team.json()['id']}", headers=h)
    assert gone.status_code == 204, gone.text
    changes = await log.expect("policy.team_changed", "policy.team_changed", "policy.team_changed")
    assert sorted(d["change"] for d in changes) == ["created", "deleted", "members"]

    deleted = await client.delete(f"/api/v1/roles/{role_id}", headers=h)
    assert deleted.status_code == 204, deleted.text
    (details,) = await log.expect("policy.role_deleted")
    assert details == {"role_id": role_id, "name": "renamed"}

    # Through GraphQL alike, with its channel.
    result = await gql(
        client,
        admin,
        "mutation M($i: CreateRoleInput!) { createRole(input: $i) "
        "{ role { id } errors { code } } }",
        {"i": {"name": "from_graphql", "rules": []}},
    )
    assert gql_data(result)["createRole"]["errors"] == []
    await log.expect("policy.role_created", channel="graphql")

    # Refused and invalid changes leave no event (and change nothing).
    refused = await client.post("/api/v1/roles", headers=user.headers, json={"name": "nope"})
    assert_problem(refused, 403)
    invalid = await client.post(
        f"/api/v1/roles/{roles['auditor']}/rules",
        headers=h,
        json={"effect": "allow", "object": "widget", "action": "read"},
    )
    assert_problem(invalid, 422)
    assert await log.new() == []


# -- a change applies at once, in every process -------------------------------------------------
@dataclass
class Watched:
    admin: TenantUser
    user: TenantUser
    role_id: str
    contact_id: str


@pytest.fixture
async def watched(services: Services, client: httpx.AsyncClient, setup: Setup) -> Watched:
    """A user whose only role reads everything, and a contact they see in full."""
    role_id = await create_role(
        client,
        setup.admin,
        f"watched_{uuid.uuid4().hex[:8]}",
        [("allow", "*", "read")],
        {"*": "tenant"},
    )
    name = next(n for n, i in (await role_ids(client, setup.admin)).items() if i == role_id)
    user = await user_with_roles(services, client, setup.admin, "watched", [name])
    contact = await create_record(
        client,
        setup.admin,
        "contacts",
        {"last_name": "Watched", "email": "w@watched.example", "phone": "+1 555 0100"},
    )
    return Watched(setup.admin, user, role_id, contact["id"])


async def _seen(client: httpx.AsyncClient, w: Watched) -> tuple[int, list[str]]:
    response = await client.get(f"/api/v1/contacts/{w.contact_id}", headers=w.user.headers)
    body = response.json()
    return response.status_code, body.get("withheld_fields", [body.get("code")])


async def _seen_graphql(client: httpx.AsyncClient, w: Watched) -> Any:
    query = "query Q($id: ID!) { contact(id: $id) { email phone withheldFields } }"
    return gql_data(await gql(client, w.user, query, {"id": w.contact_id}))["contact"]


async def test_a_policy_change_applies_to_the_next_request(
    client: httpx.AsyncClient, watched: Watched
) -> None:
    w, h = watched, watched.admin.headers
    assert await _seen(client, w) == (200, [])  # the user's mask is now compiled and cached
    assert (await _seen_graphql(client, w))["email"] == "w@watched.example"
    denied = await client.post(
        f"/api/v1/roles/{w.role_id}/rules",
        headers=h,
        json={"effect": "deny", "object": "contact.email", "action": "read"},
    )
    assert denied.status_code == 201, denied.text
    assert await _seen(client, w) == (200, ["email"])
    assert await _seen_graphql(client, w) == {
        "email": None,
        "phone": "+1 555 0100",
        "withheldFields": ["email"],
    }
    revoked = await client.delete(
        f"/api/v1/roles/{w.role_id}/rules/{denied.json()['id']}", headers=h
    )
    assert revoked.status_code == 204
    assert await _seen(client, w) == (200, [])
    # Taking the role away takes the access away.
    emptied = await client.put(
        f"/api/v1/users/{w.user.user_id}/roles", headers=h, json={"role_ids": []}
    )
    assert emptied.status_code == 200, emptied.text
    assert await _seen(client, w) == (403, ["action_forbidden"])
    restored = await client.put(
        f"/api/v1/users/{w.user.user_id}/roles", headers=h, json={"role_ids": [w.role_id]}
    )
    assert restored.status_code == 200, restored.text
    assert await _seen(client, w) == (200, [])
    # A narrower scope, too.
    narrowed = await client.put(
        f"/api/v1/roles/{w.role_id}/scopes/*", headers=h, json={"scope": "own"}
    )
    assert narrowed.status_code == 200, narrowed.text
    assert await _seen(client, w) == (404, ["not_found"])


async def test_a_change_made_by_another_process_applies_to_the_next_request(
    client: httpx.AsyncClient, watched: Watched, owner: asyncpg.Connection
) -> None:
    w = watched
    assert await _seen(client, w) == (200, [])  # compiled and cached in this process
    tenant_id = w.admin.tenant_id
    rule_id = uuid.uuid4()
    async with owner.transaction():  # another server process, as far as this one can tell
        await owner.execute("select set_config('app.tenant_id', $1, true)", str(tenant_id))
        await owner.execute(
            "insert into role_rules (tenant_id, id, role_id, effect, object, action)"
            " values ($1, $2, $3, 'deny', 'contact.phone', 'read')",
            tenant_id,
            rule_id,
            uuid.UUID(w.role_id),
        )
        await owner.execute(
            "update tenants set policy_version = policy_version + 1 where id = $1", tenant_id
        )
    assert await _seen(client, w) == (200, ["phone"])
    assert (await _seen_graphql(client, w))["phone"] is None
    async with owner.transaction():
        await owner.execute("select set_config('app.tenant_id', $1, true)", str(tenant_id))
        await owner.execute("delete from role_rules where id = $1", rule_id)
        await owner.execute(
            "update tenants set policy_version = policy_version + 1 where id = $1", tenant_id
        )
    assert await _seen(client, w) == (200, [])
    assert (await _seen_graphql(client, w))["phone"] == "+1 555 0100"
