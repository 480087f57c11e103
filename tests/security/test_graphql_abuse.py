"""GraphQL abuse: documents built to exhaust or map the server. Each must be refused cleanly:
no 5xx, no data, errors said, nothing executed. Every case is counted for the security report
(`graphql_abuse_cases`, and `graphql_abuse_accepted` when one got through).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from backend.api.gql.schema import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from tests.conftest import TenantUser
from tests.security.figures import count

Json = dict[str, Any]


def _nested(levels: int) -> str:
    """A selection `levels` fields deep (contacts -> edges -> node -> account -> ...)."""
    chain = ["contacts(first: 1)", "edges", "node", "account"]
    inner = "__typename"
    for level in reversed(range(levels - 1)):
        inner = f"{chain[level % 4]} {{ {inner} }}"
    return "{ " + inner + " }"


def _nested_through_fragments(levels: int) -> str:
    """The same depth as _nested, each level hidden in its own fragment."""
    chain = ["contacts(first: 1)", "edges", "node", "account"]
    on = ["Account", "ContactConnection", "ContactEdge", "Contact"]  # the type at each level
    fragments = [
        f"fragment F{i} on {'Query' if i == 0 else on[i % 4]} "
        f"{{ {chain[i % 4]} {{ ...F{i + 1} }} }}"
        for i in range(levels - 1)
    ]
    last = levels - 1
    fragments.append(f"fragment F{last} on {on[last % 4]} {{ __typename }}")
    return "{ ...F0 }\n" + "\n".join(fragments)


def _aliases(n: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"


def _aliases_in_fragments(n: int) -> str:
    """n aliases, spread over two fragments and the operation itself."""
    third = n // 3
    rest = n - 2 * third
    first = " ".join(f"f{i}: __typename" for i in range(third))
    second = " ".join(f"g{i}: __typename" for i in range(third))
    own = " ".join(f"o{i}: __typename" for i in range(rest))
    return (
        f"{{ {own} ...A ...B }}\n"
        f"fragment A on Query {{ {first} }}\n"
        f"fragment B on Query {{ {second} }}"
    )


def _alias_one_fragment_many_times(times: int) -> str:
    """One fragment with a few aliases, spread under many aliased parents."""
    parents = " ".join(f"p{i}: contacts(first: 1) {{ ...C }}" for i in range(times))
    return (
        f"{{ {parents} }}\n"
        "fragment C on ContactConnection { x1: __typename x2: __typename x3: __typename }"
    )


def _expensive_aliases(n: int) -> str:
    return (
        "{ "
        + " ".join(f"c{i}: contacts(first: 200) {{ edges {{ node {{ id }} }} }}" for i in range(n))
        + " }"
    )


def _directives(n: int, directive: str = "@include(if: true)") -> str:
    return "{ __typename " + " ".join([directive] * n) + " }"


def _unknown_directives(n: int) -> str:
    return "{ __typename " + " ".join(f"@d{i}" for i in range(n)) + " }"


def _many_anonymous_operations(n: int) -> str:
    return "\n".join("{ __typename }" for _ in range(n))


# Documents that must be refused, by name: (document, a word the error should carry or None).
DOCUMENTS: dict[str, tuple[str, str | None]] = {
    "depth over the limit": (_nested(MAX_DEPTH + 2), "depth"),
    "depth far over the limit": (_nested(60), "depth"),
    "depth through fragments": (_nested_through_fragments(MAX_DEPTH + 2), "depth"),
    "aliases over the limit": (_aliases(MAX_ALIASES + 1), "alias"),
    "aliases over the limit through fragments": (_aliases_in_fragments(MAX_ALIASES + 3), "alias"),
    "aliases multiplied by one fragment": (_alias_one_fragment_many_times(MAX_ALIASES), None),
    "aliased expensive lists": (_expensive_aliases(25), None),
    "circular fragments": (
        "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
        "fragment",
    ),
    "self-spreading fragment": ("{ ...A } fragment A on Query { __typename ...A }", "fragment"),
    "huge document (tokens)": (
        "{ " + " ".join(["__typename"] * (MAX_TOKENS + 10)) + " }",
        "token",
    ),
    "repeated directive": (_directives(100), None),
    "directive flood over the token limit": (_directives(MAX_TOKENS // 5), None),
    "unknown directive flood": (_unknown_directives(500), None),
    "many anonymous operations": (_many_anonymous_operations(200), "anonymous"),
}


def _refused(response: httpx.Response) -> tuple[bool, Json | None]:
    """A clean refusal: not a 5xx, and either a 4xx or a GraphQL answer with errors and no
    data. Returns (refused, the JSON body if there is one)."""
    if response.status_code >= 500:
        return False, None
    try:
        body = response.json()
    except ValueError:
        return 400 <= response.status_code < 500, None
    if not isinstance(body, dict):
        return False, None
    refused = bool(body.get("errors")) and body.get("data") is None
    return refused or 400 <= response.status_code < 500, body


def _tally(refused: bool) -> None:
    count("graphql_abuse_cases")
    count("graphql_abuse_accepted", 0 if refused else 1)


@pytest.mark.parametrize("case", list(DOCUMENTS))
async def test_abusive_documents_are_refused_cleanly(
    client: httpx.AsyncClient, tenant_a: TenantUser, case: str
) -> None:
    document, word = DOCUMENTS[case]
    response = await client.post("/graphql", json={"query": document}, headers=tenant_a.headers)
    refused, body = _refused(response)
    _tally(refused)
    assert response.status_code < 500, response.text
    assert refused, response.text[:500]
    assert "Did you mean" not in response.text
    if word is not None and body is not None:
        assert any(word in e["message"].lower() for e in body["errors"]), body


async def test_the_limits_are_the_edges_not_below_them(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    """Control: one step under each limit is answered, so each refusal above is the limit's."""
    for document in (_nested(MAX_DEPTH + 1), _aliases(MAX_ALIASES), _directives(1)):
        response = await client.post("/graphql", json={"query": document}, headers=tenant_a.headers)
        assert response.status_code == 200, response.text
        assert "errors" not in response.json(), response.text


async def test_a_huge_request_body_is_refused_before_parsing(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    padding = "#" + "x" * (4 * 1024 * 1024) + "\n"
    response = await client.post(
        "/graphql", json={"query": padding + "{ __typename }"}, headers=tenant_a.headers
    )
    refused, _ = _refused(response)
    _tally(refused)
    assert 400 <= response.status_code < 500, response.status_code


@pytest.mark.parametrize("size", [2, 50])
async def test_batched_array_bodies_are_refused_and_nothing_runs(
    client: httpx.AsyncClient, tenant_a: TenantUser, size: int
) -> None:
    name = f"Batch{uuid.uuid4().hex[:10]}"
    create = "mutation($n: String!) { createContact(input: {lastName: $n}) { contact { id } } }"
    batch = [{"query": create, "variables": {"n": name}} for _ in range(size)]
    response = await client.post("/graphql", json=batch, headers=tenant_a.headers)
    refused, _ = _refused(response)
    listed = await client.get("/api/v1/contacts", params={"q": name}, headers=tenant_a.headers)
    executed = listed.json()["items"]
    _tally(refused and not executed)
    assert response.status_code < 500, response.text
    assert refused, response.text[:500]
    assert executed == []


@pytest.mark.parametrize(
    "document",
    [
        "{ contacts(first: 1) { edegs { node { id } } } }",
        "{ contcts(first: 1) { edges { cursor } } }",
        '{ contact(id: "x") { lastname } }',
        "{ contacts(first: 1, orderBy: {field: LASTNAME}) { edges { cursor } } }",
        "{ __schema { typs { name } } }",
        '{ __type(name: "Contact") { feilds { name } } }',
        "mutation { deleteContct(input: {id: 1}) { deletedId } }",
    ],
)
async def test_errors_never_suggest_field_names(
    client: httpx.AsyncClient, tenant_a: TenantUser, document: str
) -> None:
    response = await client.post("/graphql", json={"query": document}, headers=tenant_a.headers)
    refused, _ = _refused(response)
    suggests = "did you mean" in response.text.lower()
    _tally(refused and not suggests)
    assert response.status_code < 500, response.text
    assert refused, response.text[:500]
    assert not suggests, response.text


@pytest.mark.parametrize(
    "document",
    [
        "{ __schema { types { name fields { name } } } }",
        '{ __type(name: "Contact") { name fields { name } } }',
    ],
)
async def test_introspection_without_a_token_is_unauthenticated(
    client: httpx.AsyncClient, document: str
) -> None:
    response = await client.post("/graphql", json={"query": document})
    refused, body = _refused(response)
    codes = [e.get("extensions", {}).get("code") for e in (body or {}).get("errors", [])]
    _tally(refused)
    assert response.status_code < 500, response.text
    assert refused, json.dumps(body)[:300]
    assert codes == ["UNAUTHENTICATED"], body
