"""A pooled connection never carries one tenant's setting into another tenant's request.

Tiny pools with no overflow force every request through the same one or two connections, so
tenants A and B alternate on them constantly; requests that fail inside their transaction must
hand the connection back clean.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.app import create_app
from backend.runtime import Services, build_services
from tests.conftest import Cluster, TenantUser, gql, make_settings, new_tenant

REQUESTS = 2000
BATCH = 50
CONTACTS_PER_TENANT = 4
CONTACTS_QUERY = "{ contacts(first: 200) { edges { node { id lastName } } } }"


@dataclass
class PoolWatch:
    """How many connections the pool opened, and the most it ever had checked out at once."""

    opened: int = 0
    checked_out: int = 0
    most_checked_out: int = 0


@dataclass
class App:
    services: Services
    client: httpx.AsyncClient
    watch: PoolWatch


@dataclass(frozen=True)
class Side:
    """One tenant in these tests: its user and the contacts it owns."""

    user: TenantUser
    contact_ids: frozenset[str]


def _watch(services: Services) -> PoolWatch:
    watch = PoolWatch()
    engine = services.db.engine.sync_engine

    def opened(*_: Any) -> None:
        watch.opened += 1

    def out(*_: Any) -> None:
        watch.checked_out += 1
        watch.most_checked_out = max(watch.most_checked_out, watch.checked_out)

    def back(*_: Any) -> None:
        watch.checked_out -= 1

    event.listen(engine, "connect", opened)
    event.listen(engine, "checkout", out)
    event.listen(engine, "checkin", back)
    return watch


async def _small_app(cluster: Cluster, pool_size: int) -> AsyncIterator[App]:
    settings = make_settings(cluster, pool_size=pool_size, pool_max_overflow=0)
    services = build_services(settings, cluster.urls.app_url)
    watch = _watch(services)
    transport = httpx.ASGITransport(app=create_app(services))  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield App(services, http, watch)
    finally:
        await services.db.dispose()


@pytest.fixture(scope="module")
async def pool_of_two(cluster: Cluster) -> AsyncIterator[App]:
    async for app in _small_app(cluster, 2):
        yield app


@pytest.fixture(scope="module")
async def pool_of_one(cluster: Cluster) -> AsyncIterator[App]:
    async for app in _small_app(cluster, 1):
        yield app


async def _side(app: App, label: str) -> Side:
    user = await new_tenant(app.services, app.client, label)
    ids = set()
    for n in range(CONTACTS_PER_TENANT):
        response = await app.client.post(
            "/api/v1/contacts", json={"last_name": f"{label}-{n}"}, headers=user.headers
        )
        assert response.status_code == 201, response.text
        ids.add(response.json()["id"])
    return Side(user, frozenset(ids))


@pytest.fixture(scope="module")
async def solo_sides(pool_of_one: App) -> tuple[Side, Side]:
    return await _side(pool_of_one, "solo-a"), await _side(pool_of_one, "solo-b")


# -- what one request saw ------------------------------------------------------------------------
@dataclass(frozen=True)
class Seen:
    """The ids a request got back, the ids it should have got, and any unexpected answer."""

    ids: frozenset[str]
    expected: frozenset[str]
    failure: str | None = None


async def _rest_list(http: httpx.AsyncClient, me: Side, them: Side) -> Seen:
    response = await http.get("/api/v1/contacts?limit=200", headers=me.user.headers)
    items = response.json().get("items", [])
    failure = None if response.status_code == 200 else f"list: {response.status_code}"
    return Seen(frozenset(item["id"] for item in items), me.contact_ids, failure)


async def _rest_get_mine(http: httpx.AsyncClient, me: Side, them: Side) -> Seen:
    rid = min(me.contact_ids)
    response = await http.get(f"/api/v1/contacts/{rid}", headers=me.user.headers)
    failure = None if response.status_code == 200 else f"get mine: {response.status_code}"
    return Seen(frozenset({response.json().get("id", "")}), frozenset({rid}), failure)


async def _rest_get_theirs(http: httpx.AsyncClient, me: Side, them: Side) -> Seen:
    rid = min(them.contact_ids)
    response = await http.get(f"/api/v1/contacts/{rid}", headers=me.user.headers)
    got = frozenset({rid}) if response.status_code != 404 else frozenset()
    failure = None if response.status_code == 404 else f"get theirs: {response.status_code}"
    return Seen(got, frozenset(), failure)


async def _graphql_list(http: httpx.AsyncClient, me: Side, them: Side) -> Seen:
    body = await gql(http, me.user, CONTACTS_QUERY)
    edges = (body.get("data") or {}).get("contacts", {}).get("edges", [])
    failure = f"graphql list: {body['errors']}" if "errors" in body else None
    return Seen(frozenset(edge["node"]["id"] for edge in edges), me.contact_ids, failure)


async def _graphql_get_both(http: httpx.AsyncClient, me: Side, them: Side) -> Seen:
    body = await gql(
        http,
        me.user,
        "query($mine: ID!, $theirs: ID!) { mine: contact(id: $mine) { id } "
        "theirs: contact(id: $theirs) { id } }",
        {"mine": min(me.contact_ids), "theirs": min(them.contact_ids)},
    )
    data = body.get("data") or {}
    got = frozenset(node["id"] for node in (data.get("mine"), data.get("theirs")) if node)
    failure = f"graphql get: {body['errors']}" if "errors" in body else None
    return Seen(got, frozenset({min(me.contact_ids)}), failure)


Probe = Callable[[httpx.AsyncClient, Side, Side], Awaitable[Seen]]
PROBES: list[Probe] = [
    _rest_list,
    _rest_get_mine,
    _rest_get_theirs,
    _graphql_list,
    _graphql_get_both,
]


async def test_interleaved_tenants_on_two_connections_never_see_foreign_rows(
    pool_of_two: App,
) -> None:
    app = pool_of_two
    sides = (await _side(app, "pool-a"), await _side(app, "pool-b"))
    # Request i is by A or B alternately; the probes rotate so both tenants run every kind.
    plan = [
        (sides[i % 2], sides[1 - i % 2], PROBES[(i // 2) % len(PROBES)]) for i in range(REQUESTS)
    ]

    foreign_rows = 0
    wrong_answers = 0
    failures: list[str] = []
    for start in range(0, REQUESTS, BATCH):
        batch = plan[start : start + BATCH]
        results = await asyncio.gather(*(probe(app.client, me, them) for me, them, probe in batch))
        for (_, them, _), seen in zip(batch, results, strict=True):
            foreign_rows += len(seen.ids & them.contact_ids)
            wrong_answers += int(seen.ids != seen.expected)
            failures += [seen.failure] if seen.failure else []

    assert foreign_rows == 0
    assert wrong_answers == 0
    assert failures == []
    # The pool really was two connections shared by both tenants, never more.
    assert app.watch.most_checked_out == 2
    assert app.watch.opened == 2


# -- failures inside a transaction, on a single connection ---------------------------------------
async def _stale_if_match(app: App, a: Side) -> None:
    rid = min(a.contact_ids)
    response = await app.client.patch(
        f"/api/v1/contacts/{rid}",
        json={"last_name": "Stale write"},
        headers={**a.user.headers, "If-Match": '"999"'},
    )
    assert response.status_code == 412, response.text


async def _unknown_account(app: App, a: Side) -> None:
    response = await app.client.post(
        "/api/v1/contacts",
        json={"last_name": "Dangling", "account_id": str(uuid.uuid4())},
        headers=a.user.headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "account_id"


async def _graphql_stale_version(app: App, a: Side) -> None:
    body = await gql(
        app.client,
        a.user,
        'mutation($id: ID!) { updateContact(input: {id: $id, version: 999, lastName: "Stale"}) '
        "{ contact { id } errors { field code } } }",
        {"id": min(a.contact_ids)},
    )
    assert body["data"]["updateContact"]["contact"] is None
    assert body["data"]["updateContact"]["errors"] != []


async def _graphql_write_then_not_found(app: App, a: Side) -> None:
    """A create that succeeds, then an update that fails: the operation rolls back whole."""
    body = await gql(
        app.client,
        a.user,
        "mutation($missing: ID!) { "
        'createContact(input: {lastName: "Half written"}) { contact { id } errors { code } } '
        'updateContact(input: {id: $missing, version: 1, lastName: "X"}) { contact { id } } }',
        {"missing": str(uuid.uuid4())},
    )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]


FAILURES: dict[str, Callable[[App, Side], Awaitable[None]]] = {
    "rest stale If-Match (412)": _stale_if_match,
    "rest unknown account (422)": _unknown_account,
    "graphql stale version": _graphql_stale_version,
    "graphql write then NOT_FOUND": _graphql_write_then_not_found,
}


async def _rest_ids(app: App, side: Side) -> set[str]:
    response = await app.client.get("/api/v1/contacts?limit=200", headers=side.user.headers)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def _graphql_ids(app: App, side: Side) -> set[str]:
    body = await gql(app.client, side.user, CONTACTS_QUERY)
    assert "errors" not in body, body
    return {edge["node"]["id"] for edge in body["data"]["contacts"]["edges"]}


@pytest.mark.parametrize("failure", list(FAILURES))
async def test_a_failed_request_leaves_the_single_connection_clean(
    pool_of_one: App, solo_sides: tuple[Side, Side], failure: str
) -> None:
    app = pool_of_one
    a, b = solo_sides
    before = {
        rid: (await app.client.get(f"/api/v1/contacts/{rid}", headers=a.user.headers)).json()
        for rid in a.contact_ids
    }

    await FAILURES[failure](app, a)

    # B, next on the one connection, sees exactly its own rows, through both skins.
    assert await _rest_ids(app, b) == set(b.contact_ids)
    assert await _graphql_ids(app, b) == set(b.contact_ids)
    # A's failed write left nothing behind: same rows, same versions.
    assert await _rest_ids(app, a) == set(a.contact_ids)
    after = {
        rid: (await app.client.get(f"/api/v1/contacts/{rid}", headers=a.user.headers)).json()
        for rid in a.contact_ids
    }
    assert after == before
    assert app.watch.most_checked_out == 1
    assert app.watch.checked_out == 0


# -- the same at the Database level ----------------------------------------------------------------
class Boom(Exception):
    pass


async def _raise_in_python(conn: AsyncConnection) -> None:
    raise Boom("application code failed mid-transaction")


async def _raise_in_sql(conn: AsyncConnection) -> None:
    await conn.execute(text("select 1 / 0"))


async def _raise_on_rls(conn: AsyncConnection) -> None:
    await conn.execute(
        text("insert into tenants (id, name, slug) values (:id, 'x', :slug)"),
        {"id": uuid.uuid4(), "slug": f"x-{uuid.uuid4().hex[:8]}"},
    )


EXPLOSIONS: dict[str, tuple[Callable[[AsyncConnection], Awaitable[None]], type[Exception]]] = {
    "python exception": (_raise_in_python, Boom),
    "sql error": (_raise_in_sql, DBAPIError),
    "rls violation": (_raise_on_rls, DBAPIError),
}


async def _clean_view(app: App) -> tuple[str, int, int]:
    """What a tenant-less transaction sees: the setting, the contacts, and its backend pid."""
    async with app.services.db.plain_transaction() as conn:
        setting = await conn.execute(text("select current_setting('app.tenant_id', true)"))
        count = await conn.execute(text("select count(*) from contacts"))
        pid = await conn.execute(text("select pg_backend_pid()"))
        return setting.scalar_one(), count.scalar_one(), pid.scalar_one()


@pytest.mark.parametrize("explosion", list(EXPLOSIONS))
async def test_exception_inside_tenant_transaction_leaves_no_tenant_behind(
    pool_of_one: App, solo_sides: tuple[Side, Side], explosion: str
) -> None:
    app = pool_of_one
    a, _ = solo_sides
    explode, expected = EXPLOSIONS[explosion]
    pids: list[int] = []
    counts: list[int] = []
    with pytest.raises(expected):
        async with app.services.db.tenant_transaction(a.user.tenant_id) as conn:
            pids.append((await conn.execute(text("select pg_backend_pid()"))).scalar_one())
            counts.append((await conn.execute(text("select count(*) from contacts"))).scalar_one())
            await explode(conn)

    assert counts == [CONTACTS_PER_TENANT]
    assert await _clean_view(app) == ("", 0, pids[0])  # the same connection, and clean


async def test_cancelled_tenant_transaction_leaves_no_tenant_behind(
    pool_of_one: App, solo_sides: tuple[Side, Side]
) -> None:
    app = pool_of_one
    a, _ = solo_sides
    inside = asyncio.Event()

    async def hold() -> None:
        async with app.services.db.tenant_transaction(a.user.tenant_id) as conn:
            inside.set()
            await conn.execute(text("select pg_sleep(10)"))

    task = asyncio.create_task(hold())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    setting, count, _ = await asyncio.wait_for(_clean_view(app), timeout=10)
    # The interrupted connection may be replaced by a fresh one (setting never defined: None).
    assert setting in ("", None)
    assert count == 0
