"""The scenarios: each builds one cell (the product next to its baselines), measures it with the
harness, checks a response's shape and bytes, and probes for cross-tenant leaks (tenant A's ids
asked for with tenant B's token must all be 404 / null)."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from tests.bench import baseline_app as b
from tests.bench.harness import CellResult, Variant
from tests.bench.load import Request
from tests.bench.measure import sizes, status_kb
from tests.bench.servers import worker_pids

if TYPE_CHECKING:
    from tests.bench.stack import Stack

CONTACT_FIELDS = "id firstName lastName title phone tags version createdAt updatedAt"
GQL_ONE = "query One($id: ID!) { contact(id: $id) { %s } }" % CONTACT_FIELDS  # noqa: UP031
GQL_PAGE = (
    "{ contacts(first: 50) { edges { node { %s } } pageInfo { hasNextPage endCursor } } }"  # noqa: UP031
    % CONTACT_FIELDS
)
GQL_NESTED = (
    "{ accounts(first: %d) { edges { node { id name contacts(first: %d) { edges { node { id"
    " lastName opportunities(first: %d) { edges { node { id name stage amount } } } } } } } } } }"
)
UNAVAILABLE = (404, 405)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _gql(query: str, headers: dict[str, str], variables: dict[str, Any] | None = None) -> Request:
    body: dict[str, Any] = {"query": query}
    if variables:
        body["variables"] = variables
    return Request("POST", "/graphql", {**headers, "Content-Type": "application/json"}, _json(body))


async def _send(port: int, r: Request) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        return await client.request(
            r.method,
            r.path,
            headers={**r.headers, "Accept-Encoding": "identity"},
            content=r.body or None,
        )


async def _sample(cell: CellResult, port: int, r: Request) -> dict[str, Any]:
    """One request outside the load: its status, GraphQL errors, and bytes raw and gzipped."""
    response = await _send(port, r)
    assert 200 <= response.status_code < 300, (cell.name, response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert not body.get("errors"), (cell.name, body["errors"])
    cell.bytes_raw, cell.bytes_gzip = sizes(response.content)
    return body


async def leak_probe(stack: Stack, ids: list[uuid.UUID], *, graphql: bool = False) -> str:
    """Tenant A's records with tenant B's token: every one must be 'not found'."""
    refused = 0
    for key in ids:
        got = await _send(
            stack.product.port, Request("GET", f"/api/v1/contacts/{key}", stack.b_headers)
        )
        if got.status_code != 404:
            return f"LEAK: GET {key} answered {got.status_code}"
        refused += 1
        if graphql:
            q = await _send(stack.product.port, _gql(GQL_ONE, stack.b_headers, {"id": str(key)}))
            if (q.json().get("data") or {}).get("contact") is not None:
                return f"LEAK: GraphQL contact({key})"
            refused += 1
    listed = await _send(
        stack.product.port, Request("GET", "/api/v1/contacts?limit=200", stack.b_headers)
    )
    leaked = {str(i) for i in ids} & {item["id"] for item in listed.json()["items"]}
    if leaked:
        return f"LEAK: B's list holds {len(leaked)} of A's ids"
    return f"ok ({refused + 1} refused)"


def _cycle(values: list[Any]) -> Callable[[], Any]:
    it = itertools.cycle(values)
    return lambda: next(it)


def _b0(stack: Stack, work: Callable[[Any], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    """B0: the same SQL through an asyncpg pool in this process, no HTTP."""

    async def op() -> Any:
        async with stack.b0_pool.acquire() as conn:
            return await work(conn)

    return op


def _b1(stack: Stack, name: str, requests: list[Request]) -> Variant:
    return Variant(name, requests, stack.baseline.port, stack.baseline.pid)


def _product(stack: Stack, name: str, requests: list[Request]) -> Variant:
    return Variant(name, requests, stack.product.port, stack.product.pid)


async def get_by_id(stack: Stack, name: str = "get contact by id", full: bool = True) -> CellResult:
    cell = CellResult(name, "get_by_id")
    ids = stack.sample_ids
    t = stack.tenant_a
    rest = [Request("GET", f"/api/v1/contacts/{i}", stack.rep_headers) for i in ids]
    q = f"tenant={t}"
    variants = [
        _product(stack, "REST", rest),
        _b1(stack, "B1 asyncpg", [Request("GET", f"/b1/contacts/{i}?{q}") for i in ids]),
    ]
    if full:
        variants += [
            _product(
                stack,
                "GraphQL",
                [_gql(GQL_ONE, stack.rep_headers, {"id": str(i)}) for i in ids[:200]],
            ),
            _b1(stack, "B1 no RLS", [Request("GET", f"/b1n/contacts/{i}?{q}") for i in ids]),
        ]
        nxt = _cycle(ids)
        variants += [
            Variant("B0 asyncpg", direct=_b0(stack, lambda c: b.read_one(c, t, nxt()))),
            _b1(stack, "B2 ping", [Request("GET", "/b2/ping")]),
        ]
    await _sample(cell, stack.product.port, rest[0])
    cell.figures = await stack.harness.run(variants)
    cell.leak_probe = await leak_probe(stack, ids[:3], graphql=full)
    return cell


async def page(stack: Stack, name: str = "page of 50, masked", full: bool = True) -> CellResult:
    cell = CellResult(name, "page")
    t, o = stack.tenant_a, stack.rep_a
    rest = [Request("GET", "/api/v1/contacts?limit=50", stack.rep_headers)]
    q = f"tenant={t}&owner={o}&limit=50"
    variants = [
        _product(stack, "REST", rest),
        _b1(stack, "B1 asyncpg", [Request("GET", f"/b1/contacts?{q}")]),
    ]
    if full:
        variants += [
            _product(stack, "GraphQL", [_gql(GQL_PAGE, stack.rep_headers)]),
            _b1(stack, "B1 no RLS", [Request("GET", f"/b1n/contacts?{q}")]),
            Variant("B0 asyncpg", direct=_b0(stack, lambda c: b.read_page(c, t, o, 50))),
        ]
    body = await _sample(cell, stack.product.port, rest[0])
    items = body["items"]
    assert len(items) == 50 and all(item.get("email") is None for item in items), "not masked"
    cell.figures = await stack.harness.run(variants)
    cell.leak_probe = await leak_probe(stack, stack.sample_ids[:2])
    return cell


async def create(stack: Stack) -> CellResult:
    cell = CellResult("create contact + history", "create")
    t, o = stack.tenant_a, stack.rep_a
    payload = {"first_name": "Bench", "last_name": "Created", "title": "Buyer"}
    headers = {**stack.rep_headers, "Content-Type": "application/json"}
    rest = [Request("POST", "/api/v1/contacts", headers, _json(payload))]
    base = [
        Request(
            "POST",
            f"/b1/contacts?tenant={t}&owner={o}",
            {"Content-Type": "application/json"},
            _json(payload),
        )
    ]
    variants = [
        _product(stack, "REST", rest),
        _b1(stack, "B1 two INSERTs", base),
        Variant(
            "B0 two INSERTs", direct=_b0(stack, lambda c: b.create_two_inserts(c, t, o, payload))
        ),
    ]
    created = await _sample(cell, stack.product.port, rest[0])
    history = await _send(
        stack.product.port,
        Request("GET", f"/api/v1/contacts/{created['id']}/history", stack.rep_headers),
    )
    cell.note = f"history endpoint {history.status_code}"
    cell.figures = await stack.harness.run(variants)
    cell.leak_probe = await leak_probe(stack, [uuid.UUID(created["id"])])
    return cell


async def nested(stack: Stack) -> CellResult:
    cell = CellResult("GraphQL accounts>contacts>opportunities 10x10x5", "nested")
    big = _gql(GQL_NESTED % (10, 10, 5), stack.rep_headers)
    body = await _sample(cell, stack.product.port, big)
    accounts = body["data"]["accounts"]["edges"]
    deals = sum(
        len(c["node"]["opportunities"]["edges"])
        for a in accounts
        for c in a["node"]["contacts"]["edges"]
    )
    small, large = await stack.count_statements(GQL_NESTED % (2, 2, 2), GQL_NESTED % (10, 10, 5))
    constant = small == large
    cell.extra["statements"] = {"2x2x2": small, "10x10x5": large}
    cell.note = (
        f"{len(accounts)} accounts, {deals} deals; SQL statements 2x2x2={small}, "
        f"10x10x5={large}: {'constant' if constant else 'GROWS'}"
    )
    cell.extra["constant_statements"] = constant
    cell.figures = await stack.harness.run([_product(stack, "GraphQL", [big])])
    cell.leak_probe = await leak_probe(stack, stack.sample_ids[:1], graphql=True)
    return cell


async def sync(stack: Stack) -> CellResult:
    cell = CellResult("delta sync, 1,000 changed records", "sync")
    t, o = stack.tenant_a, stack.rep_a
    rest = [Request("GET", "/api/v1/sync?entities=contacts&limit=1000", stack.rep_headers)]
    probe = await _send(stack.product.port, rest[0])
    if probe.status_code in UNAVAILABLE:
        cell.available = False
        cell.note = f"not available yet (GET /api/v1/sync answered {probe.status_code})"
        return cell
    body = await _sample(cell, stack.product.port, rest[0])
    cell.note = f"{len(body.get('changes', []))} changes in the first page"
    cell.figures = await stack.harness.run(
        [
            _product(stack, "REST sync", rest),
            _b1(
                stack,
                "B1 asyncpg",
                [Request("GET", f"/b1/changes?tenant={t}&owner={o}&limit=1000")],
            ),
            Variant(
                "B0 asyncpg",
                direct=_b0(stack, lambda c: b.read_page(c, t, o, 1000, b.CHANGED)),
            ),
        ]
    )
    cell.leak_probe = await leak_probe(stack, stack.sample_ids[:1])
    return cell


async def _cursor_csv(stack: Stack, limit: int) -> tuple[float, int]:
    """The baseline: the same rows through an asyncpg cursor into CSV, in this process."""
    start = time.perf_counter()
    rows = 0
    async with stack.b0_pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(stack.tenant_a))
        out = io.StringIO()
        writer = csv.writer(out)
        async for row in conn.cursor(
            "SELECT first_name, last_name, title FROM contacts WHERE tenant_id = $1 LIMIT $2",
            stack.tenant_a,
            limit,
        ):
            writer.writerow(row)
            rows += 1
            if out.tell() > 1 << 20:
                out = io.StringIO()
                writer = csv.writer(out)
    return time.perf_counter() - start, rows


async def export(stack: Stack, rows: int) -> CellResult:
    cell = CellResult(f"export {rows:,} rows (CSV, streamed)", "export")
    headers = {**stack.admin_headers, "Content-Type": "application/json"}
    fields = ["first_name", "last_name", "title"]
    request = Request(
        "POST",
        "/api/v1/exports",
        headers,
        _json({"entity": "contacts", "format": "csv", "fields": fields}),
    )
    pids = worker_pids(stack.product)
    rss_before = sum(status_kb(p, "VmRSS") for p in pids)
    hwm_before = max(status_kb(p, "VmHWM") for p in pids)
    start = time.perf_counter()
    made = await _send(stack.product.port, request)
    if made.status_code in UNAVAILABLE:
        cell.available = False
        cell.note = f"not available yet (POST /api/v1/exports answered {made.status_code})"
        return cell
    if made.status_code != 201:
        cell.note = f"POST /api/v1/exports answered {made.status_code}: {made.text[:120]}"
        cell.figures = {"REST export": {"non_2xx": 1.0}}
        return cell
    export_id = made.json()["id"]
    url = ""
    for _ in range(600):  # the file may be generated in the background
        link = await _send(
            stack.product.port, Request("POST", f"/api/v1/exports/{export_id}/link", headers)
        )
        if link.status_code in (200, 201):
            url = link.json()["url"]
            break
        await asyncio.sleep(0.1)
    if not url:
        cell.note = f"no download link for export {export_id} within 60 s"
        cell.figures = {"REST export": {"non_2xx": 1.0}}
        return cell
    streamed = 0
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.product.port}", timeout=300) as c,
        c.stream("GET", url, headers=stack.admin_headers) as response,
    ):
        async for chunk in response.aiter_bytes():
            streamed += len(chunk)
        status = response.status_code
    product_s = time.perf_counter() - start
    baseline_s, base_rows = await _cursor_csv(stack, rows)
    rss_after = sum(status_kb(p, "VmRSS") for p in pids)
    hwm_after = max(status_kb(p, "VmHWM") for p in pids)
    growth_mb = max(hwm_after - hwm_before, rss_after - rss_before, 0) / 1024
    cell.bytes_raw = streamed
    cell.note = f"{streamed:,} bytes in {product_s:.2f} s; RSS growth {growth_mb:.1f} MB"
    cell.figures = {
        "REST export": {"seconds": product_s, "non_2xx": float(not 200 <= status < 300)},
        "B0 asyncpg cursor": {"seconds": baseline_s, "rows": float(base_rows), "non_2xx": 0.0},
    }
    cell.extra["rss_growth_mb"] = growth_mb
    return cell


async def servers(stack: Stack) -> CellResult:
    """The same REST read under uvicorn and granian (one worker each)."""
    cell = CellResult("get by id: uvicorn vs granian", "servers")
    assert stack.alt_product is not None
    ids = stack.sample_ids
    rest = [Request("GET", f"/api/v1/contacts/{i}", stack.rep_headers) for i in ids]
    await _sample(cell, stack.product.port, rest[0])
    await _sample(cell, stack.alt_product.port, rest[0])
    cell.figures = await stack.harness.run(
        [
            _product(stack, f"REST ({stack.server_kind})", rest),
            Variant(
                f"REST ({stack.alt_kind})", rest, stack.alt_product.port, stack.alt_product.pid
            ),
        ]
    )
    cell.leak_probe = await leak_probe(stack, ids[:1])
    return cell
