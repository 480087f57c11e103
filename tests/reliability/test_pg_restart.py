"""PostgreSQL restarted under load, with a real `caravan serve` in front of it.

This module owns its own embedded cluster (restarting the session's one would break every other
test). Two tenants read their contacts concurrently while the cluster is restarted with
`pg_ctl restart -m fast`: every answer is either the caller's own records or a 503
problem+json `database_unavailable` with Retry-After (never a 500, never a stack trace, never
the other tenant's rows), and the pool recovers within a bounded window.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from backend.app import create_app
from backend.db.embedded import EmbeddedPostgres
from backend.db.migrate import migrate
from backend.runtime import build_services
from tests.conftest import Cluster, TenantUser, make_settings, new_tenant
from tests.reliability import processes
from tests.security.figures import count

RECOVERY_WINDOW = 15.0  # seconds after the restart within which reads must succeed again
CONTACTS = 5


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[Cluster]:
    data_dir = Path(tempfile.mkdtemp(prefix="caravan-restart-"))
    os.chmod(data_dir, 0o711)  # noqa: S103 - the server user must traverse it
    pg = EmbeddedPostgres(data_dir)
    port = pg.start()
    try:
        urls = asyncio.run(pg.bootstrap(port, database="caravan_restart"))
        asyncio.run(migrate(urls.owner_url, "caravan_app"))
        yield Cluster(pg=pg, urls=urls, data_dir=data_dir)
    finally:
        pg.stop()


@dataclass(frozen=True)
class Side:
    user: TenantUser
    ids: frozenset[str]


@pytest.fixture(scope="module")
async def sides(own_cluster: Cluster) -> AsyncIterator[tuple[Side, Side]]:
    services = build_services(make_settings(own_cluster), own_cluster.urls.app_url)
    transport = httpx.ASGITransport(app=create_app(services))  # type: ignore[arg-type]
    made = []
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for label in ("restart-a", "restart-b"):
                user = await new_tenant(services, http, label)
                ids = set()
                for n in range(CONTACTS):
                    response = await http.post(
                        "/api/v1/contacts", json={"last_name": f"{label}-{n}"}, headers=user.headers
                    )
                    assert response.status_code == 201, response.text
                    ids.add(response.json()["id"])
                made.append(Side(user, frozenset(ids)))
        yield made[0], made[1]
    finally:
        await services.db.dispose()


@dataclass
class Seen:
    answers: int = 0
    unavailable: int = 0  # 503s
    ok_after_restart: float | None = None  # seconds from the restart's end to a 200
    wrong: list[str] = field(default_factory=list)  # answers that break the rules


async def _read_loop(
    http: httpx.AsyncClient, me: Side, them: Side, restarted: list[float], stop: asyncio.Event
) -> Seen:
    seen = Seen()
    while not stop.is_set():
        response = await http.get("/api/v1/contacts?limit=200", headers=me.user.headers)
        seen.answers += 1
        if response.status_code == 200:
            got = {item["id"] for item in response.json()["items"]}
            if got & them.ids or got != me.ids:
                seen.wrong.append(f"200 with {sorted(got)}")
            if restarted and seen.ok_after_restart is None:
                seen.ok_after_restart = time.monotonic() - restarted[0]
        elif response.status_code != 503:
            seen.wrong.append(f"{response.status_code}: {response.text[:300]}")
        else:
            seen.unavailable += 1
            body = response.json()
            kind = response.headers.get("content-type", "")
            if (
                body.get("code") != "database_unavailable"
                or not kind.startswith("application/problem+json")
                or not response.headers.get("retry-after")
                or "Traceback" in response.text
            ):
                seen.wrong.append(f"503 {dict(response.headers)} {response.text[:300]}")
        await asyncio.sleep(0.01)
    return seen


QUERY = "{ contacts(first: 200) { edges { node { id } } } }"


async def _graphql_loop(
    http: httpx.AsyncClient, me: Side, them: Side, restarted: list[float], stop: asyncio.Event
) -> Seen:
    """The same over GraphQL: own rows, or errors that say SERVICE_UNAVAILABLE (with a 503 when
    the outage is met before execution, e.g. by the token's revocation check, or the REST 503
    problem when it is met before the GraphQL layer)."""
    seen = Seen()
    while not stop.is_set():
        response = await http.post("/graphql", json={"query": QUERY}, headers=me.user.headers)
        seen.answers += 1
        body = response.json()
        before_graphql = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
        if response.status_code == 503 and (
            body.get("code") == "database_unavailable" or before_graphql == {"SERVICE_UNAVAILABLE"}
        ):
            seen.unavailable += 1
        elif response.status_code != 200 or "Traceback" in response.text:
            seen.wrong.append(f"{response.status_code}: {response.text[:300]}")
        elif body.get("errors"):
            codes = {e.get("extensions", {}).get("code") for e in body["errors"]}
            if codes != {"SERVICE_UNAVAILABLE"}:
                seen.wrong.append(f"graphql errors {body['errors']}")
            seen.unavailable += 1
        else:
            got = {e["node"]["id"] for e in body["data"]["contacts"]["edges"]}
            if got != me.ids:
                seen.wrong.append(f"graphql 200 with {sorted(got)}")
            if restarted and seen.ok_after_restart is None:
                seen.ok_after_restart = time.monotonic() - restarted[0]
        await asyncio.sleep(0.01)
    return seen


def _restart(pg: EmbeddedPostgres) -> None:
    # -l again: a restart does not remember the log file, and the server would otherwise hold
    # pg_ctl's output pipe open forever.
    log = str(pg.cluster_dir / "server.log")
    result = pg._run(
        "pg_ctl", "restart", "-m", "fast", "-w", "-t", "60", "-D", str(pg.cluster_dir), "-l", log
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
async def test_postgres_restart_under_load_recovers_without_leaks_or_500s(
    own_cluster: Cluster, sides: tuple[Side, Side]
) -> None:
    a, b = sides
    server = processes.serve("restart", own_cluster.urls.app_url, own_cluster.data_dir)
    restarted: list[float] = []
    stop = asyncio.Event()
    try:
        async with processes.client(server) as http:
            loops = [
                asyncio.create_task(loop(http, me, them, restarted, stop))
                for me, them in ((a, b), (b, a))
                for loop in (_read_loop, _read_loop, _graphql_loop)
            ]
            await asyncio.sleep(1.0)
            await asyncio.to_thread(_restart, own_cluster.pg)
            restarted.append(time.monotonic())
            count("faults_injected")
            deadline = time.monotonic() + RECOVERY_WINDOW
            while time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                if all(loop.done() for loop in loops):
                    break
                # Stop once every loop has read its own rows again after the restart.
                if time.monotonic() - restarted[0] > 2.0:
                    break
            stop.set()
            seen = await asyncio.gather(*loops)
        wrong = [w for s in seen for w in s.wrong]
        assert wrong == [], wrong[:5]
        recovered = [s.ok_after_restart for s in seen]
        assert all(r is not None and r < RECOVERY_WINDOW for r in recovered), recovered
        # The outage was seen (otherwise this test proves nothing about it).
        assert sum(s.unavailable for s in seen) > 0, seen
        # The server process itself lived through it.
        assert server.process.poll() is None
        count("faults_survived")
    finally:
        server.stop()
