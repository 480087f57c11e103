"""kill -9 of a real `caravan serve` in the middle of writes.

Creates (each with its own Idempotency-Key and a unique marker) and updates run concurrently
against the server process; it is SIGKILLed while they are in flight and started again. Then:
every write answered 2xx before the kill is in the database (rows_lost), every record has
exactly its history (one transaction of history rows per version, none for a record that does
not exist), and retrying every create with its same key creates no second record (duplicates).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import httpx

from backend.runtime import Services
from tests.bench.servers import Server
from tests.conftest import Cluster, new_tenant
from tests.reliability import processes
from tests.reliability.processes import kill9, serve, superuser
from tests.security.figures import count

CREATES = 240
WORKERS = 12
UPDATERS = 4
KILL_AFTER = 40  # answered creates before the kill


@dataclass
class Outcome:
    answered: dict[str, str] = field(default_factory=dict)  # marker -> id (2xx before the kill)
    tried: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)  # record id -> last version answered
    enough: asyncio.Event = field(default_factory=asyncio.Event)  # time to kill


async def _creates(
    http: httpx.AsyncClient, headers: dict[str, str], queue: asyncio.Queue[str], out: Outcome
) -> None:
    while not queue.empty():
        marker = queue.get_nowait()
        out.tried.append(marker)
        try:
            response = await http.post(
                "/api/v1/contacts",
                json={"last_name": marker},
                headers={**headers, "Idempotency-Key": marker},
            )
        except httpx.HTTPError:
            return  # the server is gone
        if response.status_code == 201:
            out.answered[marker] = response.json()["id"]
            if len(out.answered) >= KILL_AFTER:
                out.enough.set()


async def _updates(
    http: httpx.AsyncClient, headers: dict[str, str], record: str, out: Outcome
) -> None:
    version = 1
    for n in range(1000):
        try:
            response = await http.patch(
                f"/api/v1/contacts/{record}",
                json={"first_name": f"v{n}"},
                headers={**headers, "If-Match": f'"{version}"'},
            )
        except httpx.HTTPError:
            return
        assert response.status_code == 200, response.text
        version = response.json()["version"]
        out.versions[record] = version


async def _killer(out: Outcome, server: Server) -> None:
    await out.enough.wait()
    kill9(server)


async def test_kill9_mid_write_loses_nothing_and_retries_make_no_duplicates(
    cluster: Cluster, services: Services, client: httpx.AsyncClient
) -> None:
    run = uuid.uuid4().hex[:8]
    me = await new_tenant(services, client, "kill9")
    server = serve("kill9", cluster.urls.app_url, cluster.data_dir)
    out = Outcome()
    try:
        async with processes.client(server) as http:
            records = []
            for n in range(UPDATERS):
                made = await http.post(
                    "/api/v1/contacts", json={"last_name": f"upd-{run}-{n}"}, headers=me.headers
                )
                assert made.status_code == 201, made.text
                records.append(made.json()["id"])
            queue: asyncio.Queue[str] = asyncio.Queue()
            for i in range(CREATES):
                queue.put_nowait(f"k9-{run}-{i}")
            await asyncio.gather(
                *(_creates(http, me.headers, queue, out) for _ in range(WORKERS)),
                *(_updates(http, me.headers, record, out) for record in records),
                _killer(out, server),
            )
        assert server.process.returncode is not None
        assert len(out.answered) < CREATES, "the kill came too late to cut anything off"
        count("faults_injected")

        server = serve("kill9-again", cluster.urls.app_url, cluster.data_dir)
        async with superuser(cluster) as db:
            rows = await db.fetch(
                "SELECT id::text, last_name, version FROM contacts WHERE tenant_id = $1",
                me.tenant_id,
            )
            by_marker: dict[str, list[str]] = {}
            for row in rows:
                by_marker.setdefault(row["last_name"], []).append(row["id"])
            version_of = {row["id"]: row["version"] for row in rows}
            lost = [m for m, rid in out.answered.items() if rid not in version_of]
            lost += [r for r, v in out.versions.items() if version_of.get(r, 0) < v]
            count("rows_lost", len(lost))
            assert lost == [], lost
            # History all or nothing: one writing transaction per version, nothing orphaned.
            history = await db.fetch(
                "SELECT record_id::text AS id, count(DISTINCT txid) AS writes FROM record_history"
                " WHERE tenant_id = $1 AND entity = 'contact' GROUP BY record_id",
                me.tenant_id,
            )
            writes = {row["id"]: row["writes"] for row in history}
            assert set(writes) == set(version_of), "history without its record or vice versa"
            assert writes == version_of
            # A claim its killed request left pending is taken over once its 60 s lock
            # lapses: let it lapse now rather than wait a minute.
            await db.execute(
                "UPDATE idempotency_keys SET locked_until = now() WHERE tenant_id = $1"
                " AND state IN ('pending', 'applied')",
                me.tenant_id,
            )

        answer_lost: list[str] = []
        async with processes.client(server) as http:
            for marker in out.tried:
                retry = await http.post(
                    "/api/v1/contacts",
                    json={"last_name": marker},
                    headers={**me.headers, "Idempotency-Key": marker},
                )
                if retry.status_code == 409:
                    # Its work committed, its answer died with the process: not run again.
                    assert retry.json()["code"] == "idempotency_answer_lost", retry.text
                    answer_lost.append(marker)
                    continue
                assert retry.status_code == 201, retry.text
                if marker in out.answered:
                    assert retry.json()["id"] == out.answered[marker]

        async with superuser(cluster) as db:
            got = await db.fetch(
                "SELECT last_name, count(*) AS n FROM contacts WHERE tenant_id = $1"
                " AND last_name LIKE $2 GROUP BY last_name",
                me.tenant_id,
                f"k9-{run}-%",
            )
        duplicates = sum(row["n"] - 1 for row in got)
        count("duplicates", duplicates)
        assert duplicates == 0, [row["last_name"] for row in got if row["n"] > 1]
        assert {row["last_name"] for row in got} == set(out.tried)
        # Every record whose answer was lost is there, once.
        assert set(answer_lost) <= {row["last_name"] for row in got}
        count("faults_survived")
    finally:
        server.stop()
