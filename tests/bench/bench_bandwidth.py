"""Benchmark: bytes on the wire for a phone's page of 50 activities, by bandwidth feature.

Byte counts, not times (they do not depend on machine noise): one page as sent plainly, gzipped
and brotli-compressed; the same page with a sparse fieldset; a revalidation answered 304; and
the GraphQL request body for the mobile app's checked-in operation, as a document vs. as a
persisted-query hash. Every figure is reported as a ratio to the plain full page (or request).

    uv run python -m tests.bench.bench_bandwidth [--records 50]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json

import httpx

from backend.api.gql.persisted import OPERATIONS_DIR
from tests.bench.inprocess import bench_app

SPARSE = "kind,subject,starts_at,completed_at"


async def _wire_bytes(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> int:
    async with client.stream("GET", path, headers=headers) as response:
        assert response.status_code in (200, 304), response.status_code
        return sum([len(c) async for c in response.aiter_raw()])


async def run(records: int) -> None:
    async with bench_app() as bench:
        client, auth = bench.client, bench.admin
        for i in range(records):
            made = await client.post(
                "/api/v1/activities",
                headers=auth,
                json={
                    "kind": "call" if i % 2 else "meeting",
                    "subject": f"Follow-up {i} on the fleet offer",
                    "notes": "Asked for a quote on the spring order; call back on Tuesday.",
                    "starts_at": f"2027-01-{1 + i % 28:02d}T09:30:00+01:00",
                    "remind_minutes_before": 15,
                },
            )
            assert made.status_code == 201, made.text
        page = f"/api/v1/activities?limit={records}"
        plain = {**auth, "Accept-Encoding": "identity"}
        full = await _wire_bytes(client, page, plain)
        figures = {
            "gzip": await _wire_bytes(client, page, {**auth, "Accept-Encoding": "gzip"}),
            "brotli": await _wire_bytes(client, page, {**auth, "Accept-Encoding": "br"}),
            "sparse": await _wire_bytes(client, f"{page}&fields={SPARSE}", plain),
            "sparse + brotli": await _wire_bytes(
                client, f"{page}&fields={SPARSE}", {**auth, "Accept-Encoding": "br"}
            ),
        }
        etag = (await client.get(page, headers=auth)).headers["etag"]
        figures["304 revalidation"] = await _wire_bytes(
            client, page, {**plain, "If-None-Match": etag}
        )
        document = (OPERATIONS_DIR / "MyActivities.graphql").read_text(encoding="utf-8")
        as_document = len(json.dumps({"query": document, "variables": {}}).encode())
        digest = hashlib.sha256(document.encode()).hexdigest()
        as_hash = len(
            json.dumps(
                {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
            ).encode()
        )
    print(f"page of {records} activities, plain JSON: {full} bytes")
    for name, size in figures.items():
        print(f"  {name:<18} {size:>7} bytes  ratio {size / full:.3f}")
    print(
        f"GraphQL request: document {as_document} bytes, persisted hash {as_hash} bytes"
        f"  ratio {as_hash / as_document:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=50)
    asyncio.run(run(parser.parse_args().records))


if __name__ == "__main__":
    main()
