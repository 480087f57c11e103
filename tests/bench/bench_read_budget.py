"""Benchmark: one user's concurrent list pages with the read budget counted in per-connection
slots (the product) against one counter row per user (the design before: every page's upsert
waited for the previous page's COMMIT).

Same app process, same embedded PostgreSQL, same caller, same page (GET /api/v1/contacts of 50,
masked by field policy as usual); only the charge statement differs. `--concurrency` pages are
in flight at once; rounds are interleaved A-B-B-A so machine noise hits both alike, and the
figure is the ratio of throughputs, never an absolute time.

    uv run python -m tests.bench.bench_read_budget [--rounds 4] [--pages 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
from sqlalchemy import text

from backend.exports import budget
from tests.bench.inprocess import bench_app

SLOTTED = budget._CHARGE
ONE_ROW = text(
    budget._CHARGE_SQL.format(durability="set_config('synchronous_commit', 'off', true)", slots=1)
)


async def _pages_per_second(
    client: httpx.AsyncClient, headers: dict[str, str], pages: int, concurrency: int
) -> float:
    left = [pages]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            response = await client.get("/api/v1/contacts?limit=50", headers=headers)
            assert response.status_code == 200, response.text

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return pages / (time.perf_counter() - start)


async def run(rounds: int, pages: int, concurrency: int) -> None:
    async with bench_app() as bench:
        client, admin = bench.client, bench.admin
        for i in range(60):
            made = await client.post(
                "/api/v1/contacts", headers=admin, json={"last_name": f"Budget {i}"}
            )
            assert made.status_code == 201, made.text
        rates: dict[str, list[float]] = {"slots": [], "one row": []}
        statements = {"slots": SLOTTED, "one row": ONE_ROW}
        for mode in rates:  # warm both
            budget._CHARGE = statements[mode]
            await _pages_per_second(client, admin, 40, concurrency)
        for _ in range(rounds):
            for mode in ("slots", "one row", "one row", "slots"):
                budget._CHARGE = statements[mode]
                rates[mode].append(await _pages_per_second(client, admin, pages, concurrency))
        budget._CHARGE = SLOTTED
    slots, one = statistics.median(rates["slots"]), statistics.median(rates["one row"])
    print(f"{concurrency} concurrent pages of 50 by one user       pages/s (median)")
    print(f"  one counter row per user            {one:10.1f}")
    print(f"  a counter per connection slot       {slots:10.1f}")
    print(f"  ratio slots / one row               {slots / one:10.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.pages, args.concurrency))


if __name__ == "__main__":
    main()
