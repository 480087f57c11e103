"""Benchmark: the cost of the per-request revocation check on get-by-id.

Same request (GET /api/v1/contacts/{id}), same caller, same token, in one app process on one
embedded PostgreSQL; the only difference is whether the access-token check consults the
revocation list (the product's path) or skips it. The list holds `--revoked` revoked sessions,
so the figure includes a realistic (large) in-memory list. Rounds are interleaved A-B-B-A so
machine noise hits both alike; the figure is the ratio, never an absolute time. The check alone
is also timed (a cache hit: two set lookups and a clock read).

    uv run python -m tests.bench.bench_revocation [--rounds 6] [--requests 300] [--revoked 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

from backend.auth.revocation import RevocationList, revoke_sessions
from backend.db.ids import uuid7
from tests.bench.inprocess import bench_app


async def _timed(
    client: httpx.AsyncClient, headers: dict[str, str], path: str, n: int
) -> tuple[float, float]:
    """Wall and process-CPU seconds per request over n sequential requests."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        response = await client.get(path, headers=headers)
        assert response.status_code == 200
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


async def _check_alone(revocations: RevocationList, token_claims: dict[str, object]) -> float:
    """Seconds per check of a live token against the loaded list."""
    n = 200_000
    start = time.perf_counter()
    for _ in range(n):
        await revocations.fresh()
        assert not revocations.refuses(token_claims)
    return (time.perf_counter() - start) / n


async def run(rounds: int, requests: int, revoked: int) -> None:
    async with bench_app() as bench:
        services, client, admin = bench.services, bench.client, bench.admin
        revocations = services.tokens.revocations
        assert revocations is not None
        made = await client.post("/api/v1/contacts", headers=admin, json={"last_name": "Bench"})
        assert made.status_code == 201, made.text
        path = f"/api/v1/contacts/{made.json()['id']}"
        async with services.db.plain_transaction() as conn:  # other devices' revocations
            for start in range(0, revoked, 1000):
                await revoke_sessions(conn, [uuid7() for _ in range(min(1000, revoked - start))])
        await revocations.reload()
        token = admin["Authorization"].removeprefix("Bearer ")
        claims = services.tokens.verified_claims(token)

        def checking(on: bool) -> None:
            services.tokens.revocations = revocations if on else None

        for on in (True, False):  # warm both paths
            checking(on)
            await _timed(client, admin, path, 30)
        walls: dict[bool, list[float]] = {True: [], False: []}
        cpus: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(rounds):
            for on in (True, False, False, True):
                checking(on)
                wall, cpu = await _timed(client, admin, path, requests)
                walls[on].append(wall)
                cpus[on].append(cpu)
        checking(True)
        alone = await _check_alone(revocations, claims)
        report(walls, cpus, alone, revoked)


def report(
    walls: dict[bool, list[float]], cpus: dict[bool, list[float]], alone: float, revoked: int
) -> None:
    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1e3:8.3f} ms"

    def ratio(a: list[float], b: list[float]) -> str:
        return f"{statistics.median(a) / statistics.median(b):8.3f}x "

    print(f"get by id ({revoked} revoked sessions listed)   wall per request    app CPU (medians)")
    print(f"  without the revocation check   {ms(walls[False])}         {ms(cpus[False])}")
    print(f"  with the revocation check      {ms(walls[True])}         {ms(cpus[True])}")
    print(
        f"  ratio with / without           {ratio(walls[True], walls[False])}"
        f"         {ratio(cpus[True], cpus[False])}"
    )
    print(f"  the check alone                {alone * 1e9:8.0f} ns")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--revoked", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.requests, args.revoked))


if __name__ == "__main__":
    main()
