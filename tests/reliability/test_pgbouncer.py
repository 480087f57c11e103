"""The app through PgBouncer in transaction mode (CARAVAN_DB_PGBOUNCER=1).

Each transaction may run on any of a few server connections that every tenant shares, so a
tenant setting that outlived its transaction, or a prepared statement expected on the next
server connection, would show here. 10k interleaved requests from four tenants, over three
server connections, must return 0 foreign rows. LISTEN cannot work through PgBouncer in this
mode: without CARAVAN_LISTEN_DATABASE_URL nothing listens, the policy version is read in
every transaction (changes are seen at once) and revocations are polled every second; with
it, the listeners use that direct connection and revocations bite at once.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import text

from backend.app import create_app
from backend.auth.revocation import UNHEARD_RELOAD_SECONDS
from backend.db.session import Database
from backend.runtime import Services, build_services
from tests.cli.test_cli import _env, run
from tests.conftest import Cluster, make_settings, new_tenant
from tests.reliability import pgbouncer
from tests.reliability.test_pool_safety import PROBES, App, _side, _watch
from tests.reliability.test_two_servers import _claims
from tests.security.figures import count

pytestmark = pytest.mark.slow

REQUESTS = 10_000
TENANTS = 4
BATCH = 40
SERVER_POOL = 3


@pytest.fixture(scope="module")
def bounced_url(cluster: Cluster) -> Iterator[str]:
    with pgbouncer.bouncer(cluster, server_pool=SERVER_POOL) as url:
        yield url


async def _app(cluster: Cluster, url: str, listen_url: str | None) -> AsyncIterator[App]:
    settings = make_settings(
        cluster,
        database_url=url,
        db_pgbouncer=True,
        listen_database_url=listen_url,
        pool_size=8,
        pool_max_overflow=0,
    )
    services = build_services(settings, url)
    watch = _watch(services)
    transport = httpx.ASGITransport(app=create_app(services))  # type: ignore[arg-type]
    try:
        # ASGITransport runs no startup hooks: start the listeners as `caravan serve` does.
        await services.db.policy_versions.start()
        assert services.tokens.revocations is not None
        await services.tokens.revocations.start()
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield App(services, http, watch)
    finally:
        await services.db.dispose()


@pytest.fixture(scope="module")
async def bounced(cluster: Cluster, bounced_url: str) -> AsyncIterator[App]:
    async for app in _app(cluster, bounced_url, None):
        yield app


@pytest.fixture(scope="module")
async def bounced_listening(cluster: Cluster, bounced_url: str) -> AsyncIterator[App]:
    async for app in _app(cluster, bounced_url, cluster.urls.app_url):
        yield app


async def test_ten_thousand_interleaved_requests_through_pgbouncer_see_no_foreign_rows(
    bounced: App,
) -> None:
    app = bounced
    sides = [await _side(app, f"bounce-{n}") for n in range(TENANTS)]
    started = time.monotonic()
    foreign_rows = wrong_answers = 0
    failures: list[str] = []
    plan = [
        (sides[i % TENANTS], sides[(i + 1) % TENANTS], PROBES[(i // TENANTS) % len(PROBES)])
        for i in range(REQUESTS)
    ]
    for start in range(0, REQUESTS, BATCH):
        batch = plan[start : start + BATCH]
        results = await asyncio.gather(*(probe(app.client, me, them) for me, them, probe in batch))
        for (me, _, _), seen in zip(batch, results, strict=True):
            others = frozenset().union(*(s.contact_ids for s in sides if s is not me))
            foreign_rows += len(seen.ids & others)
            wrong_answers += int(seen.ids != seen.expected)
            failures += [seen.failure] if seen.failure else []
    elapsed = time.monotonic() - started
    print(f"pgbouncer: {REQUESTS} requests, {TENANTS} tenants in {elapsed:.1f} s")
    count("pgbouncer_interleaved_requests", REQUESTS)
    count("pgbouncer_foreign_rows", foreign_rows)
    assert foreign_rows == 0
    assert wrong_answers == 0
    assert failures[:5] == []
    assert app.watch.most_checked_out > SERVER_POOL  # more clients than server connections


async def test_the_pool_shares_few_server_connections_and_no_tenant_setting_survives(
    bounced: App, cluster: Cluster
) -> None:
    """Many client connections, three server connections: transactions really move between
    them, and each one starts with no tenant set."""
    db = bounced.services.db
    tenant = uuid.uuid4()
    pids: set[int] = set()

    async def one() -> None:
        async with db.tenant_transaction(tenant) as conn:
            pids.add((await conn.execute(text("select pg_backend_pid()"))).scalar_one())
            assert (
                await conn.execute(text("select current_setting('app.tenant_id')"))
            ).scalar_one() == str(tenant)
        async with db.plain_transaction() as conn:
            setting = await conn.execute(text("select current_setting('app.tenant_id', true)"))
            assert setting.scalar_one() in ("", None)

    for _ in range(20):
        await asyncio.gather(*(one() for _ in range(8)))
    assert 1 < len(pids) <= SERVER_POOL


async def test_without_the_setting_the_app_cannot_connect_through_pgbouncer(
    bounced_url: str,
) -> None:
    """The setting is needed: the default engine sends plan_cache_mode at startup, which
    PgBouncer refuses (and would otherwise name its cached prepared statements)."""
    db = Database(bounced_url, pool_size=1)
    try:
        with pytest.raises(Exception, match="plan_cache_mode"):
            async with db.plain_transaction() as conn:
                await conn.execute(text("select 1"))
    finally:
        await db.dispose()


async def test_listeners_fall_back_to_reading_and_polling_through_pgbouncer(
    bounced: App, services: Services, client: httpx.AsyncClient
) -> None:
    assert bounced.services.db.listen_dsn is None
    assert not bounced.services.db.policy_versions.listening
    revocations = bounced.services.tokens.revocations
    assert revocations is not None and not revocations.listening
    # A policy change made elsewhere (the direct app) is enforced through PgBouncer at once.
    admin = await new_tenant(services, client, "bounce-policy")
    made = await client.post(
        "/api/v1/contacts", json={"last_name": "X", "email": "x@b.example"}, headers=admin.headers
    )
    contact = made.json()["id"]
    seen = await bounced.client.get(f"/api/v1/contacts/{contact}", headers=admin.headers)
    assert seen.json()["email"] == "x@b.example"
    hide = await client.post(
        "/api/v1/roles",
        json={
            "name": "hide",
            "rules": [{"effect": "deny", "object": "contact.email", "action": "read"}],
        },
        headers=admin.headers,
    )
    assert hide.status_code == 201, hide.text
    roles = (await client.get(f"/api/v1/users/{admin.user_id}/roles", headers=admin.headers)).json()
    given = await client.put(
        f"/api/v1/users/{admin.user_id}/roles",
        json={"role_ids": [r["id"] for r in roles["items"]] + [hide.json()["id"]]},
        headers=admin.headers,
    )
    assert given.status_code == 200, given.text
    seen = await bounced.client.get(f"/api/v1/contacts/{contact}", headers=admin.headers)
    assert seen.json().get("email") is None
    # A sign-out elsewhere is refused here within the polling interval.
    me = await new_tenant(services, client, "bounce-out")
    assert (await bounced.client.get("/api/v1/me", headers=me.headers)).status_code == 200
    out = await client.delete(f"/api/v1/me/sessions/{_claims(me.token)['sid']}", headers=me.headers)
    assert out.status_code == 204
    signed_out = time.monotonic()
    while (await bounced.client.get("/api/v1/me", headers=me.headers)).status_code == 200:
        assert time.monotonic() - signed_out < UNHEARD_RELOAD_SECONDS + 2
        await asyncio.sleep(0.05)


async def test_with_a_direct_listen_url_revocations_through_pgbouncer_bite_at_once(
    bounced_listening: App, services: Services, client: httpx.AsyncClient
) -> None:
    app = bounced_listening
    assert app.services.db.policy_versions.listening
    revocations = app.services.tokens.revocations
    assert revocations is not None
    for _ in range(100):
        if revocations.listening:
            break
        await asyncio.sleep(0.05)
    assert revocations.listening
    me = await new_tenant(services, client, "bounce-listen")
    assert (await app.client.get("/api/v1/me", headers=me.headers)).status_code == 200
    await asyncio.sleep(UNHEARD_RELOAD_SECONDS)  # past any catch-up: only the listener helps
    out = await client.delete(f"/api/v1/me/sessions/{_claims(me.token)['sid']}", headers=me.headers)
    assert out.status_code == 204
    await asyncio.sleep(0.2)  # the NOTIFY's delivery
    assert (await app.client.get("/api/v1/me", headers=me.headers)).status_code == 401


def test_the_command_line_works_through_pgbouncer(cluster: Cluster, bounced_url: str) -> None:
    env = _env(cluster, CARAVAN_DATABASE_URL=bounced_url, CARAVAN_DB_PGBOUNCER="1")
    listed = run(["keys", "list"], env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["keys"]
    refused = run(["keys", "list"], _env(cluster, CARAVAN_DATABASE_URL=bounced_url))
    assert refused.returncode != 0
