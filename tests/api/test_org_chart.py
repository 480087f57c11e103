"""The organisation chart: a contact reports to a contact, an account belongs to a parent
account; links stay within what the caller may read, loops are refused (422 `cycle`) on every
path (REST, GraphQL), and both directions are navigable in GraphQL."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from backend.runtime import Services
from tests.api.sales_helpers import fetch, history, make, patch
from tests.conftest import gql, new_tenant, new_user

TREES = [("contacts", "reports_to_id", "last_name"), ("accounts", "parent_account_id", "name")]


@pytest.mark.parametrize(("plural", "column", "name"), TREES)
async def test_a_loop_is_refused_at_any_length(
    services: Services, client: httpx.AsyncClient, plural: str, column: str, name: str
) -> None:
    admin = await new_tenant(services, client, "cycle")
    top = await make(client, admin, plural, **{name: "Top"})
    middle = await make(client, admin, plural, **{name: "Middle", column: top["id"]})
    low = await make(client, admin, plural, **{name: "Low", column: middle["id"]})
    for record, target in ((top, low), (top, middle), (middle, low)):
        current = await fetch(client, admin, plural, record["id"])
        refused = await patch(client, admin, plural, current, **{column: target["id"]})
        assert refused.status_code == 422, refused.text
        assert (refused.json()["field"], refused.json()["code"]) == (column, "cycle")
        # Rolled back with its history.
        assert await fetch(client, admin, plural, record["id"]) == current
    self_loop = await patch(client, admin, plural, top, **{column: top["id"]})
    assert (self_loop.status_code, self_loop.json()["code"]) == (422, "cycle")
    assert [h["event"] for h in await history(client, admin, plural, top["id"])] == ["create"]
    # Not a loop: moving a branch elsewhere, or to the top.
    sibling = await make(client, admin, plural, **{name: "Sibling", column: top["id"]})
    moved = await patch(client, admin, plural, low, **{column: sibling["id"]})
    assert moved.status_code == 200, moved.text
    cleared = await patch(client, admin, plural, moved.json(), **{column: None})
    assert cleared.status_code == 200 and cleared.json()[column] is None


@pytest.mark.parametrize(("plural", "column", "name"), TREES)
async def test_a_link_names_only_a_record_the_caller_may_read(
    services: Services, client: httpx.AsyncClient, plural: str, column: str, name: str
) -> None:
    admin = await new_tenant(services, client, "tree-scope")
    other = await new_tenant(services, client, "tree-other")
    rep = await new_user(services, client, admin, "rep")
    colleague = await new_user(services, client, admin, "colleague")
    foreign = await make(client, other, plural, **{name: "Foreign"})
    theirs = await make(client, colleague, plural, **{name: "Theirs"})
    for target in (foreign["id"], theirs["id"], "00000000-0000-0000-0000-000000000000"):
        made = await client.post(
            f"/api/v1/{plural}", json={name: "Mine", column: target}, headers=rep.headers
        )
        assert made.status_code == 422, made.text
        assert (made.json()["field"], made.json()["code"]) == (column, "unknown_reference")


async def test_deleting_a_manager_clears_only_the_link(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "tree-delete")
    boss = await make(client, admin, "contacts", last_name="Boss")
    report = await make(client, admin, "contacts", last_name="Report", reports_to_id=boss["id"])
    gone = await client.delete(f"/api/v1/contacts/{boss['id']}", headers=admin.headers)
    assert gone.status_code == 204
    assert (await fetch(client, admin, "contacts", report["id"]))["reports_to_id"] is None


CHART = """
query($id: ID!) {
  contact(id: $id) {
    lastName
    reportsTo { lastName reportsTo { lastName } }
    directReports { edges { node { lastName } } }
    account { name parentAccount { name } childAccounts { edges { node { name } } } }
  }
}"""


async def test_graphql_walks_the_chart_both_ways(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "tree-gql")
    group = await make(client, admin, "accounts", name="Group")
    firm = await make(client, admin, "accounts", name="Firm", parent_account_id=group["id"])
    await make(client, admin, "accounts", name="Branch", parent_account_id=firm["id"])
    ceo = await make(client, admin, "contacts", last_name="Ceo")
    cto = await make(client, admin, "contacts", last_name="Cto", reports_to_id=ceo["id"])
    lead = await make(
        client, admin, "contacts", last_name="Lead", reports_to_id=cto["id"], account_id=firm["id"]
    )
    await make(client, admin, "contacts", last_name="Dev", reports_to_id=lead["id"])
    body = await gql(client, admin, CHART, {"id": lead["id"]})
    assert "errors" not in body, body
    chart = body["data"]["contact"]
    assert chart["reportsTo"] == {"lastName": "Cto", "reportsTo": {"lastName": "Ceo"}}
    assert [e["node"]["lastName"] for e in chart["directReports"]["edges"]] == ["Dev"]
    assert chart["account"]["parentAccount"] == {"name": "Group"}
    assert [e["node"]["name"] for e in chart["account"]["childAccounts"]["edges"]] == ["Branch"]
    loop = await gql(
        client,
        admin,
        "mutation($id: ID!, $to: ID!) { updateContact(input: {id: $id, version: 1,"
        " reportsToId: $to}) { contact { id } errors { field code } } }",
        {"id": ceo["id"], "to": lead["id"]},
    )
    assert loop["data"]["updateContact"]["errors"] == [{"field": "reportsToId", "code": "cycle"}]
    assert (await fetch(client, admin, "contacts", ceo["id"]))["reports_to_id"] is None


async def test_two_writes_closing_a_loop_together_cannot_both_pass(
    services: Services, client: httpx.AsyncClient
) -> None:
    """A -> B and B -> A sent at once: exactly one is refused, as a loop (the per-tenant tree
    lock makes the second check see the first link) or as a write conflict to retry (PostgreSQL
    broke a deadlock between the two), never a server error, and no loop is stored."""
    admin = await new_tenant(services, client, "tree-race")
    for _ in range(3):
        a = await make(client, admin, "contacts", last_name="A")
        b = await make(client, admin, "contacts", last_name="B")
        answers = await asyncio.gather(
            patch(client, admin, "contacts", a, reports_to_id=b["id"]),
            patch(client, admin, "contacts", b, reports_to_id=a["id"]),
        )
        statuses = sorted(r.status_code for r in answers)
        assert statuses in ([200, 409], [200, 422]), [r.text for r in answers]
        refused = next(r for r in answers if r.status_code != 200)
        assert refused.json()["code"] in ("cycle", "write_conflict")
        links = [(await fetch(client, admin, "contacts", x["id"]))["reports_to_id"] for x in (a, b)]
        assert links.count(None) == 1, links


async def test_two_distant_writes_closing_one_loop_cannot_both_pass(
    services: Services, client: httpx.AsyncClient
) -> None:
    """B -> C and D -> A stand; A -> B and C -> D at once share no row, so only the tree lock
    keeps them from both passing and closing A -> B -> C -> D -> A."""
    admin = await new_tenant(services, client, "tree-race4")
    for _ in range(3):
        a = await make(client, admin, "contacts", last_name="A")
        c = await make(client, admin, "contacts", last_name="C")
        b = await make(client, admin, "contacts", last_name="B", reports_to_id=c["id"])
        d = await make(client, admin, "contacts", last_name="D")
        a = (await patch(client, admin, "contacts", a, reports_to_id=None)).json()
        d_to_a = await patch(client, admin, "contacts", d, reports_to_id=a["id"])
        assert d_to_a.status_code == 200, d_to_a.text
        answers = await asyncio.gather(
            patch(client, admin, "contacts", a, reports_to_id=b["id"]),
            patch(client, admin, "contacts", c, reports_to_id=d_to_a.json()["id"]),
        )
        assert sorted(r.status_code for r in answers) == [200, 422], [r.text for r in answers]
        assert next(r for r in answers if r.status_code == 422).json()["code"] == "cycle"
