"""Record scope, through REST and GraphQL: own, team and tenant, applied in the query.

A record outside the caller's scope is answered exactly like a missing one (404 / null /
NOT_FOUND) and never appears in a list or a search. With several roles, the scope of an
action is the widest among the roles that grant that action, not among all roles held.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant
from tests.security.policy_helpers import (
    assert_problem,
    create_record,
    create_role,
    gql_codes,
    gql_data,
    user_with_roles,
)


@dataclass(frozen=True)
class Entity:
    plural: str
    name_field: str  # a searchable, required text field
    one: str  # GraphQL single-record field
    many: str  # GraphQL list field
    update: str  # GraphQL update mutation
    delete: str  # GraphQL delete mutation
    update_input: str

    def gql_one(self) -> str:
        return f"query One($id: ID!) {{ {self.one}(id: $id) {{ id ownerId }} }}"

    def gql_many(self) -> str:
        return (
            f"query Many($q: String) {{ {self.many}(first: 200, filter: {{q: $q}}) "
            "{ edges { node { id ownerId } } } }"
        )

    def gql_update(self) -> str:
        return (
            f"mutation U($input: {self.update_input}!) {{ {self.update}(input: $input) "
            f"{{ {self.one} {{ id version }} errors {{ field code }} }} }}"
        )

    def gql_delete(self) -> str:
        return (
            f"mutation D($input: DeleteInput!) {{ {self.delete}(input: $input) "
            "{ deletedId errors { field code } } }"
        )

    def gql_name(self) -> str:
        head, *rest = self.name_field.split("_")
        return head + "".join(p.title() for p in rest)


CONTACTS = Entity(
    "contacts", "last_name", "contact", "contacts", "updateContact", "deleteContact",
    "UpdateContactInput",
)  # fmt: skip
ACCOUNTS = Entity(
    "accounts", "name", "account", "accounts", "updateAccount", "deleteAccount",
    "UpdateAccountInput",
)  # fmt: skip
ENTITIES = [pytest.param(CONTACTS, id="contacts"), pytest.param(ACCOUNTS, id="accounts")]
OWNERS = ("admin", "sp1", "sp2", "sp3", "mgr", "loner")


@dataclass
class World:
    marker: str
    users: dict[str, TenantUser]
    # (plural, owner name) -> the record that user created
    records: dict[tuple[str, str], dict[str, Any]]

    def rid(self, entity: Entity, who: str) -> str:
        record_id: str = self.records[(entity.plural, who)]["id"]
        return record_id

    def name(self, who: str) -> str:
        return f"{self.marker}{who}"


@pytest.fixture(scope="module")
async def world(services: Services, client: httpx.AsyncClient) -> World:
    admin = await new_tenant(services, client, "scope")
    users: dict[str, TenantUser] = {"admin": admin}
    for name, roles in [
        ("sp1", ["salesperson"]),
        ("sp2", ["salesperson"]),
        ("sp3", ["salesperson"]),
        ("mgr", ["sales_manager"]),
        ("loner", ["sales_manager"]),  # a sales manager in no team
        ("support", ["support_agent"]),
        ("auditor", ["auditor"]),
        ("sp_auditor", ["salesperson", "auditor"]),
    ]:
        users[name] = await user_with_roles(services, client, admin, name, roles)
    # A role with tenant scope that grants no read (nor update, nor delete).
    await create_role(
        client, admin, "wide_no_read", [("allow", "account", "create")], {"*": "tenant"}
    )
    users["sp_wide"] = await user_with_roles(
        services, client, admin, "spwide", ["salesperson", "wide_no_read"]
    )
    # A role that may change any contact or account, but grants no read.
    await create_role(
        client,
        admin,
        "wide_updater",
        [("allow", "*", "update")],
        {"*": "tenant"},
    )
    users["sp_updater"] = await user_with_roles(
        services, client, admin, "spupdater", ["salesperson", "wide_updater"]
    )
    for team, members in [("north", ["mgr", "sp1"]), ("south", ["sp3"])]:
        made = await client.post("/api/v1/teams", headers=admin.headers, json={"name": team})
        assert made.status_code == 201, made.text
        put = await client.put(
            f"/api/v1/teams/{made.json()['id']}/members",
            headers=admin.headers,
            json={"user_ids": [str(users[m].user_id) for m in members]},
        )
        assert put.status_code == 200, put.text
    marker = f"Scope{uuid.uuid4().hex[:8]}"
    records: dict[tuple[str, str], dict[str, Any]] = {}
    for who in (*OWNERS, "sp_wide", "sp_auditor"):
        for entity in (CONTACTS, ACCOUNTS):
            records[(entity.plural, who)] = await create_record(
                client, users[who], entity.plural, {entity.name_field: f"{marker}{who}"}
            )
    return World(marker=marker, users=users, records=records)


async def rest_ids(
    client: httpx.AsyncClient, user: TenantUser, entity: Entity, q: str | None = None
) -> set[str]:
    params: dict[str, str | int] = {"limit": 200}
    if q is not None:
        params["q"] = q
    response = await client.get(f"/api/v1/{entity.plural}", headers=user.headers, params=params)
    assert response.status_code == 200, response.text
    assert response.json()["next"] is None
    return {r["id"] for r in response.json()["items"]}


async def gql_ids(
    client: httpx.AsyncClient, user: TenantUser, entity: Entity, q: str | None = None
) -> set[str]:
    result = gql_data(await gql(client, user, entity.gql_many(), {"q": q}))
    return {e["node"]["id"] for e in result[entity.many]["edges"]}


def owned_by(world: World, entity: Entity, *owners: str) -> set[str]:
    return {world.rid(entity, who) for who in owners}


ALL_SEEDED = (*OWNERS, "sp_wide", "sp_auditor")


# -- own -------------------------------------------------------------------------------------
@pytest.mark.parametrize("entity", ENTITIES)
async def test_salesperson_reads_only_their_own_over_rest(
    client: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    sp1 = world.users["sp1"]
    own = await client.get(
        f"/api/v1/{entity.plural}/{world.rid(entity, 'sp1')}", headers=sp1.headers
    )
    assert own.status_code == 200, own.text
    missing = await client.get(f"/api/v1/{entity.plural}/{uuid.uuid4()}", headers=sp1.headers)
    missing_body = assert_problem(missing, 404, "not_found")
    for other in ("sp2", "sp3", "mgr", "admin"):
        got = await client.get(
            f"/api/v1/{entity.plural}/{world.rid(entity, other)}", headers=sp1.headers
        )
        # Out of scope reads exactly like "does not exist".
        assert assert_problem(got, 404, "not_found") == missing_body
    listed = await rest_ids(client, sp1, entity)
    assert owned_by(world, entity, *ALL_SEEDED) & listed == owned_by(world, entity, "sp1")
    assert await rest_ids(client, sp1, entity, q=world.name("sp2")) == set()
    assert await rest_ids(client, sp1, entity, q=world.marker) == owned_by(world, entity, "sp1")


@pytest.mark.parametrize("entity", ENTITIES)
async def test_salesperson_cannot_change_or_delete_others_over_rest(
    client: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    sp1, admin = world.users["sp1"], world.users["admin"]
    other = world.rid(entity, "sp2")
    url = f"/api/v1/{entity.plural}/{other}"
    patched = await client.patch(
        url, headers={**sp1.headers, "If-Match": '"1"'}, json={entity.name_field: "Hijacked"}
    )
    assert_problem(patched, 404, "not_found")
    assert_problem(await client.delete(url, headers=sp1.headers), 404, "not_found")
    assert_problem(
        await client.delete(url, headers={**sp1.headers, "If-Match": '"1"'}), 404, "not_found"
    )
    after = await client.get(url, headers=admin.headers)
    assert after.status_code == 200
    assert (after.json()["version"], after.json()[entity.name_field]) == (1, world.name("sp2"))
    # Their own records they may change and delete.
    mine = await create_record(client, sp1, entity.plural, {entity.name_field: "Mine"})
    own_url = f"/api/v1/{entity.plural}/{mine['id']}"
    changed = await client.patch(
        own_url, headers={**sp1.headers, "If-Match": '"1"'}, json={entity.name_field: "Mine 2"}
    )
    assert changed.status_code == 200, changed.text
    assert (await client.delete(own_url, headers=sp1.headers)).status_code == 204


@pytest.mark.parametrize("entity", ENTITIES)
async def test_salesperson_scope_over_graphql(
    client: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    sp1, admin = world.users["sp1"], world.users["admin"]
    own = gql_data(await gql(client, sp1, entity.gql_one(), {"id": world.rid(entity, "sp1")}))
    assert own[entity.one]["ownerId"] == str(sp1.user_id)
    for other in ("sp2", "sp3", "mgr", "admin"):
        result = await gql(client, sp1, entity.gql_one(), {"id": world.rid(entity, other)})
        assert gql_data(result) == {entity.one: None}
    listed = await gql_ids(client, sp1, entity)
    assert owned_by(world, entity, *ALL_SEEDED) & listed == owned_by(world, entity, "sp1")
    assert await gql_ids(client, sp1, entity, q=world.name("sp2")) == set()
    other = world.rid(entity, "sp2")
    updated = await gql(
        client,
        sp1,
        entity.gql_update(),
        {"input": {"id": other, "version": 1, entity.gql_name(): "Hijacked"}},
    )
    assert gql_codes(updated) == ["NOT_FOUND"]
    deleted = await gql(client, sp1, entity.gql_delete(), {"input": {"id": other}})
    assert gql_codes(deleted) == ["NOT_FOUND"]
    after = await client.get(f"/api/v1/{entity.plural}/{other}", headers=admin.headers)
    assert (after.json()["version"], after.json()[entity.name_field]) == (1, world.name("sp2"))


# -- team ------------------------------------------------------------------------------------
@pytest.mark.parametrize("entity", ENTITIES)
async def test_sales_manager_sees_their_teams_records(
    client: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    mgr = world.users["mgr"]
    visible, hidden = ("mgr", "sp1"), ("sp2", "sp3", "loner", "admin", "sp_wide")
    for who in visible:
        got = await client.get(
            f"/api/v1/{entity.plural}/{world.rid(entity, who)}", headers=mgr.headers
        )
        assert got.status_code == 200, (who, got.text)
        one = await gql(client, mgr, entity.gql_one(), {"id": world.rid(entity, who)})
        assert gql_data(one)[entity.one]["id"] == world.rid(entity, who)
    for who in hidden:
        got = await client.get(
            f"/api/v1/{entity.plural}/{world.rid(entity, who)}", headers=mgr.headers
        )
        assert_problem(got, 404, "not_found")
        one = await gql(client, mgr, entity.gql_one(), {"id": world.rid(entity, who)})
        assert gql_data(one) == {entity.one: None}
    seeded = owned_by(world, entity, *ALL_SEEDED)
    assert seeded & await rest_ids(client, mgr, entity) == owned_by(world, entity, *visible)
    assert seeded & await gql_ids(client, mgr, entity) == owned_by(world, entity, *visible)
    assert await rest_ids(client, mgr, entity, q=world.name("sp3")) == set()
    assert await gql_ids(client, mgr, entity, q=world.name("sp2")) == set()


@pytest.mark.parametrize("entity", ENTITIES)
async def test_sales_manager_edits_teammates_records_only(
    client: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    mgr, sp1 = world.users["mgr"], world.users["sp1"]
    theirs = await create_record(client, sp1, entity.plural, {entity.name_field: "Teammate's"})
    changed = await client.patch(
        f"/api/v1/{entity.plural}/{theirs['id']}",
        headers={**mgr.headers, "If-Match": '"1"'},
        json={entity.name_field: "Edited by manager"},
    )
    assert changed.status_code == 200, changed.text
    gql_changed = await gql(
        client,
        mgr,
        entity.gql_update(),
        {"input": {"id": theirs["id"], "version": 2, entity.gql_name(): "Again"}},
    )
    assert gql_data(gql_changed)[entity.update][entity.one]["version"] == 3
    outside = world.rid(entity, "sp3")
    refused = await client.patch(
        f"/api/v1/{entity.plural}/{outside}",
        headers={**mgr.headers, "If-Match": '"1"'},
        json={entity.name_field: "Not yours"},
    )
    assert_problem(refused, 404, "not_found")
    gql_refused = await gql(
        client,
        mgr,
        entity.gql_update(),
        {"input": {"id": outside, "version": 1, entity.gql_name(): "Not yours"}},
    )
    assert gql_codes(gql_refused) == ["NOT_FOUND"]
    deleted = await client.delete(f"/api/v1/{entity.plural}/{theirs['id']}", headers=mgr.headers)
    assert deleted.status_code == 204


async def test_team_membership_changes_the_scope_at_once(
    services: Services, client: httpx.AsyncClient, world: World
) -> None:
    admin = world.users["admin"]
    boss = await user_with_roles(services, client, admin, "boss", ["sales_manager"])
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    record = await create_record(client, rep, "contacts", {"last_name": "Rep's"})
    url = f"/api/v1/contacts/{record['id']}"
    assert_problem(await client.get(url, headers=boss.headers), 404, "not_found")
    team = await client.post("/api/v1/teams", headers=admin.headers, json={"name": "west"})
    members_url = f"/api/v1/teams/{team.json()['id']}/members"
    joined = await client.put(
        members_url,
        headers=admin.headers,
        json={"user_ids": [str(boss.user_id), str(rep.user_id)]},
    )
    assert joined.status_code == 200, joined.text
    assert (await client.get(url, headers=boss.headers)).status_code == 200
    left = await client.put(
        members_url, headers=admin.headers, json={"user_ids": [str(boss.user_id)]}
    )
    assert left.status_code == 200, left.text
    assert_problem(await client.get(url, headers=boss.headers), 404, "not_found")


@pytest.mark.parametrize("entity", ENTITIES)
async def test_team_scope_without_a_team_is_only_ones_own(
    client: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    loner = world.users["loner"]
    own = await client.get(
        f"/api/v1/{entity.plural}/{world.rid(entity, 'loner')}", headers=loner.headers
    )
    assert own.status_code == 200, own.text
    for who in ("sp1", "sp2", "sp3", "mgr", "admin"):
        got = await client.get(
            f"/api/v1/{entity.plural}/{world.rid(entity, who)}", headers=loner.headers
        )
        assert_problem(got, 404, "not_found")
        one = await gql(client, loner, entity.gql_one(), {"id": world.rid(entity, who)})
        assert gql_data(one) == {entity.one: None}
    seeded = owned_by(world, entity, *ALL_SEEDED)
    assert seeded & await rest_ids(client, loner, entity) == owned_by(world, entity, "loner")
    assert seeded & await gql_ids(client, loner, entity) == owned_by(world, entity, "loner")


# -- tenant ----------------------------------------------------------------------------------
@pytest.mark.parametrize("role_user", ["support", "auditor"])
@pytest.mark.parametrize("entity", ENTITIES)
async def test_support_and_auditor_read_tenant_wide(
    client: httpx.AsyncClient, world: World, entity: Entity, role_user: str
) -> None:
    user = world.users[role_user]
    for who in ALL_SEEDED:
        got = await client.get(
            f"/api/v1/{entity.plural}/{world.rid(entity, who)}", headers=user.headers
        )
        assert got.status_code == 200, (who, got.text)
        one = await gql(client, user, entity.gql_one(), {"id": world.rid(entity, who)})
        assert gql_data(one)[entity.one]["id"] == world.rid(entity, who)
    seeded = owned_by(world, entity, *ALL_SEEDED)
    assert seeded <= await rest_ids(client, user, entity)
    assert seeded <= await gql_ids(client, user, entity)
    assert await rest_ids(client, user, entity, q=world.name("sp3")) == owned_by(
        world, entity, "sp3"
    )


async def test_auditor_writes_nothing_and_support_edits_any_contact(
    client: httpx.AsyncClient, world: World
) -> None:
    auditor, support, sp2 = world.users["auditor"], world.users["support"], world.users["sp2"]
    record = await create_record(client, sp2, "contacts", {"last_name": "Anyone's"})
    url = f"/api/v1/contacts/{record['id']}"
    refused = await client.patch(
        url, headers={**auditor.headers, "If-Match": '"1"'}, json={"title": "Audited"}
    )
    assert_problem(refused, 403, "action_forbidden")
    assert_problem(await client.delete(url, headers=auditor.headers), 403, "action_forbidden")
    edited = await client.patch(
        url, headers={**support.headers, "If-Match": '"1"'}, json={"title": "Supported"}
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["title"] == "Supported"


# -- several roles ---------------------------------------------------------------------------
@pytest.mark.parametrize("entity", ENTITIES)
async def test_a_tenant_scope_role_without_read_does_not_widen_reads(
    client: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    user = world.users["sp_wide"]
    own = await client.get(
        f"/api/v1/{entity.plural}/{world.rid(entity, 'sp_wide')}", headers=user.headers
    )
    assert own.status_code == 200
    for who in ("sp1", "sp2", "admin"):
        got = await client.get(
            f"/api/v1/{entity.plural}/{world.rid(entity, who)}", headers=user.headers
        )
        assert_problem(got, 404, "not_found")
        one = await gql(client, user, entity.gql_one(), {"id": world.rid(entity, who)})
        assert gql_data(one) == {entity.one: None}
        patched = await client.patch(
            f"/api/v1/{entity.plural}/{world.rid(entity, who)}",
            headers={**user.headers, "If-Match": '"1"'},
            json={entity.name_field: "Widened"},
        )
        assert_problem(patched, 404, "not_found")
    seeded = owned_by(world, entity, *ALL_SEEDED)
    assert seeded & await rest_ids(client, user, entity) == owned_by(world, entity, "sp_wide")
    assert seeded & await gql_ids(client, user, entity) == owned_by(world, entity, "sp_wide")
    assert await rest_ids(client, user, entity, q=world.name("sp1")) == set()


async def test_effective_permissions_report_the_scope_of_the_granting_roles(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = world.users["admin"]
    scopes: dict[str, dict[str, str | None]] = {}
    for who in ("sp_wide", "sp_auditor"):
        response = await client.get(
            f"/api/v1/users/{world.users[who].user_id}/effective-permissions",
            params={"entity": "contact"},
            headers=admin.headers,
        )
        assert response.status_code == 200, response.text
        scopes[who] = {a["action"]: a["scope"] for a in response.json()["actions"]}
    assert scopes["sp_wide"]["read"] == "own"
    assert scopes["sp_wide"]["update"] == "own"
    assert scopes["sp_auditor"]["read"] == "tenant"
    assert scopes["sp_auditor"]["read_history"] == "tenant"
    assert scopes["sp_auditor"]["update"] == "own"
    assert scopes["sp_auditor"]["delete"] == "own"


@pytest.mark.parametrize("entity", ENTITIES)
async def test_auditor_role_widens_reads_but_not_a_salespersons_writes(
    client: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    user, admin = world.users["sp_auditor"], world.users["admin"]
    other = world.rid(entity, "sp2")
    url = f"/api/v1/{entity.plural}/{other}"
    assert (await client.get(url, headers=user.headers)).status_code == 200
    assert owned_by(world, entity, *ALL_SEEDED) <= await rest_ids(client, user, entity)
    patched = await client.patch(
        url, headers={**user.headers, "If-Match": '"1"'}, json={entity.name_field: "Widened"}
    )
    assert_problem(patched, 404, "not_found")
    assert_problem(await client.delete(url, headers=user.headers), 404, "not_found")
    updated = await gql(
        client,
        user,
        entity.gql_update(),
        {"input": {"id": other, "version": 1, entity.gql_name(): "Widened"}},
    )
    assert gql_codes(updated) == ["NOT_FOUND"]
    deleted = await gql(client, user, entity.gql_delete(), {"input": {"id": other}})
    assert gql_codes(deleted) == ["NOT_FOUND"]
    after = await client.get(url, headers=admin.headers)
    assert (after.json()["version"], after.json()[entity.name_field]) == (1, world.name("sp2"))


@pytest.mark.parametrize("entity", ENTITIES)
async def test_an_update_scope_wider_than_the_read_scope_shows_nothing_it_may_not_read(
    client: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    user, admin = world.users["sp_updater"], world.users["admin"]
    theirs = await create_record(client, admin, entity.plural, {entity.name_field: "Admin's"})
    url = f"/api/v1/{entity.plural}/{theirs['id']}"
    assert_problem(await client.get(url, headers=user.headers), 404, "not_found")
    assert theirs["id"] not in await rest_ids(client, user, entity)
    changed = await client.patch(
        url, headers={**user.headers, "If-Match": '"1"'}, json={"tags": ["touched"]}
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    # The write happened (update scope: tenant), but the answer reveals no field of a record
    # the caller may not read (read scope: own).
    assert set(body) == {"id", "version", "created_at", "updated_at", "withheld_fields"}
    assert body["version"] == 2
    assert entity.name_field in body["withheld_fields"]
    assert "owner_id" in body["withheld_fields"]
    fields = f"id version {entity.gql_name()} ownerId tags withheldFields"
    result = await gql(
        client,
        user,
        f"mutation U($input: {entity.update_input}!) {{ {entity.update}(input: $input) "
        f"{{ {entity.one} {{ {fields} }} errors {{ field code }} }} }}",
        {"input": {"id": theirs["id"], "version": 2, "tags": ["again"]}},
    )
    node = gql_data(result)[entity.update][entity.one]
    assert (node["version"], node[entity.gql_name()], node["ownerId"], node["tags"]) == (
        3,
        None,
        None,
        None,
    )
    assert {entity.gql_name(), "ownerId", "tags"} <= set(node["withheldFields"])
    # Their own records they still see in full after a change.
    mine = await create_record(client, user, entity.plural, {entity.name_field: "Own"})
    own = await client.patch(
        f"/api/v1/{entity.plural}/{mine['id']}",
        headers={**user.headers, "If-Match": '"1"'},
        json={"tags": ["mine"]},
    )
    assert (own.json()[entity.name_field], own.json()["tags"]) == ("Own", ["mine"])
    after = await client.get(url, headers=admin.headers)
    assert (after.json()["tags"], after.json()[entity.name_field]) == (["again"], "Admin's")
