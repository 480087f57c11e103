"""Servers whose clocks disagree: one `caravan serve` on the real clock, others shifted with
libfaketime (the Debian `faketime` package; LD_PRELOAD, so the whole process sees the shift).

Tokens: within the leeway (30 s) a token issued by a fast server is accepted by the others;
beyond it (4 minutes ahead) it is refused with a clear 401 problem, not a 500; a slow server
accepts tokens issued "in its future" only within the leeway too. Sync cursors are database
transaction ids, so pulling alternately through servers with different clocks neither skips
nor repeats a change.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.bench.servers import Server, wait_ready
from tests.conftest import PASSWORD, Cluster, TenantUser, new_tenant
from tests.reliability import processes
from tests.security.figures import count

pytestmark = pytest.mark.slow  # three server processes to start

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def _skewed(cluster: Cluster, name: str, offset: str) -> Server:
    # Monotonic time is shifted too: libfaketime 0.9.10 breaks sleep() when told not to.
    env = {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": offset}
    return processes.launch(name, cluster.urls.app_url, cluster.data_dir, env)


@pytest.fixture(scope="module")
def servers(cluster: Cluster) -> Iterator[dict[str, Server]]:
    if not LIBFAKETIME.exists():
        pytest.skip("libfaketime is not installed (apt-get install faketime)")
    started: dict[str, Server] = {}
    try:
        started["real"] = processes.launch("clock-real", cluster.urls.app_url, cluster.data_dir)
        started["ahead_20s"] = _skewed(cluster, "clock-20s", "+20s")
        started["ahead_4m"] = _skewed(cluster, "clock-4m", "+4m")
        for server in started.values():
            wait_ready(server, "/health")
        yield started
    finally:
        for server in started.values():
            server.stop()


async def _sign_in(server: Server, user: TenantUser) -> str:
    async with processes.client(server) as http:
        response = await http.post(
            "/auth/sign-in", json={"tenant": user.slug, "email": user.email, "password": PASSWORD}
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def _read(server: Server, token: str) -> httpx.Response:
    async with processes.client(server) as http:
        return await http.get("/api/v1/contacts", headers={"Authorization": f"Bearer {token}"})


async def test_tokens_cross_skewed_servers_within_the_leeway_and_are_refused_clearly_beyond(
    services: Services, client: httpx.AsyncClient, servers: dict[str, Server]
) -> None:
    user = await new_tenant(services, client, "skew-tokens")
    real, near, far = servers["real"], servers["ahead_20s"], servers["ahead_4m"]
    count("faults_injected")
    # 20 s ahead is inside the 30 s leeway, both ways.
    assert (await _read(real, await _sign_in(near, user))).status_code == 200
    assert (await _read(near, await _sign_in(real, user))).status_code == 200
    # A server 4 minutes behind the issuer sees a token from its future: refused, clearly.
    refused = await _read(real, await _sign_in(far, user))
    assert refused.status_code == 401, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "Traceback" not in refused.text
    # A token from a server 4 minutes behind is simply older: accepted (its exp is 30 min on).
    assert (await _read(far, await _sign_in(real, user))).status_code == 200
    count("faults_survived")


async def _pull(server: Server, token: str, cursor: str | None) -> tuple[list[dict[str, Any]], str]:
    changes: list[dict[str, Any]] = []
    async with processes.client(server) as http:
        while True:
            params = {"cursor": cursor} if cursor else {}
            response = await http.get(
                "/api/v1/sync", params=params, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200, response.text
            page = response.json()
            changes.extend(page["changes"])
            cursor = page["cursor"]
            if not page["has_more"]:
                assert cursor is not None
                return changes, cursor


async def _create(server: Server, token: str, name: str) -> str:
    async with processes.client(server) as http:
        response = await http.post(
            "/api/v1/contacts",
            json={"last_name": name},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_sync_cursors_neither_skip_nor_repeat_across_skewed_servers(
    services: Services, client: httpx.AsyncClient, servers: dict[str, Server]
) -> None:
    user = await new_tenant(services, client, "skew-sync")
    real, far = servers["real"], servers["ahead_4m"]
    token = await _sign_in(real, user)  # accepted by both (see above)
    count("faults_injected")
    _, cursor = await _pull(real, token, None)
    order = [(real, far), (far, real), (real, real), (far, far), (far, real), (real, far)]
    for n, (writer, reader) in enumerate(order):
        made = await _create(writer, token, f"skew-{n}-{uuid.uuid4().hex[:6]}")
        changes, cursor = await _pull(reader, token, cursor)
        ids = [c["id"] for c in changes]
        assert ids == [made], (n, changes)  # exactly the new one: nothing skipped or repeated
    tail, _ = await _pull(real, token, cursor)
    assert tail == []
    count("faults_survived")
