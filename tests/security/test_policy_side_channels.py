"""No side channel to a hidden field: filters, sorts and searches on it are refused or blind to
it, and GraphQL gives it as null however it is asked for (aliases, fragments, relations)."""

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

READ_ALL = ("allow", "*", "read")
TENANT = {"*": "tenant"}


@dataclass
class Setup:
    admin: TenantUser
    no_email: TenantUser  # may not read contact.email
    no_owner: TenantUser  # may not read contact.owner_id nor contact.last_name
    blind: TenantUser  # may not read any field a contact search covers
    secret: str  # a term that occurs only in the hidden email
    email: str
    last_name: str
    account_id: str
    contact_id: str


@pytest.fixture(scope="module")
async def setup(services: Services, client: httpx.AsyncClient) -> Setup:
    admin = await new_tenant(services, client, "sidechannel")
    await create_role(
        client,
        admin,
        "no_email",
        [
            READ_ALL,
            ("deny", "contact.email", "read"),
            ("allow", "contact", "create"),
            ("allow", "contact.*", "create"),
        ],
        TENANT,
    )
    await create_role(
        client,
        admin,
        "no_owner",
        [READ_ALL, ("deny", "contact.owner_id", "read"), ("deny", "contact.last_name", "read")],
        TENANT,
    )
    await create_role(
        client,
        admin,
        "blind_search",
        [
            READ_ALL,
            ("deny", "contact.first_name", "read"),
            ("deny", "contact.last_name", "read"),
            ("deny", "contact.email", "read"),
        ],
        TENANT,
    )
    no_email = await user_with_roles(services, client, admin, "noemail", ["no_email"])
    no_owner = await user_with_roles(services, client, admin, "noowner", ["no_owner"])
    blind = await user_with_roles(services, client, admin, "blind", ["blind_search"])
    secret = f"zq{uuid.uuid4().hex[:10]}"
    email, last_name = f"{secret}@hidden.example", f"Visible{uuid.uuid4().hex[:6]}"
    account = await create_record(client, admin, "accounts", {"name": "Side Channel Ltd"})
    contact = await create_record(
        client,
        admin,
        "contacts",
        {"first_name": "Ann", "last_name": last_name, "email": email, "account_id": account["id"]},
    )
    return Setup(
        admin, no_email, no_owner, blind, secret, email, last_name, account["id"], contact["id"]
    )


async def list_contacts(
    client: httpx.AsyncClient, user: TenantUser, **params: str
) -> httpx.Response:
    return await client.get("/api/v1/contacts", headers=user.headers, params=params)


# -- REST: filter, sort, search ----------------------------------------------------------------
async def test_filtering_on_a_hidden_field_is_refused(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    refused = await list_contacts(client, setup.no_owner, owner_id=str(setup.admin.user_id))
    assert_problem(refused, 403, "field_forbidden", "owner_id")
    # Even a filter that matches nothing: the answer must not depend on the hidden value.
    refused = await list_contacts(client, setup.no_owner, owner_id=str(uuid.uuid4()))
    assert_problem(refused, 403, "field_forbidden", "owner_id")
    allowed = await list_contacts(client, setup.no_email, owner_id=str(setup.admin.user_id))
    assert allowed.status_code == 200, allowed.text
    assert setup.contact_id in {r["id"] for r in allowed.json()["items"]}


@pytest.mark.parametrize("sort", ["last_name", "-last_name"])
async def test_sorting_on_a_hidden_field_is_refused(
    client: httpx.AsyncClient, setup: Setup, sort: str
) -> None:
    assert_problem(
        await list_contacts(client, setup.no_owner, sort=sort), 403, "field_forbidden", "last_name"
    )
    allowed = await list_contacts(client, setup.no_email, sort=sort)
    assert allowed.status_code == 200, allowed.text


async def test_search_does_not_look_into_a_hidden_field(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    admin = await list_contacts(client, setup.admin, q=setup.secret)
    assert [r["id"] for r in admin.json()["items"]] == [setup.contact_id]
    hidden = await list_contacts(client, setup.no_email, q=setup.secret)
    assert hidden.status_code == 200, hidden.text
    assert hidden.json()["items"] == []
    # The fields the caller can read are still searched.
    visible = await list_contacts(client, setup.no_email, q=setup.last_name)
    assert [r["id"] for r in visible.json()["items"]] == [setup.contact_id]


async def test_search_with_every_searchable_field_hidden_is_refused(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    for term in (setup.secret, setup.last_name, "no such text"):
        refused = await list_contacts(client, setup.blind, q=term)
        assert_problem(refused, 403, "field_forbidden", "q")
    listed = await list_contacts(client, setup.blind)
    assert listed.status_code == 200, listed.text


# -- REST: masked records ------------------------------------------------------------------
async def test_rest_records_omit_hidden_fields_and_name_them(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    for user, hidden in [
        (setup.no_email, ["email"]),
        (setup.no_owner, ["last_name", "owner_id"]),
        (setup.blind, ["email", "first_name", "last_name"]),
    ]:
        got = await client.get(f"/api/v1/contacts/{setup.contact_id}", headers=user.headers)
        assert got.status_code == 200, got.text
        listed = await list_contacts(client, user)
        (from_list,) = [r for r in listed.json()["items"] if r["id"] == setup.contact_id]
        for record in (got.json(), from_list):
            assert record["withheld_fields"] == hidden
            assert not set(hidden) & set(record)
            assert record.get("first_name") == (None if "first_name" in hidden else "Ann")
    admin = await client.get(f"/api/v1/contacts/{setup.contact_id}", headers=setup.admin.headers)
    assert admin.json()["email"] == setup.email
    assert admin.json()["withheld_fields"] == []


async def test_a_record_written_by_the_caller_is_masked_too(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    made = await create_record(
        client,
        setup.no_email,
        "contacts",
        {"last_name": "Written blind", "email": "blind@writer.example"},
    )
    assert "email" not in made
    assert made["withheld_fields"] == ["email"]
    admin = await client.get(f"/api/v1/contacts/{made['id']}", headers=setup.admin.headers)
    assert admin.json()["email"] == "blind@writer.example"


# -- GraphQL ---------------------------------------------------------------------------------
GQL_SHAPES = {
    "direct": "query Q($id: ID!) { contact(id: $id) { id email withheldFields } }",
    "alias": "query Q($id: ID!) { c: contact(id: $id) { id mail: email w: withheldFields } }",
    "fragment": """
        query Q($id: ID!) { contact(id: $id) { ...Bits } }
        fragment Bits on Contact { id email withheldFields }
    """,
    "inline_fragment": """
        query Q($id: ID!) { contact(id: $id) { id ... on Contact { email withheldFields } } }
    """,
    "nested_fragment": """
        query Q($id: ID!) { contact(id: $id) { ...Outer } }
        fragment Outer on Contact { id ...Inner }
        fragment Inner on Contact { x: email withheldFields }
    """,
}


def _node(data: dict[str, Any]) -> dict[str, Any]:
    (node,) = data.values()
    assert isinstance(node, dict)
    return node


def _email_and_withheld(node: dict[str, Any]) -> tuple[Any, list[str]]:
    email = node.get("email", node.get("mail", node.get("x")))
    withheld: list[str] = node["withheldFields"] if "withheldFields" in node else node["w"]
    return email, withheld


@pytest.mark.parametrize("shape", list(GQL_SHAPES))
async def test_graphql_gives_a_hidden_field_as_null_however_asked(
    client: httpx.AsyncClient, setup: Setup, shape: str
) -> None:
    query = GQL_SHAPES[shape]
    hidden = _node(gql_data(await gql(client, setup.no_email, query, {"id": setup.contact_id})))
    assert hidden["id"] == setup.contact_id
    assert _email_and_withheld(hidden) == (None, ["email"])
    admin = _node(gql_data(await gql(client, setup.admin, query, {"id": setup.contact_id})))
    assert _email_and_withheld(admin) == (setup.email, [])


NESTED = {
    "contact_account_contacts": """
        query Q($id: ID!) { contact(id: $id) { account { contacts { edges { node {
            id email withheldFields } } } } } }
    """,
    "account_contacts": """
        query Q($id: ID!) { account(id: $id) { contacts { edges { node {
            id email withheldFields } } } } }
    """,
    "list": """
        query Q { contacts(first: 200) { edges { node { id email withheldFields } } } }
    """,
}


def _contact_nodes(data: Any) -> list[dict[str, Any]]:
    """Every dict with an `email` key anywhere in a GraphQL result."""
    found: list[dict[str, Any]] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.extend([item] if "email" in item else [])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


@pytest.mark.parametrize("shape", list(NESTED))
async def test_graphql_hides_a_field_reached_through_a_relation(
    client: httpx.AsyncClient, setup: Setup, shape: str
) -> None:
    variables = {
        "contact_account_contacts": {"id": setup.contact_id},
        "account_contacts": {"id": setup.account_id},
        "list": {},
    }[shape]
    hidden = _contact_nodes(gql_data(await gql(client, setup.no_email, NESTED[shape], variables)))
    assert setup.contact_id in {n["id"] for n in hidden}
    assert [(n["email"], n["withheldFields"]) for n in hidden] == [(None, ["email"])] * len(hidden)
    admin = _contact_nodes(gql_data(await gql(client, setup.admin, NESTED[shape], variables)))
    assert {n["id"]: n["email"] for n in admin}[setup.contact_id] == setup.email


async def test_graphql_masks_other_hidden_fields_alike(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    query = """query Q($id: ID!) { contact(id: $id) {
        firstName lastName ownerId o: ownerId withheldFields } }"""
    result = gql_data(await gql(client, setup.no_owner, query, {"id": setup.contact_id}))
    assert result["contact"] == {
        "firstName": "Ann",
        "lastName": None,
        "ownerId": None,
        "o": None,
        "withheldFields": ["lastName", "ownerId"],
    }


CONTACTS_QUERY = """
query Q($filter: ContactFilter, $orderBy: ContactOrder) {
  contacts(first: 50, filter: $filter, orderBy: $orderBy) { edges { node { id } } }
}
"""


def _ids(result: dict[str, Any]) -> list[str]:
    return [e["node"]["id"] for e in gql_data(result)["contacts"]["edges"]]


async def test_graphql_filter_on_a_hidden_owner_id_is_refused(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    for owner in (str(setup.admin.user_id), str(uuid.uuid4())):
        result = await gql(client, setup.no_owner, CONTACTS_QUERY, {"filter": {"ownerId": owner}})
        assert gql_codes(result) == ["FORBIDDEN"]
        assert result["errors"][0]["extensions"]["field"] == "ownerId"
        assert result["data"] is None
    allowed = await gql(
        client, setup.no_email, CONTACTS_QUERY, {"filter": {"ownerId": str(setup.admin.user_id)}}
    )
    assert setup.contact_id in _ids(allowed)


async def test_graphql_sort_and_search_on_hidden_fields(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    sort = await gql(client, setup.no_owner, CONTACTS_QUERY, {"orderBy": {"field": "LAST_NAME"}})
    assert gql_codes(sort) == ["FORBIDDEN"]
    assert sort["errors"][0]["extensions"]["field"] == "lastName"
    blind = await gql(client, setup.blind, CONTACTS_QUERY, {"filter": {"q": setup.last_name}})
    assert gql_codes(blind) == ["FORBIDDEN"]
    assert blind["errors"][0]["extensions"]["field"] == "filter.q"
    by_email = {"filter": {"q": setup.secret}}
    assert _ids(await gql(client, setup.no_email, CONTACTS_QUERY, by_email)) == []
    assert _ids(await gql(client, setup.admin, CONTACTS_QUERY, by_email)) == [setup.contact_id]
