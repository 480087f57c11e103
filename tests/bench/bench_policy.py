"""Benchmark: the cost of field policy on a list of 50 contacts.

Same request (GET /api/v1/contacts?limit=50), same 50 rows, two callers: a salesperson
(record scope `own`, fields masked, one of them denied by a custom role) and a tenant admin
(no restriction). Rounds are interleaved A-B-B-A on one embedded PostgreSQL and one app
process, so machine noise hits both alike; the figure is the ratio, never an absolute time.

    uv run python -m tests.bench.bench_policy [--rounds 6] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

from backend.tenants.service import create_user
from tests.bench.inprocess import PASSWORD, bench_app, sign_in


async def _timed(client: httpx.AsyncClient, headers: dict[str, str], n: int) -> tuple[float, float]:
    """Wall and process-CPU seconds per request over n sequential requests."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        response = await client.get("/api/v1/contacts", params={"limit": 50}, headers=headers)
        assert response.status_code == 200 and len(response.json()["items"]) == 50
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


async def run(rounds: int, requests: int) -> None:
    async with bench_app() as bench:
        services, client, admin = bench.services, bench.client, bench.admin
        await create_user(
            services.db, tenant_slug="bench", email="rep@bench.example", password=PASSWORD
        )
        rep = await sign_in(client, "rep@bench.example")
        # A custom role on top of salesperson that hides email: a real mask to apply.
        role = await client.post(
            "/api/v1/roles",
            headers=admin,
            json={
                "name": "no_email",
                "rules": [{"effect": "deny", "object": "contact.email", "action": "*"}],
            },
        )
        roles = {
            r["name"]: r["id"]
            for r in (await client.get("/api/v1/roles", headers=admin)).json()["items"]
        }
        assert role.status_code == 201, role.text
        for i in range(50):
            made = await client.post(
                "/api/v1/contacts",
                headers=rep,
                json={
                    "first_name": f"F{i}",
                    "last_name": f"Rep{i}",
                    "email": f"r{i}@x.example",
                },
            )
            assert made.status_code == 201
        rep_id = made.json()["owner_id"]
        assign = await client.put(
            f"/api/v1/users/{rep_id}/roles",
            headers=admin,
            json={"role_ids": [roles["salesperson"], roles["no_email"]]},
        )
        assert assign.status_code == 200, assign.text
        for i in range(50):  # the admin's list holds 50 rows too (its first 50 by id)
            await client.post("/api/v1/contacts", headers=admin, json={"last_name": f"A{i}"})
        await _timed(client, rep, 20)
        await _timed(client, admin, 20)  # warm both caches
        masked: list[float] = []
        free: list[float] = []
        masked_cpu: list[float] = []
        free_cpu: list[float] = []
        for _ in range(rounds):  # A-B-B-A
            for who, walls, cpus in (
                (rep, masked, masked_cpu),
                (admin, free, free_cpu),
                (admin, free, free_cpu),
                (rep, masked, masked_cpu),
            ):
                wall, cpu = await _timed(client, who, requests)
                walls.append(wall)
                cpus.append(cpu)
        report(free, free_cpu, masked, masked_cpu)


def report(
    free: list[float], free_cpu: list[float], masked: list[float], masked_cpu: list[float]
) -> None:
    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1e3:8.2f} ms"

    def ratio(a: list[float], b: list[float]) -> str:
        return f"{statistics.median(a) / statistics.median(b):8.2f}x "

    print("list 50 contacts        wall per request    app CPU per request  (medians)")
    print(f"  unrestricted admin    {ms(free)}         {ms(free_cpu)}")
    print(f"  masked salesperson    {ms(masked)}         {ms(masked_cpu)}")
    print(f"  ratio masked / free   {ratio(masked, free)}         {ratio(masked_cpu, free_cpu)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.requests))


if __name__ == "__main__":
    main()
