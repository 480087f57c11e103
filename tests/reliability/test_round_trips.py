"""Round trips per request, counted on the wire, and the safety of the mechanism that saves them.

A tenant transaction sends its BEGIN and the tenant setting as ONE simple query, and takes the
tenant's policy version from a per-process memory kept fresh by NOTIFY (see
backend/db/session.py and backend/db/policy_versions.py). A proxy between the app and
PostgreSQL counts what really goes over the wire (tests/reliability/wire.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from backend.app import create_app
from backend.db.policy_versions import TRUST_SECONDS
from backend.db.session import begin_tenant
from backend.runtime import Services, build_services
from tests.conftest import Cluster, TenantUser, make_settings, new_tenant, new_user
from tests.reliability.wire import WireProxy


@dataclass
class Wired:
    services: Services
    client: httpx.AsyncClient
    proxy: WireProxy


async def _wired_app(cluster: Cluster, pool_size: int) -> AsyncIterator[Wired]:
    proxy = WireProxy(cluster.urls.port)
    port = await proxy.start()
    url = make_url(cluster.urls.app_url).set(port=port).render_as_string(hide_password=False)
    settings = make_settings(cluster, database_url=url, pool_size=pool_size, pool_max_overflow=0)
    services = build_services(settings, url)
    await services.db.policy_versions.start()  # what the server's startup does
    assert services.db.policy_versions.listening
    transport = httpx.ASGITransport(app=create_app(services))  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Wired(services, http, proxy)
    finally:
        await services.db.dispose()
        await proxy.stop()


@pytest.fixture(scope="module")
async def wired(cluster: Cluster) -> AsyncIterator[Wired]:
    async for app in _wired_app(cluster, 2):
        yield app


@pytest.fixture(scope="module")
async def wired_of_one(cluster: Cluster) -> AsyncIterator[Wired]:
    async for app in _wired_app(cluster, 1):
        yield app


async def _counted(app: Wired, request: object) -> tuple[int, list[str]]:
    app.proxy.counter.reset()
    response = await request  # type: ignore[misc]
    assert response.status_code in (200, 201), response.text
    return app.proxy.counter.round_trips, list(app.proxy.counter.queries)


async def test_a_read_is_three_round_trips_and_a_create_five(wired: Wired) -> None:
    user = await new_tenant(wired.services, wired.client, "wire")
    created = await wired.client.post(
        "/api/v1/contacts", json={"last_name": "Wire"}, headers=user.headers
    )
    rid = created.json()["id"]
    for _ in range(2):  # warm: policy, prepared statements, the remembered version
        await wired.client.get(f"/api/v1/contacts/{rid}", headers=user.headers)
        await wired.client.get("/api/v1/contacts?limit=50", headers=user.headers)
        await wired.client.post(
            "/graphql",
            json={"query": "query($id: ID!) { contact(id: $id) { id } }", "variables": {"id": rid}},
            headers=user.headers,
        )
        await wired.client.post("/api/v1/contacts", json={"last_name": "W"}, headers=user.headers)

    trips, queries = await _counted(
        wired, wired.client.get(f"/api/v1/contacts/{rid}", headers=user.headers)
    )
    # BEGIN + tenant (one simple query), the SELECT, COMMIT. It was 4: BEGIN,
    # caravan_begin_tenant, SELECT, COMMIT.
    assert trips == 3, queries
    assert queries[0] == f"BEGIN; SELECT set_config('app.tenant_id', '{user.tenant_id}', true)"
    assert queries[1:] == ["COMMIT;"]

    trips, queries = await _counted(
        wired,
        wired.client.post(
            "/graphql",
            json={"query": "query($id: ID!) { contact(id: $id) { id } }", "variables": {"id": rid}},
            headers=user.headers,
        ),
    )
    assert trips == 3, queries  # one operation, one transaction: the same as REST

    trips, queries = await _counted(
        wired, wired.client.get("/api/v1/contacts?limit=50", headers=user.headers)
    )
    assert trips == 4, queries  # + the read budget's charge (backend/exports/budget.py)

    trips, queries = await _counted(
        wired,
        wired.client.post("/api/v1/contacts", json={"last_name": "X"}, headers=user.headers),
    )
    # BEGIN + tenant, the owner check, INSERT contact, INSERT history, COMMIT. It was 8: BEGIN,
    # caravan_begin_tenant, the owner check, the two INSERTs, a DELETE from the phone index and
    # the tenant's phone region (for a contact without phones), COMMIT.
    assert trips == 5, queries
    assert queries[0].startswith("BEGIN; SELECT set_config('app.tenant_id'")


async def test_without_the_listener_the_version_is_read_in_the_transaction(
    wired: Wired,
) -> None:
    user = await new_tenant(wired.services, wired.client, "wire-off")
    rid = (
        await wired.client.post("/api/v1/contacts", json={"last_name": "W"}, headers=user.headers)
    ).json()["id"]
    await wired.client.get(f"/api/v1/contacts/{rid}", headers=user.headers)
    versions = wired.services.db.policy_versions
    await versions.stop()
    try:
        trips, _ = await _counted(
            wired, wired.client.get(f"/api/v1/contacts/{rid}", headers=user.headers)
        )
        assert trips == 4  # + caravan_begin_tenant: nothing is trusted without the listener
    finally:
        await versions.start()
    assert versions.listening


# -- a tenant set for a BEGIN that never came ----------------------------------------------------
class Boom(Exception):
    pass


async def _plain_view(app: Wired) -> tuple[str | None, int]:
    async with app.services.db.plain_transaction() as conn:
        setting = await conn.execute(text("select current_setting('app.tenant_id', true)"))
        count = await conn.execute(text("select count(*) from contacts"))
        return setting.scalar_one(), count.scalar_one()


async def _tenant_with_rows(app: Wired, label: str) -> TenantUser:
    user = await new_tenant(app.services, app.client, label)
    made = await app.client.post("/api/v1/contacts", json={"last_name": "A"}, headers=user.headers)
    assert made.status_code == 201, made.text
    # Read once so the version is remembered: begin_tenant then sends nothing by itself.
    await app.client.get("/api/v1/contacts", headers=user.headers)
    assert app.services.db.policy_versions.get(user.tenant_id) is not None
    return user


async def test_a_tenant_scoped_but_never_begun_is_not_handed_on(wired_of_one: Wired) -> None:
    app = wired_of_one
    a = await _tenant_with_rows(app, "pending")
    with pytest.raises(Boom):
        async with app.services.db.engine.connect() as conn:
            await conn.begin()
            await begin_tenant(conn, a.tenant_id, app.services.db.policy_versions)
            raise Boom("failed after the tenant was set, before any statement")
    # The one connection, next used without a tenant, must not begin as tenant A.
    assert await _plain_view(app) == ("", 0)


async def test_a_cancelled_request_before_its_first_statement_leaves_no_tenant(
    wired_of_one: Wired,
) -> None:
    app = wired_of_one
    a = await _tenant_with_rows(app, "cancelled")
    scoped = asyncio.Event()

    async def hold() -> None:
        async with app.services.db.engine.connect() as conn:
            await conn.begin()
            await begin_tenant(conn, a.tenant_id, app.services.db.policy_versions)
            scoped.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(hold())
    await scoped.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _plain_view(app) == ("", 0)


async def test_the_tenant_setting_is_not_caller_text(wired_of_one: Wired) -> None:
    async with wired_of_one.services.db.engine.connect() as conn:
        with pytest.raises(TypeError):
            await begin_tenant(conn, "00000000-0000-0000-0000-000000000000', true); --")  # type: ignore[arg-type]


# -- policy changes are seen at once -------------------------------------------------------------
async def _deny_contacts(app: Wired, admin: TenantUser, user: TenantUser) -> None:
    role = await app.client.post(
        "/api/v1/roles",
        headers=admin.headers,
        json={
            "name": f"no_contacts_{uuid.uuid4().hex[:6]}",
            "rules": [{"effect": "deny", "object": "contact", "action": "*"}],
        },
    )
    assert role.status_code == 201, role.text
    roles = {
        r["name"]: r["id"]
        for r in (await app.client.get("/api/v1/roles", headers=admin.headers)).json()["items"]
    }
    assigned = await app.client.put(
        f"/api/v1/users/{user.user_id}/roles",
        headers=admin.headers,
        json={"role_ids": [roles["salesperson"], role.json()["id"]]},
    )
    assert assigned.status_code == 200, assigned.text


async def test_a_policy_change_is_seen_by_the_next_request_here(wired: Wired) -> None:
    admin = await new_tenant(wired.services, wired.client, "revoke-here")
    rep = await new_user(wired.services, wired.client, admin, "rep")
    assert (await wired.client.get("/api/v1/contacts", headers=rep.headers)).status_code == 200
    await _deny_contacts(wired, admin, rep)
    assert (await wired.client.get("/api/v1/contacts", headers=rep.headers)).status_code == 403


async def test_a_policy_change_reaches_another_process_by_notify(
    wired: Wired, cluster: Cluster
) -> None:
    """A second Services (another worker) has the version remembered; the change made through
    the first reaches it by NOTIFY well inside the trust window."""
    admin = await new_tenant(wired.services, wired.client, "revoke-there")
    rep = await new_user(wired.services, wired.client, admin, "rep")
    async for other in _wired_app(cluster, 2):
        assert (await other.client.get("/api/v1/contacts", headers=rep.headers)).status_code == 200
        assert other.services.db.policy_versions.get(admin.tenant_id) is not None
        await _deny_contacts(wired, admin, rep)
        started = time.monotonic()
        status = 200
        while status == 200 and time.monotonic() - started < TRUST_SECONDS / 2:
            status = (await other.client.get("/api/v1/contacts", headers=rep.headers)).status_code
            await asyncio.sleep(0.01)
        assert status == 403


# -- plans ---------------------------------------------------------------------------------------
async def test_app_statements_are_planned_with_their_values(wired: Wired) -> None:
    """Generic plans of prepared statements assume ~1 row per (tenant, owner) once there are
    many tenants, and read every row of a big tenant's owner for one get by id (the 1M-row
    slope: README, "Performance"); the app's connections plan with the values instead."""
    user = await new_tenant(wired.services, wired.client, "plans")
    async with wired.services.db.tenant_transaction(user.tenant_id) as conn:
        mode = (await conn.execute(text("show plan_cache_mode"))).scalar_one()
    assert mode == "force_custom_plan"


# -- the safety nets of the remembered version -------------------------------------------------
async def _superuser(cluster: Cluster) -> asyncpg.Connection:
    password = (cluster.data_dir / "secrets" / "superuser.password").read_text().strip()
    return await asyncpg.connect(
        host="127.0.0.1",
        port=cluster.urls.port,
        user="postgres",
        password=password,
        database=make_url(cluster.urls.app_url).database,
    )


async def test_a_change_without_notify_is_trusted_no_longer_than_the_window(
    wired: Wired, cluster: Cluster
) -> None:
    user = await new_tenant(wired.services, wired.client, "silent")
    await wired.client.get("/api/v1/contacts", headers=user.headers)
    versions = wired.services.db.policy_versions
    remembered = versions.get(user.tenant_id)
    assert remembered is not None
    conn = await _superuser(cluster)
    try:  # a manual change that sends no NOTIFY
        await conn.execute(
            "UPDATE tenants SET policy_version = policy_version + 1 WHERE id = $1", user.tenant_id
        )
    finally:
        await conn.close()
    assert versions.get(user.tenant_id) == remembered  # not heard of ...
    await asyncio.sleep(TRUST_SECONDS + 0.2)
    assert versions.get(user.tenant_id) is None  # ... but no longer trusted: read again
    await wired.client.get("/api/v1/contacts", headers=user.headers)
    assert versions.get(user.tenant_id) == remembered + 1


async def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


async def test_a_lost_listener_trusts_nothing_until_it_is_back(
    wired: Wired, cluster: Cluster
) -> None:
    user = await new_tenant(wired.services, wired.client, "deaf")
    await wired.client.get("/api/v1/contacts", headers=user.headers)
    versions = wired.services.db.policy_versions
    assert versions.get(user.tenant_id) is not None
    conn = await _superuser(cluster)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN %caravan_policy%'"
        )
        assert killed >= 1
    finally:
        await conn.close()
    assert await _within(5, lambda: not versions.listening)
    assert versions.get(user.tenant_id) is None
    # Requests still work (the version is read in the transaction), and the listener returns.
    assert (await wired.client.get("/api/v1/contacts", headers=user.headers)).status_code == 200
    assert await _within(10, lambda: versions.listening)
