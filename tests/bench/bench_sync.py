"""Benchmark: a day's delta sync against fetching the changed records one by one, and the sync
read against the same SQL through raw asyncpg (B0).

A salesperson's phone last synced yesterday; since then N records it holds changed. It can
fetch the day's changes in one delta sync (GET /api/v1/sync, 1000 per page), or fetch each
changed record by id (GET /api/v1/contacts/{id}). Both go through the whole app (JWT, policy,
RLS, masking) in process over ASGI; round trips, response bytes (raw and gzip) and wall time
are reported as ratios from one run, interleaved A-B-B-A. B0 runs the sync read's statements
(snapshot xmin, changed ids from the history, the records) through asyncpg on one connection
with the tenant set, no HTTP and no policy: the floor the service read is compared with.

    uv run python -m tests.bench.bench_sync [--records 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import statistics
import time
import uuid
from dataclasses import dataclass, field

import asyncpg
import httpx

from backend.context import Principal, RequestContext
from backend.crm.contacts.service import contacts
from backend.sync import cursor as cursors
from backend.sync.pull import read_changes
from tests.bench.inprocess import bench_app

PAGE = 1000
GZIP_MINIMUM = 1024


@dataclass
class Transfer:
    round_trips: int = 0
    raw_bytes: int = 0
    gzip_bytes: int = 0
    seconds: list[float] = field(default_factory=list)

    def add(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.text
        self.round_trips += 1
        self.raw_bytes += len(response.content)
        # As the server sends it: gzip for responses of 1 KB and more (backend/app.py).
        body = response.content
        self.gzip_bytes += len(gzip.compress(body)) if len(body) >= GZIP_MINIMUM else len(body)


async def _delta(client: httpx.AsyncClient, headers: dict[str, str], cursor: str) -> Transfer:
    moved = Transfer()
    start = time.perf_counter()
    changes = 0
    while True:
        response = await client.get(
            "/api/v1/sync", params={"cursor": cursor, "limit": PAGE}, headers=headers
        )
        moved.add(response)
        page = response.json()
        changes += len(page["changes"])
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    moved.seconds.append(time.perf_counter() - start)
    assert changes >= 1, "the day's changes must come"
    return moved


async def _one_by_one(
    client: httpx.AsyncClient, headers: dict[str, str], ids: list[str]
) -> Transfer:
    moved = Transfer()
    start = time.perf_counter()
    for record_id in ids:
        moved.add(await client.get(f"/api/v1/contacts/{record_id}", headers=headers))
    moved.seconds.append(time.perf_counter() - start)
    return moved


async def _b0(dsn: str, tenant_id: uuid.UUID, since: int, limit: int) -> float:
    """The sync read's statements on a raw asyncpg connection: seconds for one read."""
    conn = await asyncpg.connect(dsn)
    try:
        start = time.perf_counter()
        async with conn.transaction():
            await conn.execute("select set_config('app.tenant_id', $1, true)", str(tenant_id))
            await conn.fetchval("select (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint")
            rows = await conn.fetch(
                "select entity, record_id, max(txid) as last from record_history"
                " where tenant_id = $1 and txid >= $2 and entity = any($3::text[])"
                " group by entity, record_id order by last, entity, record_id limit $4",
                tenant_id,
                since,
                ["account", "contact", "opportunity"],
                limit + 1,
            )
            ids = [r["record_id"] for r in rows if r["entity"] == "contact"]
            records = await conn.fetch(
                "select * from contacts where tenant_id = $1 and id = any($2::uuid[])",
                tenant_id,
                ids,
            )
        elapsed = time.perf_counter() - start
        assert len(records) == len(ids)
        return elapsed
    finally:
        await conn.close()


async def _service_read(ctx: RequestContext, cursor: cursors.SyncCursor, limit: int) -> float:
    start = time.perf_counter()
    async with ctx.session.transaction() as conn:
        page = await read_changes(ctx, conn, None, cursor, limit)
    elapsed = time.perf_counter() - start
    assert page.changes and not page.reset
    return elapsed


async def run(records: int, rounds: int) -> None:
    async with bench_app() as bench:
        services, client, headers = bench.services, bench.client, bench.admin
        urls = bench.urls
        principal = Principal(user_id=bench.admin_id, tenant_id=bench.tenant_id)
        ctx = RequestContext(principal, services.db, "system")
        made = [
            await contacts.create(ctx, {"last_name": f"S{i}", "email": f"s{i}@x.example"})
            for i in range(records)
        ]
        # Yesterday's sync: the phone's cursor.
        first = await client.get("/api/v1/sync", params={"limit": PAGE}, headers=headers)
        cursor = first.json()["cursor"]
        while first.json()["has_more"]:
            first = await client.get(
                "/api/v1/sync", params={"cursor": cursor, "limit": PAGE}, headers=headers
            )
            cursor = first.json()["cursor"]
        yesterday = cursors.decode(cursor)
        since = yesterday.since
        assert since is not None
        # The day: every record changes once.
        for record in made:
            await contacts.update(ctx, record["id"], {"title": "Changed"}, record["version"])
        ids = [str(r["id"]) for r in made]

        await _delta(client, headers, cursor)
        await _one_by_one(client, headers, ids[:20])  # warm both paths
        delta, single = Transfer(), Transfer()
        service_s: list[float] = []
        raw_s: list[float] = []
        for _ in range(rounds):  # A-B-B-A
            for kind in ("delta", "single", "single", "delta"):
                if kind == "delta":
                    delta = _merge(delta, await _delta(client, headers, cursor))
                else:
                    single = _merge(single, await _one_by_one(client, headers, ids))
        # The read alone, service vs B0: cheap, so more rounds; a collection before each
        # sample keeps the garbage of the HTTP passes out of both.
        dsn = _dsn(urls.app_url)
        for _ in range(rounds * 5):  # A-B-B-A
            for read in ("service", "raw", "raw", "service"):
                gc.collect()
                if read == "service":
                    service_s.append(await _service_read(ctx, yesterday, PAGE))
                else:
                    raw_s.append(await _b0(dsn, bench.tenant_id, since, PAGE))
    _report(records, delta, single, service_s, raw_s)


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _merge(total: Transfer, one: Transfer) -> Transfer:
    """Round trips and bytes of one pass (they do not vary); the wall times of all passes."""
    return Transfer(one.round_trips, one.raw_bytes, one.gzip_bytes, total.seconds + one.seconds)


def _report(
    records: int, delta: Transfer, single: Transfer, service_s: list[float], raw_s: list[float]
) -> None:
    d_wall, s_wall = statistics.median(delta.seconds), statistics.median(single.seconds)
    print(f"a day's sync of {records} changed contacts       delta sync   one by one   ratio")
    print(
        f"  round trips                            {delta.round_trips:10d} {single.round_trips:12d}"
        f" {single.round_trips / delta.round_trips:8.1f}x"
    )
    print(
        f"  response bytes, raw                    {delta.raw_bytes:10d} {single.raw_bytes:12d}"
        f" {single.raw_bytes / delta.raw_bytes:8.2f}x"
    )
    print(
        f"  response bytes, gzip (>= 1 KB, as sent){delta.gzip_bytes:10d} {single.gzip_bytes:12d}"
        f" {single.gzip_bytes / delta.gzip_bytes:8.2f}x"
    )
    print(
        f"  wall time (median), ms                 {d_wall * 1e3:10.1f} {s_wall * 1e3:12.1f}"
        f" {s_wall / d_wall:8.1f}x"
    )
    service, raw = statistics.median(service_s), statistics.median(raw_s)
    print("sync read of the day's changes (no HTTP)   read_changes   B0 asyncpg   ratio")
    print(
        f"  wall time (median), ms                 {service * 1e3:10.1f} {raw * 1e3:12.1f}"
        f" {service / raw:8.2f}x"
    )
    print(
        f"  delta sync over HTTP vs B0             {d_wall * 1e3:10.1f} {raw * 1e3:12.1f}"
        f" {d_wall / raw:8.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(run(args.records, args.rounds))


if __name__ == "__main__":
    main()
