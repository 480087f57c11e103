"""A record's version only ever grows, across delete and undelete, and only a real change moves
it: through REST (If-Match / If-None-Match) and GraphQL (the `version` input), side by side."""

from __future__ import annotations

from typing import Any

import httpx

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant
from tests.security.policy_helpers import assert_problem, create_record
from tests.sync.helpers import pull, pull_all


async def _history(client: httpx.AsyncClient, user: TenantUser, id_: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/contacts/{id_}/history", headers=user.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _patch(
    client: httpx.AsyncClient, user: TenantUser, id_: str, version: int, body: dict[str, Any]
) -> httpx.Response:
    return await client.patch(
        f"/api/v1/contacts/{id_}", json=body, headers={**user.headers, "If-Match": f'"{version}"'}
    )


async def _delete_and_undelete(
    client: httpx.AsyncClient, admin: TenantUser, id_: str
) -> dict[str, Any]:
    """Delete the contact, then undelete it through its delete's history entry (REST)."""
    gone = await client.delete(f"/api/v1/contacts/{id_}", headers=admin.headers)
    assert gone.status_code == 204
    deletion = (await _history(client, admin, id_))[0]
    assert deletion["event"] == "delete"
    back = await client.post(
        f"/api/v1/contacts/{id_}/history/{deletion['id']}/revert", headers=admin.headers
    )
    assert back.status_code == 200, back.text
    body: dict[str, Any] = back.json()
    assert back.headers["ETag"] == f'"{body["version"]}"'
    return body


async def test_undelete_over_rest_never_reuses_a_version(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "ver-rest")
    made = await create_record(client, admin, "contacts", {"last_name": "V", "title": "One"})
    updated = await _patch(client, admin, made["id"], 1, {"title": "Two"})
    assert updated.json()["version"] == 2
    restored = await _delete_and_undelete(client, admin, made["id"])
    assert restored["version"] == 3
    assert restored["title"] == "Two"

    # An If-Match from before the update (or from before the delete) is stale: 412, nothing
    # written (it was a lost update when the version restarted at 1).
    for stale in (1, 2):
        refused = await _patch(client, admin, made["id"], stale, {"title": f"Stale {stale}"})
        assert_problem(refused, 412, "version_mismatch", "version")
    stale_delete = await client.delete(
        f"/api/v1/contacts/{made['id']}", headers={**admin.headers, "If-Match": '"1"'}
    )
    assert_problem(stale_delete, 412, "version_mismatch")
    # An ETag from before is not the record now: 200 with the body, never 304.
    for old in ('"1"', '"2"'):
        fresh = await client.get(
            f"/api/v1/contacts/{made['id']}", headers={**admin.headers, "If-None-Match": old}
        )
        assert fresh.status_code == 200, fresh.text
        assert (fresh.json()["title"], fresh.json()["version"]) == ("Two", 3)
        assert fresh.headers["ETag"] == '"3"'
    same = await client.get(
        f"/api/v1/contacts/{made['id']}", headers={**admin.headers, "If-None-Match": '"3"'}
    )
    assert same.status_code == 304

    # Again: delete at 4 (after one more update), undelete -> 5; every version seen is new.
    assert (await _patch(client, admin, made["id"], 3, {"title": "Four"})).json()["version"] == 4
    again = await _delete_and_undelete(client, admin, made["id"])
    assert (again["version"], again["title"]) == (5, "Four")
    assert_problem(await _patch(client, admin, made["id"], 4, {"title": "x"}), 412)
    assert (await _patch(client, admin, made["id"], 5, {"title": "Six"})).json()["version"] == 6


async def test_whole_record_revert_of_a_deleted_record_continues_the_version(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "ver-whole")
    made = await create_record(client, admin, "contacts", {"last_name": "W", "title": "A"})
    await _patch(client, admin, made["id"], 1, {"title": "B"})
    await _patch(client, admin, made["id"], 2, {"title": "C"})
    assert (await client.delete(f"/api/v1/contacts/{made['id']}", headers=admin.headers)).is_success
    history = await _history(client, admin, made["id"])
    # Back to just before the first update (title A): a restore of an older state, version 4.
    first_update = next(h for h in reversed(history) if h["event"] == "update")
    back = await client.post(
        f"/api/v1/contacts/{made['id']}/revert",
        json={"before_change_id": first_update["id"]},
        headers=admin.headers,
    )
    assert back.status_code == 200, back.text
    assert (back.json()["title"], back.json()["version"]) == ("A", 4)
    for stale in (1, 2, 3):
        assert_problem(await _patch(client, admin, made["id"], stale, {"title": "x"}), 412)


async def test_undelete_over_graphql_never_reuses_a_version(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "ver-gql")
    made = await create_record(client, admin, "contacts", {"last_name": "G", "title": "One"})
    update = (
        "mutation($i: UpdateContactInput!) { updateContact(input: $i) {"
        " contact { title version } errors { field code } } }"
    )
    two = await gql(client, admin, update, {"i": {"id": made["id"], "version": 1, "title": "Two"}})
    assert two["data"]["updateContact"]["contact"] == {"title": "Two", "version": 2}
    gone = await gql(
        client,
        admin,
        "mutation($i: DeleteInput!) { deleteContact(input: $i) { deletedId errors { code } } }",
        {"i": {"id": made["id"], "version": 2}},
    )
    assert gone["data"]["deleteContact"] == {"deletedId": made["id"], "errors": []}
    deletion = (await _history(client, admin, made["id"]))[0]
    back = await gql(
        client,
        admin,
        "mutation($i: RevertChangeInput!) { revertContactChange(input: $i) {"
        " contact { title version } errors { code } } }",
        {"i": {"recordId": made["id"], "changeId": deletion["id"]}},
    )
    assert back["data"]["revertContactChange"] == {
        "contact": {"title": "Two", "version": 3},
        "errors": [],
    }
    for stale in (1, 2):
        refused = await gql(
            client, admin, update, {"i": {"id": made["id"], "version": stale, "title": "Lost"}}
        )
        assert refused["data"]["updateContact"] == {
            "contact": None,
            "errors": [{"field": "version", "code": "version_mismatch"}],
        }
    now = await gql(client, admin, f'{{ contact(id: "{made["id"]}") {{ title version }} }}')
    assert now["data"]["contact"] == {"title": "Two", "version": 3}

    # The whole-record revert mutation, on a deleted record, continues the version as well.
    await gql(
        client,
        admin,
        "mutation($i: DeleteInput!) { deleteContact(input: $i) { deletedId } }",
        {"i": {"id": made["id"], "version": 3}},
    )
    first_update = next(
        h for h in reversed(await _history(client, admin, made["id"])) if h["event"] == "update"
    )
    whole = await gql(
        client,
        admin,
        "mutation($i: RevertRecordInput!) { revertContact(input: $i) {"
        " contact { title version } errors { code } } }",
        {"i": {"recordId": made["id"], "beforeChangeId": first_update["id"]}},
    )
    assert whole["data"]["revertContact"] == {
        "contact": {"title": "One", "version": 4},
        "errors": [],
    }


async def test_an_update_that_changes_nothing_moves_nothing(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "ver-noop")
    made = await create_record(
        client,
        admin,
        "contacts",
        {"last_name": "Same", "email": "same@example.com", "tags": ["a", "b"]},
    )
    _, cursor = await pull_all(client, admin)
    history_before = await _history(client, admin, made["id"])
    # REST: the same values (one given in another spelling that means the same), and no values.
    for body in (
        {"last_name": "Same", "email": "same@example.com"},
        {"tags": ["a", "b", "a"]},
        {},
    ):
        response = await _patch(client, admin, made["id"], 1, body)
        assert response.status_code == 200, response.text
        assert (response.json()["version"], response.headers["ETag"]) == (1, '"1"')
        assert response.json()["updated_at"] == made["updated_at"]
    # GraphQL: the same value, and only the id and version.
    update = (
        "mutation($i: UpdateContactInput!) { updateContact(input: $i) {"
        " contact { version } errors { code } } }"
    )
    for fields in ({"lastName": "Same"}, {}):
        same = await gql(client, admin, update, {"i": {"id": made["id"], "version": 1, **fields}})
        assert same["data"]["updateContact"] == {"contact": {"version": 1}, "errors": []}
    # A stale version is still a conflict, change or not.
    assert_problem(await _patch(client, admin, made["id"], 0, {}), 412, "version_mismatch")

    assert await _history(client, admin, made["id"]) == history_before
    page = await pull(client, admin, cursor)
    assert page["changes"] == []
    # A real change after all that is version 2, and the only change a phone pulls.
    changed = await _patch(client, admin, made["id"], 1, {"last_name": "Other", "tags": ["a"]})
    assert changed.json()["version"] == 2
    later = await pull(client, admin, page["cursor"])
    assert [(c["id"], c["version"]) for c in later["changes"]] == [(made["id"], 2)]
    written = [h["field"] for h in (await _history(client, admin, made["id"]))[:2]]
    assert sorted(written) == ["last_name", "tags"]
