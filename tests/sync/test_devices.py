"""Sync devices: each pull and push records the device's state, which its user and the tenant's
admins can see (no one else), and which the user can forget."""

from __future__ import annotations

import httpx

from backend.runtime import Services
from tests.conftest import new_tenant
from tests.security.policy_helpers import assert_problem, user_with_roles
from tests.sync.helpers import pull, push


async def test_device_state_is_recorded_and_visible_to_its_user_and_admins(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "dev")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    peer = await user_with_roles(services, client, admin, "peer", ["salesperson"])
    page = await pull(
        client, rep, device_id="pixel-7", device_name="Anna's phone", platform="android"
    )
    mine = (await client.get("/api/v1/devices", headers=rep.headers)).json()["items"]
    (device,) = mine
    assert (device["device_id"], device["name"], device["platform"]) == (
        "pixel-7",
        "Anna's phone",
        "android",
    )
    assert device["cursor"] == page["cursor"]
    assert device["last_pull_at"] is not None and device["last_push_at"] is None
    assert device["user_id"] == str(rep.user_id)

    await push(client, rep, [], device_id="pixel-7")
    (device,) = (await client.get("/api/v1/devices", headers=rep.headers)).json()["items"]
    assert device["last_push_at"] is not None and device["name"] == "Anna's phone"

    # Admins see it; a peer sees only their own (none) and may not look at the rep's.
    seen = await client.get(f"/api/v1/users/{rep.user_id}/devices", headers=admin.headers)
    assert [d["id"] for d in seen.json()["items"]] == [device["id"]]
    assert (await client.get("/api/v1/devices", headers=peer.headers)).json()["items"] == []
    denied = await client.get(f"/api/v1/users/{rep.user_id}/devices", headers=peer.headers)
    assert_problem(denied, 403)
    # Forgetting: not someone else's device (the same 404 as none), but one's own.
    assert_problem(
        await client.delete(f"/api/v1/devices/{device['id']}", headers=peer.headers), 404
    )
    gone = await client.delete(f"/api/v1/devices/{device['id']}", headers=rep.headers)
    assert gone.status_code == 204
    assert (await client.get("/api/v1/devices", headers=rep.headers)).json()["items"] == []


async def test_devices_stay_in_their_tenant(services: Services, client: httpx.AsyncClient) -> None:
    one = await new_tenant(services, client, "dev-one")
    two = await new_tenant(services, client, "dev-two")
    await pull(client, one, device_id="one-phone")
    (device,) = (await client.get("/api/v1/devices", headers=one.headers)).json()["items"]
    other = await client.get(f"/api/v1/users/{one.user_id}/devices", headers=two.headers)
    assert_problem(other, 404)
    gone = await client.delete(f"/api/v1/devices/{device['id']}", headers=two.headers)
    assert_problem(gone, 404)
    assert len((await client.get("/api/v1/devices", headers=one.headers)).json()["items"]) == 1


async def test_a_bad_device_id_is_refused(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "dev-bad")
    response = await client.get("/api/v1/sync?device_id=no%20spaces", headers=admin.headers)
    assert_problem(response, 400, "invalid_device_id", "device_id")
