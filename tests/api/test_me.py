"""`/api/v1/me`: a user reads and sets their own time zone (IANA names only), nobody else's."""

from __future__ import annotations

import httpx
import pytest

from backend.context import Principal
from backend.runtime import Services
from tests.api.agenda_helpers import set_zone
from tests.conftest import new_tenant, new_user
from tests.security.policy_helpers import assert_problem


async def test_time_zone_defaults_to_utc_and_is_the_users_own(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "me")
    rep = await new_user(services, client, admin, "rep")
    got = await client.get("/api/v1/me", headers=rep.headers)
    assert got.status_code == 200, got.text
    assert got.json() == {"name": None, "time_zone": "UTC"}
    await set_zone(client, rep, "Pacific/Auckland")
    assert (await client.get("/api/v1/me", headers=rep.headers)).json()["time_zone"] == (
        "Pacific/Auckland"
    )
    # Only the caller's own row changed.
    assert (await client.get("/api/v1/me", headers=admin.headers)).json()["time_zone"] == "UTC"
    # An empty body changes nothing; null goes back to the tenant default.
    same = await client.patch("/api/v1/me", json={}, headers=rep.headers)
    assert same.json()["time_zone"] == "Pacific/Auckland"
    await set_zone(client, rep, None)
    assert (await client.get("/api/v1/me", headers=rep.headers)).json()["time_zone"] == "UTC"


@pytest.mark.parametrize(
    "zone",
    ["Mars/Olympus_Mons", "localtime", "../../etc/passwd", "", "europe/berlin", "UTC" * 30],
)
async def test_a_bad_zone_is_422_naming_time_zone(
    services: Services, client: httpx.AsyncClient, zone: str
) -> None:
    admin = await new_tenant(services, client, "mebad")
    await set_zone(client, admin, "Europe/Berlin")
    bad = await client.patch("/api/v1/me", json={"time_zone": zone}, headers=admin.headers)
    assert_problem(bad, 422, "invalid_time_zone", field="time_zone")
    # Nothing was written.
    assert (await client.get("/api/v1/me", headers=admin.headers)).json()["time_zone"] == (
        "Europe/Berlin"
    )


async def test_me_needs_a_token_and_refuses_unknown_fields(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "meauth")
    assert (await client.get("/api/v1/me")).status_code == 401
    assert (await client.patch("/api/v1/me", json={"time_zone": "UTC"})).status_code == 401
    extra = await client.patch(
        "/api/v1/me", json={"time_zone": "UTC", "email": "x@y.z"}, headers=admin.headers
    )
    assert extra.status_code == 400, extra.text


async def test_an_apps_token_reads_but_does_not_change_the_zone(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "meapp")
    app_token = services.tokens.issue(
        Principal(
            user_id=admin.user_id,
            tenant_id=admin.tenant_id,
            scopes=frozenset({"crm.read", "crm.write"}),
        )
    )
    headers = {"Authorization": f"Bearer {app_token}"}
    assert (await client.get("/api/v1/me", headers=headers)).json()["time_zone"] == "UTC"
    refused = await client.patch("/api/v1/me", json={"time_zone": "Asia/Tokyo"}, headers=headers)
    assert_problem(refused, 403, "first_party_only")
    assert (await client.get("/api/v1/me", headers=admin.headers)).json()["time_zone"] == "UTC"
