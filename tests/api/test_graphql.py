"""GraphQL contract: Relay connections, single records, mutations with payload errors, one
transaction per operation, safety limits, and the checked-in SDL."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant

REPO = Path(__file__).resolve().parents[2]

CONTACT_FIELDS = "id version firstName lastName email accountId ownerId tags createdAt updatedAt"
ACCOUNT_FIELDS = "id version name industry website ownerId tags createdAt updatedAt"

CONTACTS_PAGE = f"""
query Page($first: Int!, $after: String, $filter: ContactFilter, $orderBy: ContactOrder) {{
  contacts(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {{
    edges {{ cursor node {{ {CONTACT_FIELDS} }} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
  }}
}}
"""
ACCOUNTS_PAGE = f"""
query Page($first: Int!, $after: String, $filter: AccountFilter, $orderBy: AccountOrder) {{
  accounts(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {{
    edges {{ cursor node {{ {ACCOUNT_FIELDS} }} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
  }}
}}
"""
CREATE_CONTACT = f"""
mutation Create($input: CreateContactInput!) {{
  createContact(input: $input) {{ contact {{ {CONTACT_FIELDS} }} errors {{ field code message }} }}
}}
"""
UPDATE_CONTACT = f"""
mutation Update($input: UpdateContactInput!) {{
  updateContact(input: $input) {{ contact {{ {CONTACT_FIELDS} }} errors {{ field code message }} }}
}}
"""
DELETE_CONTACT = """
mutation Delete($input: DeleteInput!) {
  deleteContact(input: $input) { deletedId errors { field code message } }
}
"""
CREATE_ACCOUNT = f"""
mutation Create($input: CreateAccountInput!) {{
  createAccount(input: $input) {{ account {{ {ACCOUNT_FIELDS} }} errors {{ field code message }} }}
}}
"""
UPDATE_ACCOUNT = f"""
mutation Update($input: UpdateAccountInput!) {{
  updateAccount(input: $input) {{ account {{ {ACCOUNT_FIELDS} }} errors {{ field code message }} }}
}}
"""
DELETE_ACCOUNT = """
mutation Delete($input: DeleteInput!) {
  deleteAccount(input: $input) { deletedId errors { field code message } }
}
"""
GET_CONTACT = f"query One($id: ID!) {{ contact(id: $id) {{ {CONTACT_FIELDS} }} }}"
GET_ACCOUNT = f"query One($id: ID!) {{ account(id: $id) {{ {ACCOUNT_FIELDS} }} }}"


def data(result: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in result, result
    body: dict[str, Any] = result["data"]
    return body


def error_codes(result: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in result["errors"]]


async def create_contact(
    client: httpx.AsyncClient, user: TenantUser, **fields: Any
) -> dict[str, Any]:
    payload = data(await gql(client, user, CREATE_CONTACT, {"input": fields}))["createContact"]
    assert payload["errors"] == []
    contact: dict[str, Any] = payload["contact"]
    return contact


async def create_account(
    client: httpx.AsyncClient, user: TenantUser, **fields: Any
) -> dict[str, Any]:
    payload = data(await gql(client, user, CREATE_ACCOUNT, {"input": fields}))["createAccount"]
    assert payload["errors"] == []
    account: dict[str, Any] = payload["account"]
    return account


async def rest_items(client: httpx.AsyncClient, user: TenantUser, plural: str) -> list[Any]:
    """Every record of a collection, read over REST."""
    items: list[Any] = []
    params: dict[str, str | int] = {"limit": 200}
    while True:
        response = await client.get(f"/api/v1/{plural}", params=params, headers=user.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        if page["next"] is None:
            return items
        params["after"] = page["next"]


async def walk(
    client: httpx.AsyncClient,
    user: TenantUser,
    document: str,
    root: str,
    first: int,
    **variables: Any,
) -> list[dict[str, Any]]:
    """Every page of a connection; returns the pages' connection objects."""
    pages: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        result = await gql(client, user, document, {"first": first, "after": after, **variables})
        connection = data(result)[root]
        pages.append(connection)
        if not connection["pageInfo"]["hasNextPage"]:
            return pages
        after = connection["pageInfo"]["endCursor"]
        assert len(pages) < 100, "paging did not terminate"


def nodes(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [edge["node"] for page in pages for edge in page["edges"]]


# -- connections ---------------------------------------------------------------------------------
async def test_contacts_connection_pages_with_first_and_after(
    services: Services, client: httpx.AsyncClient
) -> None:
    tenant = await new_tenant(services, client, "gqlpages")
    created = [await create_contact(client, tenant, lastName=f"Page{n}") for n in range(7)]

    pages = await walk(client, tenant, CONTACTS_PAGE, "contacts", 3)
    assert [len(p["edges"]) for p in pages] == [3, 3, 1]
    assert [p["pageInfo"]["hasNextPage"] for p in pages] == [True, True, False]
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False, True, True]
    for page in pages:
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
    assert [n["id"] for n in nodes(pages)] == [c["id"] for c in created]


async def test_accounts_connection_pages_with_first_and_after(
    services: Services, client: httpx.AsyncClient
) -> None:
    tenant = await new_tenant(services, client, "gqlapages")
    created = [await create_account(client, tenant, name=f"Firm {n}") for n in range(8)]
    pages = await walk(client, tenant, ACCOUNTS_PAGE, "accounts", 3)
    assert [len(p["edges"]) for p in pages] == [3, 3, 2]
    assert [n["id"] for n in nodes(pages)] == [a["id"] for a in created]


async def test_empty_connection(services: Services, client: httpx.AsyncClient) -> None:
    tenant = await new_tenant(services, client, "gqlempty")
    connection = data(await gql(client, tenant, CONTACTS_PAGE, {"first": 5}))["contacts"]
    assert connection == {
        "edges": [],
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
    }


async def test_contacts_filter_and_order_by(services: Services, client: httpx.AsyncClient) -> None:
    tenant = await new_tenant(services, client, "gqlfilter")
    account = await create_account(client, tenant, name="Filter AG")
    names = ["Meyer", "Maier", "Mayer", "Meier", "Schulz"]
    created = {
        n: await create_contact(client, tenant, lastName=n, accountId=account["id"]) for n in names
    }
    await create_contact(client, tenant, lastName="Meyerhoff")  # matches q, not the account

    pages = await walk(
        client,
        tenant,
        CONTACTS_PAGE,
        "contacts",
        2,
        filter={"q": "M", "accountId": account["id"]},
        orderBy={"field": "LAST_NAME", "direction": "DESC"},
    )
    assert [n["lastName"] for n in nodes(pages)] == ["Meyer", "Meier", "Mayer", "Maier"]
    assert len(pages) == 2

    search = await walk(client, tenant, CONTACTS_PAGE, "contacts", 10, filter={"q": "meyer"})
    assert sorted(n["lastName"] for n in nodes(search)) == ["Meyer", "Meyerhoff"]

    by_owner = await walk(
        client, tenant, CONTACTS_PAGE, "contacts", 10, filter={"ownerId": str(tenant.user_id)}
    )
    assert len(nodes(by_owner)) == 6
    none_owned = await walk(
        client, tenant, CONTACTS_PAGE, "contacts", 10, filter={"ownerId": str(uuid.uuid4())}
    )
    assert nodes(none_owned) == []

    touched = data(
        await gql(
            client,
            tenant,
            UPDATE_CONTACT,
            {"input": {"id": created["Schulz"]["id"], "version": 1, "firstName": "Olaf"}},
        )
    )["updateContact"]["contact"]
    since = await walk(
        client,
        tenant,
        CONTACTS_PAGE,
        "contacts",
        10,
        filter={"updatedSince": touched["updatedAt"]},
        orderBy={"field": "UPDATED_AT", "direction": "DESC"},
    )
    assert nodes(since)[0]["id"] == touched["id"]
    assert created["Meyer"]["id"] not in [n["id"] for n in nodes(since)]


async def test_accounts_filter_and_order_by(services: Services, client: httpx.AsyncClient) -> None:
    tenant = await new_tenant(services, client, "gqlafilter")
    for name in ["Delta", "alpha", "Charlie", "Bravo", "Alphabet"]:
        await create_account(client, tenant, name=name)
    pages = await walk(
        client,
        tenant,
        ACCOUNTS_PAGE,
        "accounts",
        2,
        filter={"q": "ALPHA"},
        orderBy={"field": "NAME", "direction": "ASC"},
    )
    found = [n["name"] for n in nodes(pages)]
    assert sorted(found) == ["Alphabet", "alpha"]
    ordered = await walk(
        client, tenant, ACCOUNTS_PAGE, "accounts", 2, orderBy={"field": "NAME", "direction": "DESC"}
    )
    assert len(nodes(ordered)) == 5
    assert len(ordered) == 3


async def test_order_by_equal_values_pages_stably(
    services: Services, client: httpx.AsyncClient
) -> None:
    tenant = await new_tenant(services, client, "gqlstable")
    created = [await create_contact(client, tenant, lastName="Same") for _ in range(5)]
    pages = await walk(client, tenant, CONTACTS_PAGE, "contacts", 2, orderBy={"field": "LAST_NAME"})
    assert [n["id"] for n in nodes(pages)] == [c["id"] for c in created]


# -- single records ------------------------------------------------------------------------------
async def test_contact_and_account_by_id(client: httpx.AsyncClient, tenant_a: TenantUser) -> None:
    account = await create_account(client, tenant_a, name="Single Ltd", industry="Tea")
    contact = await create_contact(client, tenant_a, lastName="Single", accountId=account["id"])

    assert (
        data(await gql(client, tenant_a, GET_ACCOUNT, {"id": account["id"]}))["account"] == account
    )
    assert (
        data(await gql(client, tenant_a, GET_CONTACT, {"id": contact["id"]}))["contact"] == contact
    )
    for missing in (str(uuid.uuid4()), "not-a-uuid"):
        assert data(await gql(client, tenant_a, GET_CONTACT, {"id": missing}))["contact"] is None
        assert data(await gql(client, tenant_a, GET_ACCOUNT, {"id": missing}))["account"] is None


# -- mutations -----------------------------------------------------------------------------------
async def test_contact_create_update_delete(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    contact = await create_contact(
        client, tenant_a, lastName="Hopper", firstName="Grace", tags=["navy", "navy", "cobol"]
    )
    assert contact["version"] == 1
    assert contact["ownerId"] == str(tenant_a.user_id)
    assert contact["tags"] == ["navy", "cobol"]

    updated = data(
        await gql(
            client,
            tenant_a,
            UPDATE_CONTACT,
            {"input": {"id": contact["id"], "version": 1, "email": "grace@example.com"}},
        )
    )["updateContact"]
    assert updated["errors"] == []
    assert updated["contact"]["version"] == 2
    assert updated["contact"]["email"] == "grace@example.com"
    assert updated["contact"]["firstName"] == "Grace"

    cleared = data(
        await gql(
            client,
            tenant_a,
            UPDATE_CONTACT,
            {"input": {"id": contact["id"], "version": 2, "firstName": None}},
        )
    )["updateContact"]["contact"]
    assert cleared["firstName"] is None
    assert cleared["version"] == 3

    deleted = data(await gql(client, tenant_a, DELETE_CONTACT, {"input": {"id": contact["id"]}}))[
        "deleteContact"
    ]
    assert deleted == {"deletedId": contact["id"], "errors": []}
    assert data(await gql(client, tenant_a, GET_CONTACT, {"id": contact["id"]}))["contact"] is None
    gone = await client.get(f"/api/v1/contacts/{contact['id']}", headers=tenant_a.headers)
    assert gone.status_code == 404


async def test_account_create_update_delete(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    account = await create_account(client, tenant_a, name="Mutate Inc", website="https://m.example")
    assert account["version"] == 1
    updated = data(
        await gql(
            client,
            tenant_a,
            UPDATE_ACCOUNT,
            {"input": {"id": account["id"], "version": 1, "industry": "Rope", "website": None}},
        )
    )["updateAccount"]
    assert updated["errors"] == []
    assert updated["account"]["industry"] == "Rope"
    assert updated["account"]["website"] is None
    assert updated["account"]["version"] == 2

    stale = data(
        await gql(client, tenant_a, DELETE_ACCOUNT, {"input": {"id": account["id"], "version": 1}})
    )["deleteAccount"]
    assert stale["deletedId"] is None
    assert [e["code"] for e in stale["errors"]] == ["version_mismatch"]
    assert (
        data(await gql(client, tenant_a, GET_ACCOUNT, {"id": account["id"]}))["account"]
        == (updated["account"])
    )

    deleted = data(
        await gql(client, tenant_a, DELETE_ACCOUNT, {"input": {"id": account["id"], "version": 2}})
    )["deleteAccount"]
    assert deleted == {"deletedId": account["id"], "errors": []}
    assert data(await gql(client, tenant_a, GET_ACCOUNT, {"id": account["id"]}))["account"] is None


async def test_update_of_a_missing_record_is_a_top_level_not_found(
    client: httpx.AsyncClient, tenant_a: TenantUser, tenant_b: TenantUser
) -> None:
    other = await create_contact(client, tenant_b, lastName="Elsewhere")
    for record_id in (str(uuid.uuid4()), other["id"]):
        result = await gql(
            client,
            tenant_a,
            UPDATE_CONTACT,
            {"input": {"id": record_id, "version": 1, "lastName": "Mine now"}},
        )
        assert result["data"] is None
        assert error_codes(result) == ["NOT_FOUND"]
    unchanged = data(await gql(client, tenant_b, GET_CONTACT, {"id": other["id"]}))["contact"]
    assert unchanged == other


# -- nested resolution ---------------------------------------------------------------------------
async def test_contact_account_and_account_contacts(
    services: Services, client: httpx.AsyncClient
) -> None:
    tenant = await new_tenant(services, client, "gqlnested")
    acme = await create_account(client, tenant, name="Acme")
    empty = await create_account(client, tenant, name="Empty")
    people = [
        await create_contact(client, tenant, lastName=f"Worker{n}", accountId=acme["id"])
        for n in range(3)
    ]
    loner = await create_contact(client, tenant, lastName="Loner")

    query = """
    {
      contacts(first: 10) { edges { node { id account { id name } } } }
      accounts(first: 10) { edges { node { id
        contacts(first: 2) {
          edges { node { id lastName account { id } } }
          pageInfo { hasNextPage }
        }
      } } }
    }
    """
    result = data(await gql(client, tenant, query))
    account_of = {e["node"]["id"]: e["node"]["account"] for e in result["contacts"]["edges"]}
    assert account_of == {
        **{p["id"]: {"id": acme["id"], "name": "Acme"} for p in people},
        loner["id"]: None,
    }
    contacts_of = {e["node"]["id"]: e["node"]["contacts"] for e in result["accounts"]["edges"]}
    assert [e["node"]["id"] for e in contacts_of[acme["id"]]["edges"]] == [
        p["id"] for p in people[:2]
    ]
    assert all(e["node"]["account"]["id"] == acme["id"] for e in contacts_of[acme["id"]]["edges"])
    assert contacts_of[acme["id"]]["pageInfo"]["hasNextPage"] is True
    assert contacts_of[empty["id"]] == {"edges": [], "pageInfo": {"hasNextPage": False}}


# -- one transaction per operation ---------------------------------------------------------------
async def test_a_failing_second_mutation_rolls_back_the_first(
    services: Services, client: httpx.AsyncClient
) -> None:
    tenant = await new_tenant(services, client, "gqlrollback")
    document = """
    mutation Two($missing: ID!) {
      first: createContact(input: {lastName: "Rolled Back"}) { contact { id } errors { code } }
      second: updateContact(input: {id: $missing, version: 1, lastName: "x"}) {
        contact { id } errors { code }
      }
    }
    """
    result = await gql(client, tenant, document, {"missing": str(uuid.uuid4())})
    # The failing mutation's payload is non-null, so the whole `data` is null: nothing in the
    # response claims the first contact was saved.
    assert error_codes(result) == ["NOT_FOUND"]
    assert result["data"] is None
    assert result["errors"][0]["path"] == ["second"]
    assert await rest_items(client, tenant, "contacts") == []
    found = await client.get(
        "/api/v1/contacts", params={"q": "Rolled Back"}, headers=tenant.headers
    )
    assert found.json()["items"] == []


async def test_a_payload_validation_error_rolls_back_the_operation(
    services: Services, client: httpx.AsyncClient
) -> None:
    tenant = await new_tenant(services, client, "gqlpayloadrb")
    document = """
    mutation Two {
      ok: createAccount(input: {name: "Written first"}) { account { id } errors { code } }
      bad: createContact(input: {lastName: "X", email: "not-an-email"}) {
        contact { id } errors { field code }
      }
    }
    """
    response = await gql(client, tenant, document)
    assert error_codes(response) == ["ROLLED_BACK"]
    result = response["data"]
    assert result["bad"] == {
        "contact": None,
        "errors": [{"field": "email", "code": "invalid_email"}],
    }
    assert await rest_items(client, tenant, "accounts") == []
    assert await rest_items(client, tenant, "contacts") == []

    single = data(await gql(client, tenant, CREATE_CONTACT, {"input": {"lastName": "x" * 101}}))[
        "createContact"
    ]
    assert single["contact"] is None
    assert [(e["field"], e["code"]) for e in single["errors"]] == [("lastName", "too_long")]
    assert await rest_items(client, tenant, "contacts") == []


async def test_successful_mutations_in_one_document_all_commit(
    services: Services, client: httpx.AsyncClient
) -> None:
    tenant = await new_tenant(services, client, "gqlcommit")
    document = """
    mutation Two {
      a: createContact(input: {lastName: "One"}) { contact { id } errors { code } }
      b: createContact(input: {lastName: "Two"}) { contact { id } errors { code } }
    }
    """
    result = data(await gql(client, tenant, document))
    created = sorted([result["a"]["contact"]["id"], result["b"]["contact"]["id"]])
    assert sorted(r["id"] for r in await rest_items(client, tenant, "contacts")) == created


# -- authentication and safety limits ------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "not-a-token"])
async def test_unauthenticated_query_is_refused(
    client: httpx.AsyncClient, token: str | None
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        "/graphql",
        json={"query": "{ contacts(first: 1) { edges { node { id } } } }"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["data"] is None
    assert error_codes(result) == ["UNAUTHENTICATED"]


def _nested(levels: int) -> str:
    """A query whose selection nests `levels` fields deep (the root field is level 1)."""
    chain = ["contacts(first: 1)", "edges", "node", "account"]
    inner = "__typename"
    for level in reversed(range(levels - 1)):
        inner = f"{chain[level % 4]} {{ {inner} }}"
    return "{ " + inner + " }"


async def test_query_depth_over_ten_is_refused(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    # Depth counts the levels below the root field: 11 nested fields are depth 10.
    allowed = await gql(client, tenant_a, _nested(11))
    assert "errors" not in allowed, allowed
    refused = await gql(client, tenant_a, _nested(12))
    assert refused.get("data") is None
    assert any("depth" in e["message"].lower() for e in refused["errors"]), refused


async def test_more_than_thirty_aliases_are_refused(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    def aliased(count: int) -> str:
        return "{ " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"

    allowed = await gql(client, tenant_a, aliased(30))
    assert len(data(allowed)) == 30
    refused = await gql(client, tenant_a, aliased(31))
    assert refused.get("data") is None
    assert any("alias" in e["message"].lower() for e in refused["errors"]), refused


@pytest.mark.parametrize(
    "document",
    [
        pytest.param("{ contacts(first: 1) { edegs { node { id } } } }", id="field"),
        pytest.param("{ contacts(first: 1) { edges { node { lastname } } } }", id="node-field"),
        pytest.param('{ contact(id: "x") { acount { id } } }', id="nested-field"),
        pytest.param(
            'mutation { createContact(input: {lastName: "X"}) { contat { id } } }',
            id="payload-field",
        ),
        pytest.param("{ contacts(frist: 1) { edges { cursor } } }", id="argument"),
        pytest.param(
            "{ contacts(first: 1, orderBy: {field: LASTNAME}) { edges { cursor } } }",
            id="enum-value",
        ),
        pytest.param(
            '{ contacts(first: 1, filter: {qq: "x"}) { edges { cursor } } }', id="input-field"
        ),
    ],
)
async def test_misspelled_field_gets_no_suggestion(
    client: httpx.AsyncClient, tenant_a: TenantUser, document: str
) -> None:
    result = await gql(client, tenant_a, document)
    assert result.get("data") is None
    assert result["errors"]
    assert "Did you mean" not in json.dumps(result)


# -- the schema file -----------------------------------------------------------------------------
def test_checked_in_sdl_matches_the_schema() -> None:
    from backend.api.gql.export import SDL_PATH, sdl

    assert SDL_PATH == REPO / "graphql" / "schema.graphql"
    assert SDL_PATH.read_text() == sdl(), (
        "graphql/schema.graphql is out of date: run `uv run python -m backend.api.gql.export`"
    )


def test_graphql_core_is_not_shadowed_by_the_repo_folder() -> None:
    import graphql

    assert graphql.__file__ is not None
    location = Path(graphql.__file__).resolve()
    assert "site-packages" in location.parts, location
    assert not location.is_relative_to(REPO / "graphql"), location
    assert not (REPO / "graphql" / "__init__.py").exists()
