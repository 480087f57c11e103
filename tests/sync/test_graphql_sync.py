"""The same sync through GraphQL: `sync` pages with masking and tombstones, `pushChanges`
with per-field results on channel sync, replays answered from stored outcomes, and a bad
cursor reported with its code."""

from __future__ import annotations

from typing import Any

import httpx

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant
from tests.security.policy_helpers import create_record, user_with_roles
from tests.sync.helpers import patch

SYNC = """query($cursor: String, $entities: [String!], $first: Int) {
  sync(cursor: $cursor, entities: $entities, first: $first, deviceId: "gql-phone") {
    changes { entity id op version record }
    cursor
    hasMore
  }
}"""

PUSH = """mutation($input: PushChangesInput!) {
  pushChanges(input: $input) {
    deviceId
    results {
      clientId id status version reason code field
      conflicts { field clientValue serverValue resolved }
    }
  }
}"""


async def _sync_all(
    client: httpx.AsyncClient, user: TenantUser, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str]:
    changes: list[dict[str, Any]] = []
    while True:
        body = await gql(client, user, SYNC, {"cursor": cursor, "first": 2})
        assert "errors" not in body, body
        page = body["data"]["sync"]
        changes.extend(page["changes"])
        cursor = page["cursor"]
        if not page["hasMore"]:
            assert cursor is not None
            return changes, cursor


async def test_sync_over_graphql(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "gsync")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    deal = await create_record(
        client,
        rep,
        "opportunities",
        {"name": "Deal", "stage": "proposal", "close_date": "2026-12-31"},
    )
    contact = await create_record(client, rep, "contacts", {"last_name": "Mine"})
    changes, cursor = await _sync_all(client, rep)
    assert {(c["entity"], c["id"], c["op"]) for c in changes} == {
        ("opportunities", deal["id"], "UPSERT"),
        ("contacts", contact["id"], "UPSERT"),
    }
    (synced_deal,) = [c for c in changes if c["id"] == deal["id"]]
    assert (
        "cost" not in synced_deal["record"] and "cost" in synced_deal["record"]["withheld_fields"]
    )
    assert synced_deal["record"]["close_date"] == "2026-12-31"

    await patch(client, admin, "contacts", contact, owner_id=str(admin.user_id))
    changes, _ = await _sync_all(client, rep, cursor)
    assert changes == [
        {"entity": "contacts", "id": contact["id"], "op": "DELETE", "version": None, "record": None}
    ]
    bad = await gql(client, rep, SYNC, {"cursor": "s1.garbage"})
    assert bad["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "reason": "invalid_cursor",
        "field": "cursor",
    }
    devices = await gql(client, rep, "{ syncDevices { deviceId cursor lastPullAt } }")
    (device,) = devices["data"]["syncDevices"]
    assert device["deviceId"] == "gql-phone" and device["cursor"] is not None


async def test_push_changes_over_graphql(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "gpush")
    base = await create_record(client, admin, "contacts", {"last_name": "Base"})
    await patch(client, admin, "contacts", base, title="Server")
    changes = [
        {
            "clientId": "u",
            "entity": "contacts",
            "op": "UPDATE",
            "id": base["id"],
            "baseVersion": 1,
            "fields": {"title": "Phone", "notes": "from the phone"},
        },
        {"clientId": "c", "entity": "contacts", "op": "CREATE", "fields": {"first_name": "x"}},
    ]
    variables = {"input": {"deviceId": "g1", "resolution": "CLIENT_WINS", "changes": changes}}
    body = await gql(client, admin, PUSH, variables)
    assert "errors" not in body, body
    results = {r["clientId"]: r for r in body["data"]["pushChanges"]["results"]}
    assert results["u"]["status"] == "MERGED"
    assert results["u"]["conflicts"] == [
        {"field": "title", "clientValue": "Phone", "serverValue": "Server", "resolved": "client"}
    ]
    assert (results["c"]["status"], results["c"]["code"], results["c"]["field"]) == (
        "REFUSED",
        "required",
        "last_name",
    )
    now = (await client.get(f"/api/v1/contacts/{base['id']}", headers=admin.headers)).json()
    assert (now["title"], now["notes"]) == ("Phone", "from the phone")
    history = await client.get(f"/api/v1/contacts/{base['id']}/history", headers=admin.headers)
    assert {h["field"] for h in history.json()["items"] if h["channel"] == "sync"} == {
        "title",
        "notes",
    }
    again = await gql(client, admin, PUSH, variables)
    assert again["data"] == body["data"]
    after = (await client.get(f"/api/v1/contacts/{base['id']}", headers=admin.headers)).json()
    assert after["version"] == now["version"]


async def test_sync_needs_a_token(client: httpx.AsyncClient) -> None:
    body = await gql(client, None, SYNC, {})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["data"] is None


async def test_push_changes_must_be_alone_in_its_document(
    services: Services, client: httpx.AsyncClient
) -> None:
    """Pushed changes commit one by one, so they cannot join a document whose mutations are
    all-or-nothing: such a document is refused, and nothing is written."""
    admin = await new_tenant(services, client, "gpush-alone")
    document = """mutation($input: PushChangesInput!) {
      pushChanges(input: $input) { results { status } }
      createContact(input: {lastName: "Beside"}) { contact { id } }
    }"""
    change = {"clientId": "a", "entity": "contacts", "op": "CREATE", "fields": {"last_name": "P"}}
    body = await gql(client, admin, document, {"input": {"deviceId": "g", "changes": [change]}})
    assert body["errors"][0]["extensions"]["reason"] == "push_not_alone"
    listed = await client.get("/api/v1/contacts", headers=admin.headers)
    assert listed.json()["items"] == []
