"""Offline push: per-field merge results under each resolution rule, history on channel
"sync", a refused change that does not stop the others, and a replayed batch that changes
nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, new_tenant
from tests.security.policy_helpers import assert_problem, create_record, user_with_roles
from tests.sync.helpers import patch, push


async def _get(client: httpx.AsyncClient, user: TenantUser, plural: str, id_: str) -> Any:
    response = await client.get(f"/api/v1/{plural}/{id_}", headers=user.headers)
    return response.json() if response.status_code == 200 else response.status_code


async def _history(client: httpx.AsyncClient, admin: TenantUser, id_: str) -> list[Any]:
    response = await client.get(f"/api/v1/contacts/{id_}/history", headers=admin.headers)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


@pytest.mark.parametrize(
    ("resolution", "status", "title", "resolved"),
    [
        ("server_wins", "merged", "Server title", "server"),
        ("client_wins", "merged", "Phone title", "client"),
        ("reject", "conflict", "Server title", "none"),
    ],
)
async def test_per_field_merge_under_each_rule(
    services: Services,
    client: httpx.AsyncClient,
    resolution: str,
    status: str,
    title: str,
    resolved: str,
) -> None:
    admin = await new_tenant(services, client, f"push-{resolution[:3]}")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    base = await create_record(client, rep, "contacts", {"last_name": "Base", "title": "Old"})
    # While the phone is offline the server changes the title and the email.
    server = await patch(
        client, rep, "contacts", base, title="Server title", email="server@example.com"
    )
    results = await push(
        client,
        rep,
        [
            {
                "client_id": "c1",
                "entity": "contacts",
                "op": "update",
                "id": base["id"],
                "base_version": base["version"],
                # title: both sides (a conflict); email: the same value on both (no conflict);
                # notes: the phone only (applies unless the rule rejects the change).
                "fields": {
                    "title": "Phone title",
                    "email": "server@example.com",
                    "notes": "met on the train",
                },
            }
        ],
        resolution=resolution,
    )
    result = results["c1"]
    assert result["status"] == status
    assert result["conflicts"] == [
        {
            "field": "title",
            "client_value": "Phone title",
            "server_value": "Server title",
            "resolved": resolved,
        }
    ]
    now = await _get(client, rep, "contacts", base["id"])
    assert now["title"] == title
    assert now["email"] == "server@example.com"
    if resolution == "reject":
        assert now["version"] == server["version"] == result["version"]
        assert now["notes"] is None
    else:
        assert now["notes"] == "met on the train"
        assert result["version"] == now["version"] == server["version"] + 1
        history = await _history(client, admin, base["id"])
        synced = {(h["field"], h["channel"]) for h in history if h["channel"] == "sync"}
        expected = {("notes", "sync")} | ({("title", "sync")} if resolved == "client" else set())
        assert synced == expected


async def test_an_edit_on_an_unchanged_record_applies(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "push-plain")
    base = await create_record(client, admin, "contacts", {"last_name": "Plain"})
    results = await push(
        client,
        admin,
        [
            {
                "client_id": "u1",
                "entity": "contacts",
                "op": "update",
                "id": base["id"],
                "base_version": 1,
                "fields": {"title": "Phone"},
            },
            {"client_id": "n1", "entity": "contacts", "op": "create", "fields": {"last_name": "N"}},
        ],
    )
    assert (results["u1"]["status"], results["u1"]["version"], results["u1"]["conflicts"]) == (
        "applied",
        2,
        [],
    )
    created = await _get(client, admin, "contacts", results["n1"]["id"])
    assert (created["last_name"], results["n1"]["status"]) == ("N", "applied")
    history = await _history(client, admin, results["n1"]["id"])
    assert [(h["event"], h["channel"]) for h in history] == [("create", "sync")]


async def test_a_refused_change_does_not_stop_the_others(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "push-refuse")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    mine = await create_record(client, rep, "contacts", {"last_name": "Mine"})
    theirs = await create_record(client, admin, "contacts", {"last_name": "Theirs"})
    results = await push(
        client,
        rep,
        [
            {"client_id": "ok1", "entity": "contacts", "op": "create", "fields": {"title": "x"}},
            {
                "client_id": "own",
                "entity": "contacts",
                "op": "update",
                "id": mine["id"],
                "base_version": 1,
                "fields": {"owner_id": str(admin.user_id)},
            },
            {
                "client_id": "scope",
                "entity": "contacts",
                "op": "update",
                "id": theirs["id"],
                "base_version": 1,
                "fields": {"title": "Not yours"},
            },
            {
                "client_id": "ok2",
                "entity": "contacts",
                "op": "create",
                "fields": {"last_name": "Y"},
            },
            {"client_id": "what", "entity": "secrets", "op": "create", "fields": {}},
            {"client_id": "nover", "entity": "contacts", "op": "delete", "id": mine["id"]},
        ],
    )
    assert {k: (r["status"], r["code"], r["field"]) for k, r in results.items()} == {
        "ok1": ("refused", "required", "last_name"),
        "own": ("refused", "field_forbidden", "owner_id"),
        "scope": ("refused", "not_found", None),
        "ok2": ("applied", None, None),
        "what": ("refused", "unknown_entity", "entity"),
        "nover": ("refused", "required", "base_version"),
    }
    assert (await _get(client, rep, "contacts", results["ok2"]["id"]))["last_name"] == "Y"
    assert (await _get(client, rep, "contacts", mine["id"]))["version"] == 1
    assert (await _get(client, admin, "contacts", theirs["id"]))["title"] is None


async def test_a_replayed_batch_returns_the_same_results_and_changes_nothing(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "push-replay")
    base = await create_record(client, admin, "contacts", {"last_name": "R"})
    batch = [
        {"client_id": "a", "entity": "contacts", "op": "create", "fields": {"last_name": "A"}},
        {
            "client_id": "b",
            "entity": "contacts",
            "op": "update",
            "id": base["id"],
            "base_version": 1,
            "fields": {"title": "B"},
        },
        {"client_id": "c", "entity": "contacts", "op": "create", "fields": {}},
    ]
    first = await push(client, admin, batch, device_id="replay-phone")
    listed = await client.get("/api/v1/contacts?limit=200", headers=admin.headers)
    before = listed.json()["items"]
    # The server changes the record again; the replay must not undo it.
    await patch(client, admin, "contacts", {"id": base["id"], "version": 2}, title="Server")
    second = await push(client, admin, batch, device_id="replay-phone")
    assert second == first
    after = (await client.get("/api/v1/contacts?limit=200", headers=admin.headers)).json()
    assert len(after["items"]) == len(before)
    assert (await _get(client, admin, "contacts", base["id"]))["title"] == "Server"
    # Another device's client ids are its own.
    other = await push(client, admin, batch[:1], device_id="other-phone")
    assert other["a"]["id"] != first["a"]["id"]


async def test_deletes_and_conflicting_deletes(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "push-del")
    calm = await create_record(client, admin, "contacts", {"last_name": "Calm"})
    busy = await create_record(client, admin, "contacts", {"last_name": "Busy"})
    await patch(client, admin, "contacts", busy, title="Changed on the server")
    deletes = [
        {
            "client_id": "calm",
            "entity": "contacts",
            "op": "delete",
            "id": calm["id"],
            "base_version": 1,
        },
        {
            "client_id": "busy",
            "entity": "contacts",
            "op": "delete",
            "id": busy["id"],
            "base_version": 1,
        },
    ]
    results = await push(client, admin, deletes, device_id="d1")
    assert results["calm"]["status"] == "applied"
    assert await _get(client, admin, "contacts", calm["id"]) == 404
    assert results["busy"]["status"] == "conflict"
    assert results["busy"]["conflicts"] == [
        {
            "field": "title",
            "client_value": None,
            "server_value": "Changed on the server",
            "resolved": "server",
        }
    ]
    assert (await _get(client, admin, "contacts", busy["id"]))["version"] == 2
    forced = await push(client, admin, deletes[1:], device_id="d2", resolution="client_wins")
    assert forced["busy"]["status"] == "merged"
    assert await _get(client, admin, "contacts", busy["id"]) == 404


async def test_bad_batches_are_refused_whole(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "push-bad")
    one = {"client_id": "x", "entity": "contacts", "op": "create", "fields": {"last_name": "X"}}
    cases: list[tuple[dict[str, Any], str | None, str | None]] = [
        ({"device_id": "bad id!", "changes": [one]}, "invalid_device_id", "device_id"),
        ({"device_id": "p", "changes": [one, one]}, "duplicate_client_id", "changes[1].client_id"),
        ({"device_id": "p", "changes": [one], "resolution": "coin_flip"}, None, "resolution"),
        ({"device_id": "p", "changes": [{**one, "op": "upsert"}]}, None, None),
    ]
    for body, code, field in cases:
        response = await client.post("/api/v1/sync", json=body, headers=admin.headers)
        assert_problem(response, 400, code, field)
    listed = await client.get("/api/v1/contacts", headers=admin.headers)
    assert listed.json()["items"] == []


async def test_the_same_batch_pushed_twice_at_once_applies_once(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "push-race")
    batch = [
        {
            "client_id": f"n{i}",
            "entity": "contacts",
            "op": "create",
            "fields": {"last_name": "Race"},
        }
        for i in range(3)
    ]
    first, second = await asyncio.gather(
        push(client, admin, batch, device_id="racer"), push(client, admin, batch, device_id="racer")
    )
    assert first == second
    listed = await client.get("/api/v1/contacts?limit=200", headers=admin.headers)
    assert sorted(c["id"] for c in listed.json()["items"]) == sorted(
        r["id"] for r in first.values()
    )


async def test_a_push_cannot_touch_another_tenants_records(
    services: Services, client: httpx.AsyncClient
) -> None:
    one = await new_tenant(services, client, "push-one")
    two = await new_tenant(services, client, "push-two")
    theirs = await create_record(client, two, "contacts", {"last_name": "Theirs"})
    change = {"entity": "contacts", "id": theirs["id"], "base_version": 1}
    results = await push(
        client,
        one,
        [
            {**change, "client_id": "u", "op": "update", "fields": {"title": "Hijacked"}},
            {**change, "client_id": "d", "op": "delete"},
        ],
        resolution="client_wins",
    )
    assert {k: (r["status"], r["code"]) for k, r in results.items()} == {
        "u": ("refused", "not_found"),
        "d": ("refused", "not_found"),
    }
    now = await _get(client, two, "contacts", theirs["id"])
    assert (now["title"], now["version"]) == (None, 1)
    unauthenticated = await client.post("/api/v1/sync", json={"device_id": "p", "changes": []})
    assert_problem(unauthenticated, 401)
