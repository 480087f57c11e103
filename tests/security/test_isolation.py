"""Tenant isolation through both skins: tenant A's token can neither see nor change tenant B's
records, nor point its own records at them, nor choose the tenant or owner of what it creates.

Each case is written once and run over REST and GraphQL. A foreign record must look exactly
like a missing one ("not found" and "not yours" are the same answer), and every refused write
is checked afterwards with B's own token: B's record is unchanged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import pytest

from tests.conftest import TenantUser, gql

PROBLEM_JSON = "application/problem+json"
Json = dict[str, Any]


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def camel_keys(values: Json) -> Json:
    return {camel(k): v for k, v in values.items()}


def marker(label: str) -> str:
    """A name no other test uses, so searches for it are exact."""
    return f"{label}{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Entity:
    name: str  # contact
    plural: str  # contacts
    type_name: str  # Contact
    name_field: str  # the searchable name column (snake_case)
    gql_fields: str  # the fields GraphQL selects

    def payload(self, name: str, **extra: Any) -> Json:
        return {self.name_field: name, **extra}


CONTACT = Entity(
    "contact", "contacts", "Contact", "last_name", "id version lastName accountId ownerId"
)
ACCOUNT = Entity("account", "accounts", "Account", "name", "id version name ownerId")
ENTITIES = {"contact": CONTACT, "account": ACCOUNT}


# -- the two skins ---------------------------------------------------------------------------
class Skin(Protocol):
    name: str

    async def hidden(self, http: httpx.AsyncClient, user: TenantUser, e: Entity, rid: str) -> Any:
        """Read a record `user` may not see; assert this skin's not-found; return the answer."""

    async def update_hidden(
        self, http: httpx.AsyncClient, user: TenantUser, e: Entity, rid: str, version: int
    ) -> Any:
        """Update a record `user` may not see (with its true version); assert not-found."""

    async def delete_hidden(
        self, http: httpx.AsyncClient, user: TenantUser, e: Entity, rid: str
    ) -> Any:
        """Delete a record `user` may not see; assert not-found."""

    async def list_ids(
        self,
        http: httpx.AsyncClient,
        user: TenantUser,
        e: Entity,
        *,
        q: str | None = None,
        filters: dict[str, str] | None = None,
    ) -> set[str]:
        """Every id the list returns to `user` (all pages)."""

    async def create_with_extra_field_refused(
        self, http: httpx.AsyncClient, user: TenantUser, e: Entity, data: Json, field: str
    ) -> None:
        """Create with a field no create may carry; assert it is refused naming that field."""

    async def create_with_bad_reference_refused(
        self, http: httpx.AsyncClient, user: TenantUser, e: Entity, data: Json, field: str
    ) -> None:
        """Create pointing at a record the user may not see; assert 422-style refusal."""

    async def update_with_bad_reference_refused(
        self,
        http: httpx.AsyncClient,
        user: TenantUser,
        e: Entity,
        rid: str,
        version: int,
        data: Json,
        field: str,
    ) -> None:
        """Update pointing at a record the user may not see; assert 422-style refusal."""


def _assert_problem(response: httpx.Response, status: int, code: str) -> Json:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: Json = response.json()
    assert body["status"] == status
    assert body["code"] == code
    return body


class Rest:
    name = "rest"

    async def hidden(self, http: httpx.AsyncClient, user: TenantUser, e: Entity, rid: str) -> Any:
        response = await http.get(f"/api/v1/{e.plural}/{rid}", headers=user.headers)
        return _assert_problem(response, 404, "not_found")

    async def update_hidden(
        self, http: httpx.AsyncClient, user: TenantUser, e: Entity, rid: str, version: int
    ) -> Any:
        response = await http.patch(
            f"/api/v1/{e.plural}/{rid}",
            json=e.payload("Hijacked"),
            headers={**user.headers, "If-Match": f'"{version}"'},
        )
        return _assert_problem(response, 404, "not_found")

    async def delete_hidden(
        self, http: httpx.AsyncClient, user: TenantUser, e: Entity, rid: str
    ) -> Any:
        response = await http.delete(f"/api/v1/{e.plural}/{rid}", headers=user.headers)
        return _assert_problem(response, 404, "not_found")

    async def list_ids(
        self,
        http: httpx.AsyncClient,
        user: TenantUser,
        e: Entity,
        *,
        q: str | None = None,
        filters: dict[str, str] | None = None,
    ) -> set[str]:
        params: dict[str, str | int] = {"limit": 200, **(filters or {})}
        if q is not None:
            params["q"] = q
        ids: set[str] = set()
        while True:
            response = await http.get(f"/api/v1/{e.plural}", params=params, headers=user.headers)
            assert response.status_code == 200, response.text
            page = response.json()
            ids.update(item["id"] for item in page["items"])
            if page["next"] is None:
                return ids
            params["after"] = page["next"]

    async def create_with_extra_field_refused(
        self, http: httpx.AsyncClient, user: TenantUser, e: Entity, data: Json, field: str
    ) -> None:
        response = await http.post(f"/api/v1/{e.plural}", json=data, headers=user.headers)
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        assert response.json()["field"] == field

    async def create_with_bad_reference_refused(
        self, http: httpx.AsyncClient, user: TenantUser, e: Entity, data: Json, field: str
    ) -> None:
        response = await http.post(f"/api/v1/{e.plural}", json=data, headers=user.headers)
        body = _assert_problem(response, 422, "unknown_reference")
        assert body["field"] == field

    async def update_with_bad_reference_refused(
        self,
        http: httpx.AsyncClient,
        user: TenantUser,
        e: Entity,
        rid: str,
        version: int,
        data: Json,
        field: str,
    ) -> None:
        response = await http.patch(
            f"/api/v1/{e.plural}/{rid}",
            json=data,
            headers={**user.headers, "If-Match": f'"{version}"'},
        )
        body = _assert_problem(response, 422, "unknown_reference")
        assert body["field"] == field


def _top_level_error(body: Json, path: str, code: str) -> Json:
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["path"] == [path]
    assert error["extensions"]["code"] == code
    return {"message": error["message"], "extensions": error["extensions"]}


class GraphQL:
    name = "graphql"

    async def hidden(self, http: httpx.AsyncClient, user: TenantUser, e: Entity, rid: str) -> Any:
        body = await gql(
            http,
            user,
            f"query($id: ID!) {{ {e.name}(id: $id) {{ {e.gql_fields} }} }}",
            {"id": rid},
        )
        assert "errors" not in body, body
        assert body["data"] == {e.name: None}
        return body

    async def update_hidden(
        self, http: httpx.AsyncClient, user: TenantUser, e: Entity, rid: str, version: int
    ) -> Any:
        mutation = f"update{e.type_name}"
        body = await gql(
            http,
            user,
            f"mutation($input: Update{e.type_name}Input!) {{ {mutation}(input: $input) "
            f"{{ {e.name} {{ id }} errors {{ field code }} }} }}",
            {"input": {"id": rid, "version": version, **camel_keys(e.payload("Hijacked"))}},
        )
        return _top_level_error(body, mutation, "NOT_FOUND")

    async def delete_hidden(
        self, http: httpx.AsyncClient, user: TenantUser, e: Entity, rid: str
    ) -> Any:
        mutation = f"delete{e.type_name}"
        body = await gql(
            http,
            user,
            f"mutation($input: DeleteInput!) {{ {mutation}(input: $input) "
            "{ deletedId errors { field code } } }",
            {"input": {"id": rid}},
        )
        return _top_level_error(body, mutation, "NOT_FOUND")

    async def list_ids(
        self,
        http: httpx.AsyncClient,
        user: TenantUser,
        e: Entity,
        *,
        q: str | None = None,
        filters: dict[str, str] | None = None,
    ) -> set[str]:
        gql_filter = camel_keys(filters or {})
        if q is not None:
            gql_filter["q"] = q
        query = (
            f"query($after: String, $filter: {e.type_name}Filter) {{ "
            f"{e.plural}(first: 200, after: $after, filter: $filter) "
            "{ edges { node { id } } pageInfo { hasNextPage endCursor } } }"
        )
        ids: set[str] = set()
        after: str | None = None
        while True:
            body = await gql(http, user, query, {"after": after, "filter": gql_filter})
            assert "errors" not in body, body
            connection = body["data"][e.plural]
            ids.update(edge["node"]["id"] for edge in connection["edges"])
            if not connection["pageInfo"]["hasNextPage"]:
                return ids
            after = connection["pageInfo"]["endCursor"]

    async def create_with_extra_field_refused(
        self, http: httpx.AsyncClient, user: TenantUser, e: Entity, data: Json, field: str
    ) -> None:
        body = await gql(
            http,
            user,
            f"mutation($input: Create{e.type_name}Input!) {{ create{e.type_name}(input: $input) "
            f"{{ {e.name} {{ id }} errors {{ field code }} }} }}",
            {"input": camel_keys(data)},
        )
        # The input type has no such field: the operation is refused before it runs.
        assert body.get("data") is None, body
        [error] = body["errors"]
        assert camel(field) in error["message"]

    async def create_with_bad_reference_refused(
        self, http: httpx.AsyncClient, user: TenantUser, e: Entity, data: Json, field: str
    ) -> None:
        mutation = f"create{e.type_name}"
        body = await gql(
            http,
            user,
            f"mutation($input: Create{e.type_name}Input!) {{ {mutation}(input: $input) "
            f"{{ {e.name} {{ id }} errors {{ field code }} }} }}",
            {"input": camel_keys(data)},
        )
        assert "errors" not in body, body
        assert body["data"][mutation] == {
            e.name: None,
            "errors": [{"field": camel(field), "code": "unknown_reference"}],
        }

    async def update_with_bad_reference_refused(
        self,
        http: httpx.AsyncClient,
        user: TenantUser,
        e: Entity,
        rid: str,
        version: int,
        data: Json,
        field: str,
    ) -> None:
        mutation = f"update{e.type_name}"
        body = await gql(
            http,
            user,
            f"mutation($input: Update{e.type_name}Input!) {{ {mutation}(input: $input) "
            f"{{ {e.name} {{ id }} errors {{ field code }} }} }}",
            {"input": {"id": rid, "version": version, **camel_keys(data)}},
        )
        assert "errors" not in body, body
        assert body["data"][mutation] == {
            e.name: None,
            "errors": [{"field": camel(field), "code": "unknown_reference"}],
        }


SKINS: dict[str, Skin] = {"rest": Rest(), "graphql": GraphQL()}


@pytest.fixture(params=sorted(SKINS))
def skin(request: pytest.FixtureRequest) -> Skin:
    return SKINS[request.param]


# -- the two tenants' records ------------------------------------------------------------------
@dataclass(frozen=True)
class World:
    a: TenantUser
    b: TenantUser
    a_marker: str
    b_marker: str  # a name only B's account and contact carry
    records: dict[tuple[str, str], Json]  # (tenant, entity) -> the record as created

    def record(self, tenant: str, entity: Entity) -> Json:
        return self.records[(tenant, entity.name)]


async def _create(http: httpx.AsyncClient, user: TenantUser, e: Entity, data: Json) -> Json:
    response = await http.post(f"/api/v1/{e.plural}", json=data, headers=user.headers)
    assert response.status_code == 201, response.text
    body: Json = response.json()
    return body


@pytest.fixture(scope="module")
async def world(client: httpx.AsyncClient, tenant_a: TenantUser, tenant_b: TenantUser) -> World:
    a_marker, b_marker = marker("Aardvark"), marker("Zanzibar")
    records: dict[tuple[str, str], Json] = {}
    for tenant, user, name in (("a", tenant_a, a_marker), ("b", tenant_b, b_marker)):
        account = await _create(client, user, ACCOUNT, ACCOUNT.payload(name))
        contact = await _create(
            client,
            user,
            CONTACT,
            CONTACT.payload(name, first_name="Only", account_id=account["id"]),
        )
        records[(tenant, "account")] = account
        records[(tenant, "contact")] = contact
    return World(tenant_a, tenant_b, a_marker, b_marker, records)


async def _as_b(http: httpx.AsyncClient, world: World, e: Entity) -> Json:
    """B's record as B sees it now."""
    rid = world.record("b", e)["id"]
    response = await http.get(f"/api/v1/{e.plural}/{rid}", headers=world.b.headers)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


entity_param = pytest.mark.parametrize("entity", [CONTACT, ACCOUNT], ids=lambda e: e.name)


# -- reads -------------------------------------------------------------------------------------
@entity_param
async def test_get_of_foreign_record_is_the_same_as_missing(
    client: httpx.AsyncClient, world: World, skin: Skin, entity: Entity
) -> None:
    foreign = await skin.hidden(client, world.a, entity, world.record("b", entity)["id"])
    missing = await skin.hidden(client, world.a, entity, str(uuid.uuid4()))
    assert foreign == missing


@entity_param
async def test_list_never_contains_foreign_rows(
    client: httpx.AsyncClient, world: World, skin: Skin, entity: Entity
) -> None:
    seen_by_a = await skin.list_ids(client, world.a, entity)
    seen_by_b = await skin.list_ids(client, world.b, entity)
    assert world.record("a", entity)["id"] in seen_by_a
    assert world.record("b", entity)["id"] in seen_by_b
    assert seen_by_a.isdisjoint(seen_by_b)


@entity_param
async def test_search_for_a_name_only_b_has_finds_nothing(
    client: httpx.AsyncClient, world: World, skin: Skin, entity: Entity
) -> None:
    assert await skin.list_ids(client, world.a, entity, q=world.b_marker) == set()
    assert await skin.list_ids(client, world.b, entity, q=world.b_marker) == {
        world.record("b", entity)["id"]
    }
    # A substring and a different case reach the same rows for B, and none for A.
    partial = world.b_marker[3:].upper()
    assert await skin.list_ids(client, world.a, entity, q=partial) == set()
    assert world.record("b", entity)["id"] in await skin.list_ids(
        client, world.b, entity, q=partial
    )


async def test_filter_by_foreign_account_returns_nothing(
    client: httpx.AsyncClient, world: World, skin: Skin
) -> None:
    b_account = world.record("b", ACCOUNT)["id"]
    filters = {"account_id": b_account}
    assert await skin.list_ids(client, world.a, CONTACT, filters=filters) == set()
    assert await skin.list_ids(client, world.b, CONTACT, filters=filters) == {
        world.record("b", CONTACT)["id"]
    }


@entity_param
async def test_filter_by_foreign_owner_returns_nothing(
    client: httpx.AsyncClient, world: World, skin: Skin, entity: Entity
) -> None:
    filters = {"owner_id": str(world.b.user_id)}
    assert await skin.list_ids(client, world.a, entity, filters=filters) == set()
    assert world.record("b", entity)["id"] in await skin.list_ids(
        client, world.b, entity, filters=filters
    )


async def test_nested_account_contacts_stay_in_tenant(
    client: httpx.AsyncClient, world: World
) -> None:
    query = (
        "query($id: ID!) { contact(id: $id) { id account { id contacts(first: 50) "
        "{ edges { node { id } } } } } }"
    )
    a_contact = world.record("a", CONTACT)
    body = await gql(client, world.a, query, {"id": a_contact["id"]})
    assert "errors" not in body, body
    account = body["data"]["contact"]["account"]
    assert account["id"] == world.record("a", ACCOUNT)["id"]
    assert [e["node"]["id"] for e in account["contacts"]["edges"]] == [a_contact["id"]]


# -- writes to B's records ---------------------------------------------------------------------
@entity_param
async def test_update_of_foreign_record_is_not_found_and_changes_nothing(
    client: httpx.AsyncClient, world: World, skin: Skin, entity: Entity
) -> None:
    before = await _as_b(client, world, entity)
    foreign = await skin.update_hidden(
        client, world.a, entity, before["id"], version=before["version"]
    )
    missing = await skin.update_hidden(
        client, world.a, entity, str(uuid.uuid4()), version=before["version"]
    )
    assert foreign == missing
    assert await _as_b(client, world, entity) == before


@entity_param
async def test_delete_of_foreign_record_is_not_found_and_changes_nothing(
    client: httpx.AsyncClient, world: World, skin: Skin, entity: Entity
) -> None:
    before = await _as_b(client, world, entity)
    foreign = await skin.delete_hidden(client, world.a, entity, before["id"])
    missing = await skin.delete_hidden(client, world.a, entity, str(uuid.uuid4()))
    assert foreign == missing
    assert await _as_b(client, world, entity) == before
    assert before["id"] in await skin.list_ids(client, world.b, entity)


# -- what a create may not choose ----------------------------------------------------------------
@entity_param
@pytest.mark.parametrize("field", ["tenant_id", "owner_id"])
async def test_create_cannot_choose_its_tenant_or_owner(
    client: httpx.AsyncClient, world: World, skin: Skin, entity: Entity, field: str
) -> None:
    name = marker("Smuggled")
    value = {"tenant_id": str(world.b.tenant_id), "owner_id": str(world.b.user_id)}[field]
    await skin.create_with_extra_field_refused(
        client, world.a, entity, entity.payload(name, **{field: value}), field
    )
    assert await skin.list_ids(client, world.a, entity, q=name) == set()
    assert await skin.list_ids(client, world.b, entity, q=name) == set()


async def test_rest_update_cannot_move_a_record_to_another_tenant(
    client: httpx.AsyncClient, world: World
) -> None:
    mine = world.record("a", CONTACT)
    current = await client.get(f"/api/v1/contacts/{mine['id']}", headers=world.a.headers)
    response = await client.patch(
        f"/api/v1/contacts/{mine['id']}",
        json={"tenant_id": str(world.b.tenant_id)},
        headers={**world.a.headers, "If-Match": current.headers["etag"]},
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["field"] == "tenant_id"
    after = await client.get(f"/api/v1/contacts/{mine['id']}", headers=world.a.headers)
    assert after.json() == current.json()


# -- references to B's records -------------------------------------------------------------------
async def test_create_pointing_at_foreign_account_is_refused(
    client: httpx.AsyncClient, world: World, skin: Skin
) -> None:
    name = marker("Pointer")
    b_account = world.record("b", ACCOUNT)["id"]
    await skin.create_with_bad_reference_refused(
        client, world.a, CONTACT, CONTACT.payload(name, account_id=b_account), "account_id"
    )
    assert await skin.list_ids(client, world.a, CONTACT, q=name) == set()
    assert await skin.list_ids(client, world.b, CONTACT, q=name) == set()
    assert await skin.list_ids(client, world.b, CONTACT, filters={"account_id": b_account}) == {
        world.record("b", CONTACT)["id"]
    }


@pytest.mark.parametrize(
    ("entity", "field"),
    [(CONTACT, "account_id"), (CONTACT, "owner_id"), (ACCOUNT, "owner_id")],
    ids=["contact.account_id", "contact.owner_id", "account.owner_id"],
)
async def test_update_pointing_at_foreign_record_is_refused(
    client: httpx.AsyncClient, world: World, skin: Skin, entity: Entity, field: str
) -> None:
    mine = world.record("a", entity)
    path = f"/api/v1/{entity.plural}/{mine['id']}"
    before = (await client.get(path, headers=world.a.headers)).json()
    target = {"account_id": world.record("b", ACCOUNT)["id"], "owner_id": str(world.b.user_id)}
    await skin.update_with_bad_reference_refused(
        client, world.a, entity, mine["id"], before["version"], {field: target[field]}, field
    )
    assert (await client.get(path, headers=world.a.headers)).json() == before
    assert (
        await skin.list_ids(client, world.a, CONTACT, filters={"account_id": target["account_id"]})
        == set()
    )
