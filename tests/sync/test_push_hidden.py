"""Offline pushes against fields the phone's user cannot see or write: a stale delete is a
conflict whatever field changed, told without naming a hidden field or its value; a change
naming a forbidden field is refused (naming that field), never merged away in silence; and a
push that changes nothing moves nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant
from tests.security.policy_helpers import create_record, user_with_roles
from tests.sync.helpers import patch, pull, pull_all, push
from tests.sync.test_graphql_sync import PUSH

DEAL = {"name": "Fleet", "stage": "proposal", "close_date": "2026-12-31"}
SECRET_COST = "987654.32"  # the salesperson's roles deny every action on `cost`


async def _get(client: httpx.AsyncClient, user: TenantUser, plural: str, id_: str) -> Any:
    response = await client.get(f"/api/v1/{plural}/{id_}", headers=user.headers)
    return response.json() if response.status_code == 200 else response.status_code


def _reveals_nothing_hidden(answer: Any) -> None:
    text = json.dumps(answer)
    assert "cost" not in text and SECRET_COST not in text and "987654" not in text, text


async def _rep_deal(
    services: Services, client: httpx.AsyncClient, label: str
) -> tuple[TenantUser, TenantUser, dict[str, Any]]:
    admin = await new_tenant(services, client, label)
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    deal = await create_record(client, rep, "opportunities", DEAL)
    assert "cost" in deal["withheld_fields"]
    return admin, rep, deal


def _delete(deal: dict[str, Any], client_id: str = "d") -> dict[str, Any]:
    return {
        "client_id": client_id,
        "entity": "opportunities",
        "op": "delete",
        "id": deal["id"],
        "base_version": deal["version"],
    }


async def test_a_stale_delete_conflicts_on_a_change_the_phone_cannot_see(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin, rep, deal = await _rep_deal(services, client, "hid-del")
    # While the phone is offline, the admin sets the cost: a field the rep cannot see.
    changed = await patch(client, admin, "opportunities", deal, cost=SECRET_COST)
    results = await push(client, rep, [_delete(deal)], device_id="p1")
    result = results["d"]
    assert (result["status"], result["version"], result["conflicts"]) == (
        "conflict",
        changed["version"],
        [],
    )
    assert result["code"] == "changed_unseen"
    _reveals_nothing_hidden(results)
    assert (await _get(client, admin, "opportunities", deal["id"]))["cost"] == SECRET_COST

    # Over GraphQL: the same answer, nothing hidden in it either.
    change = {
        "clientId": "g",
        "entity": "opportunities",
        "op": "DELETE",
        "id": deal["id"],
        "baseVersion": 1,
    }
    body = await gql(client, rep, PUSH, {"input": {"deviceId": "g1", "changes": [change]}})
    (answer,) = body["data"]["pushChanges"]["results"]
    assert (answer["status"], answer["code"], answer["conflicts"]) == (
        "CONFLICT",
        "changed_unseen",
        [],
    )
    _reveals_nothing_hidden(body)
    assert (await _get(client, rep, "opportunities", deal["id"]))["version"] == changed["version"]

    # The phone's user may insist (client_wins): then the delete goes through, as any other.
    forced = await push(client, rep, [_delete(deal)], device_id="p2", resolution="client_wins")
    assert (forced["d"]["status"], forced["d"]["conflicts"]) == ("merged", [])
    _reveals_nothing_hidden(forced)
    assert await _get(client, admin, "opportunities", deal["id"]) == 404


async def test_a_stale_delete_lists_visible_changes_and_only_says_there_were_others(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin, rep, deal = await _rep_deal(services, client, "hid-mix")
    await patch(client, admin, "opportunities", deal, cost=SECRET_COST, next_step="Call back")
    results = await push(client, rep, [_delete(deal)])
    result = results["d"]
    assert result["status"] == "conflict"
    assert result["conflicts"] == [
        {
            "field": "next_step",
            "client_value": None,
            "server_value": "Call back",
            "resolved": "server",
        }
    ]
    assert result["code"] == "changed_unseen"
    _reveals_nothing_hidden(results)
    # A visible change only: the conflict names it, and says nothing of unseen changes.
    plain = await create_record(client, rep, "opportunities", DEAL)
    await patch(client, admin, "opportunities", plain, next_step="Visit")
    visible = (await push(client, rep, [_delete(plain, "v")], device_id="p3"))["v"]
    assert (visible["status"], visible["code"]) == ("conflict", None)
    assert [c["field"] for c in visible["conflicts"]] == ["next_step"]


async def test_a_stale_update_merges_visible_fields_and_reveals_no_hidden_one(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin, rep, deal = await _rep_deal(services, client, "hid-upd")
    server = await patch(
        client, admin, "opportunities", deal, cost=SECRET_COST, next_step="Server step"
    )
    update = {
        "client_id": "u",
        "entity": "opportunities",
        "op": "update",
        "id": deal["id"],
        "base_version": 1,
        "fields": {"next_step": "Phone step", "competitor": "Rival"},
    }
    results = await push(client, rep, [update])
    result = results["u"]
    assert result["status"] == "merged"
    assert result["conflicts"] == [
        {
            "field": "next_step",
            "client_value": "Phone step",
            "server_value": "Server step",
            "resolved": "server",
        }
    ]
    assert result["version"] == server["version"] + 1
    _reveals_nothing_hidden(results)
    now = await _get(client, admin, "opportunities", deal["id"])
    assert (now["competitor"], now["next_step"], now["cost"]) == (
        "Rival",
        "Server step",
        SECRET_COST,
    )


@pytest.mark.parametrize("resolution", ["server_wins", "client_wins", "reject"])
async def test_a_push_naming_a_forbidden_field_is_refused(
    services: Services, client: httpx.AsyncClient, resolution: str
) -> None:
    admin, rep, deal = await _rep_deal(services, client, f"hid-forb-{resolution[:3]}")
    contact = await create_record(client, rep, "contacts", {"last_name": "Mine"})
    server = await patch(client, admin, "opportunities", deal, cost=SECRET_COST)
    base = {"entity": "opportunities", "op": "update", "id": deal["id"], "base_version": 1}
    results = await push(
        client,
        rep,
        [
            # The server changed `cost` since: a merge would have dropped the phone's value
            # (server_wins) and applied the rest, as if the field were allowed.
            {**base, "client_id": "stale", "fields": {"cost": "5.00", "name": "Renamed"}},
            # Invalid values of forbidden fields: refused for the field, not for the value.
            {**base, "client_id": "bad", "base_version": 2, "fields": {"cost": "-1"}},
            {
                "client_id": "owner",
                "entity": "contacts",
                "op": "update",
                "id": contact["id"],
                "base_version": 1,
                "fields": {"owner_id": "not-a-uuid"},
            },
            {
                "client_id": "new",
                "entity": "opportunities",
                "op": "create",
                "fields": {**DEAL, "cost": "-1"},
            },
        ],
        resolution=resolution,
    )
    assert {k: (r["status"], r["code"], r["field"]) for k, r in results.items()} == {
        "stale": ("refused", "field_forbidden", "cost"),
        "bad": ("refused", "field_forbidden", "cost"),
        "owner": ("refused", "field_forbidden", "owner_id"),
        "new": ("refused", "field_forbidden", "cost"),
    }
    assert SECRET_COST not in json.dumps(results)
    now = await _get(client, admin, "opportunities", deal["id"])
    assert (now["name"], now["cost"], now["version"]) == ("Fleet", SECRET_COST, server["version"])
    assert (await _get(client, rep, "contacts", contact["id"]))["version"] == 1
    listed = await client.get("/api/v1/opportunities", headers=admin.headers)
    assert [d["id"] for d in listed.json()["items"]] == [deal["id"]]


async def test_a_push_that_changes_nothing_moves_nothing(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "hid-noop")
    base = await create_record(client, admin, "contacts", {"last_name": "Same", "title": "T"})
    _, cursor = await pull_all(client, admin)
    same = {"entity": "contacts", "op": "update", "id": base["id"], "base_version": 1}
    results = await push(
        client,
        admin,
        [
            {**same, "client_id": "same", "fields": {"title": "T", "last_name": "Same"}},
            {**same, "client_id": "empty", "fields": {}},
        ],
    )
    assert {k: (r["status"], r["version"]) for k, r in results.items()} == {
        "same": ("applied", 1),
        "empty": ("applied", 1),
    }
    history = await client.get(f"/api/v1/contacts/{base['id']}/history", headers=admin.headers)
    assert [h["event"] for h in history.json()["items"]] == ["create"]
    assert (await pull(client, admin, cursor))["changes"] == []


async def test_a_stale_edit_from_before_an_undelete_is_a_conflict(
    services: Services, client: httpx.AsyncClient
) -> None:
    """The phone's base version predates a delete and undelete: the undeleted record may be
    any earlier state, so each field the phone changed is compared (not `applied` blindly,
    and not refused as if the phone were ahead of the server)."""
    admin = await new_tenant(services, client, "hid-undel")
    base = await create_record(client, admin, "contacts", {"last_name": "U", "title": "Old"})
    seen = await patch(client, admin, "contacts", base, title="Seen by the phone")
    history = await client.get(f"/api/v1/contacts/{base['id']}/history", headers=admin.headers)
    title_change = next(h for h in history.json()["items"] if h["field"] == "title")
    assert (await client.delete(f"/api/v1/contacts/{base['id']}", headers=admin.headers)).is_success
    # Undelete the record as it was before the title change: title "Old", version 3.
    back = await client.post(
        f"/api/v1/contacts/{base['id']}/revert",
        json={"before_change_id": title_change["id"]},
        headers=admin.headers,
    )
    assert (back.json()["title"], back.json()["version"]) == ("Old", 3)
    results = await push(
        client,
        admin,
        [
            {
                "client_id": "late",
                "entity": "contacts",
                "op": "update",
                "id": base["id"],
                "base_version": seen["version"],
                "fields": {"title": "Phone"},
            }
        ],
        resolution="reject",
    )
    late = results["late"]
    assert (late["status"], late["version"]) == ("conflict", 3)
    assert late["conflicts"] == [
        {"field": "title", "client_value": "Phone", "server_value": "Old", "resolved": "none"}
    ]
    assert (await _get(client, admin, "contacts", base["id"]))["title"] == "Old"
