"""Benchmark: streamed exports of 100k rows, and the read budget's cost on a list page.

1. The same 100k contacts (7 columns) read three ways in one run: a bare asyncpg cursor (the
   floor: rows off the wire, nothing else), then a full export per format through the API
   (decision, streamed cursor, writer, watermark, AES-GCM to disk). Printed: seconds, the
   ratio to the cursor, and memory: peak Python heap (tracemalloc) and peak RSS growth
   (VmHWM after resetting it via /proc/self/clear_refs) while the export ran.
2. GET /api/v1/contacts?limit=50 with the budget charged (the real path) and with the charge
   replaced by a no-op (this script only), interleaved A-B-B-A; printed as a ratio.

    uv run python -m tests.bench.bench_export [--rows 100000] [--rounds 3] [--requests 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from backend.exports.read_hook import READ_BUDGET
from backend.records.hooks import read_hook, register_read_hook
from tests.bench.inprocess import bench_app

FIELDS = ["id", "first_name", "last_name", "email", "phone", "title", "city"]


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


async def _measure(work: Callable[[], Awaitable[Any]]) -> tuple[float, float, float]:
    """Seconds, peak Python heap MiB, peak RSS growth MiB while `work` runs."""
    _reset_peak_rss()
    rss_before = _kib("VmRSS")
    tracemalloc.start()
    started = time.perf_counter()
    await work()
    seconds = time.perf_counter() - started
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, heap_peak / 2**20, max(0, _kib("VmHWM") - rss_before) / 1024


async def _seed(owner_url: str, tenant_id: str, owner_id: str, rows: int) -> None:
    conn = await asyncpg.connect(_dsn(owner_url))
    try:
        async with conn.transaction():
            await conn.execute("select set_config('app.tenant_id', $1, true)", tenant_id)
            await conn.execute(
                """
                insert into contacts (tenant_id, id, owner_id, first_name, last_name, email,
                                      phone, title, city)
                select $1::uuid, gen_random_uuid(), $2::uuid, 'First' || n, 'Last' || n,
                       'person' || n || '@example.com', '+49 30 ' || n, 'Buyer', 'Berlin'
                from generate_series(1, $3::int) as n
                """,
                tenant_id,
                owner_id,
                rows,
            )
    finally:
        await conn.close()


async def _cursor_read(app_url: str, tenant_id: str) -> int:
    conn = await asyncpg.connect(_dsn(app_url))
    count = 0
    try:
        async with conn.transaction():
            await conn.execute("select set_config('app.tenant_id', $1, true)", tenant_id)
            columns = ", ".join(FIELDS)  # constants of this script
            query = f"select {columns} from contacts where tenant_id = $1 order by id"  # noqa: S608
            async for _ in conn.cursor(query, tenant_id, prefetch=1000):
                count += 1
    finally:
        await conn.close()
    return count


async def _list_pages(client: httpx.AsyncClient, headers: dict[str, str], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        response = await client.get("/api/v1/contacts", params={"limit": 50}, headers=headers)
        assert response.status_code == 200 and len(response.json()["items"]) == 50
    return (time.perf_counter() - started) / n


async def run(rows: int, rounds: int, requests: int) -> None:
    async with bench_app() as bench:
        client, headers, urls = bench.client, bench.admin, bench.urls
        tenant_id = str(bench.tenant_id)
        await _seed(urls.owner_url, tenant_id, str(bench.admin_id), rows)

        print(f"export of {rows} contacts x {len(FIELDS)} fields (one run, same rows)")
        print("                       seconds   x cursor   heap peak   RSS peak growth")
        counted: list[int] = []

        async def cursor() -> None:
            counted.append(await _cursor_read(urls.app_url, tenant_id))

        base, heap, rss = await _measure(cursor)
        assert counted == [rows]
        print(f"  asyncpg cursor      {base:8.2f}   {1:7.2f}x  {heap:7.1f} MiB  {rss:7.1f} MiB")
        for fmt in ("csv", "jsonl", "xlsx"):
            answers: list[httpx.Response] = []

            async def export(fmt: str = fmt, answers: list[httpx.Response] = answers) -> None:
                answers.append(
                    await client.post(
                        "/api/v1/exports",
                        headers=headers,
                        json={"entity": "contacts", "format": fmt, "fields": FIELDS},
                    )
                )

            seconds, heap, rss = await _measure(export)
            body = answers[0].json()
            assert answers[0].status_code == 201 and body["row_count"] == rows, body
            print(
                f"  export {fmt:5}        {seconds:8.2f}   {seconds / base:7.2f}x  "
                f"{heap:7.1f} MiB  {rss:7.1f} MiB   file {body['file_size'] / 2**20:.1f} MiB"
            )

        charge = read_hook(READ_BUDGET)  # swapped for a free hook below
        assert charge is not None

        async def free(*_: Any) -> None:
            return None

        await _list_pages(client, headers, 20)  # warm up
        charged: list[float] = []
        uncharged: list[float] = []
        for _ in range(rounds):  # A-B-B-A
            for with_budget in (True, False, False, True):
                register_read_hook(READ_BUDGET, charge if with_budget else free)
                (charged if with_budget else uncharged).append(
                    await _list_pages(client, headers, requests)
                )
        register_read_hook(READ_BUDGET, charge)
        with_ms = statistics.median(charged) * 1e3
        without_ms = statistics.median(uncharged) * 1e3
        print("list 50 contacts       wall per request (median)")
        print(f"  budget charged      {with_ms:8.2f} ms")
        print(f"  budget not charged  {without_ms:8.2f} ms")
        print(f"  ratio with / without {with_ms / without_ms:7.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.rounds, args.requests))


if __name__ == "__main__":
    main()
