"""One command for every benchmark: seeds, serves, measures, writes the table.

    uv run python -m tests.bench --smoke | --full [--only NAMES] [--loadgen wrk|python]
                                 [--server uvicorn|granian]

Writes tests/bench/results/latest.md and latest.json (or --out DIR). Figures are never
pass/fail here: the table says which goals are met. Non-2xx answers and leaks are errors."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench import scenarios, seed, stack
from tests.bench.harness import FULL, SMOKE, CellResult
from tests.bench.load import Request, have_wrk, python_load
from tests.bench.measure import status_kb
from tests.bench.report import as_json, render
from tests.bench.servers import worker_pids

NAMES = ("get_by_id", "page", "nested", "sync", "create", "servers", "growth", "export", "memory")
RESULTS = Path(__file__).parent / "results"


async def _growth_step(s: stack.Stack, label: str, axes: list[str], tenants: int) -> dict[str, Any]:
    async with s.superuser() as conn:
        rows = await seed.count_contacts(conn, s.tenant_a)
    get = await scenarios.get_by_id(s, f"get by id @ {label}", full=False)
    _observed(s, get)
    page = await scenarios.page(s, f"page of 50 @ {label}", full=False)
    _observed(s, page)
    return {
        "label": label,
        "axes": axes,
        "tenants": tenants,
        "rows": rows,
        "cells": {"get_by_id": get.figures, "page": page.figures},
        "non_2xx": get.non_2xx + page.non_2xx,
        "leaks": [c.leak_probe for c in (get, page) if c.leak_probe.startswith("LEAK")],
        "explain": await s.explain(),
        "db": {"get_by_id": get.extra.get("db"), "page": page.extra.get("db")},
        "idle_cpu_ms_per_s": await s.harness.idle(s.product.pid),
    }


def _observed(s: stack.Stack, cell: CellResult) -> None:
    """The database's state during the cell just run (tests/bench/dbstate.py)."""
    if s.harness.last_db is not None:
        cell.extra["db"] = asdict(s.harness.last_db)
        s.harness.last_db = None


async def _memory(s: stack.Stack, requests: int) -> dict[str, float]:
    rest = [Request("GET", f"/api/v1/contacts/{i}", s.rep_headers) for i in s.sample_ids]
    pids = worker_pids(s.product)
    before = sum(status_kb(p, "VmRSS") for p in pids)
    done = await python_load(s.product.port, rest, connections=8, seconds=600, limit=requests)
    after = sum(status_kb(p, "VmRSS") for p in pids)
    return {
        "drift_requests": float(done.requests),
        "drift_mb": (after - before) / 1024,
        "drift_non_2xx": float(done.non_2xx),
    }


def _peaks(s: stack.Stack) -> dict[str, float]:
    def peak(server: Any) -> float:
        return max(status_kb(p, "VmHWM") for p in worker_pids(server)) / 1024

    return {"product_peak_mb": peak(s.product), "baseline_peak_mb": peak(s.baseline)}


async def run(
    mode: str,
    only: set[str],
    loadgen: str,
    server: str,
    out: Path,
    log: Callable[[str], None] = print,
    max_rows: int = 10**9,
) -> dict[str, Any]:
    sizes = stack.FULL_SIZES if mode == "full" else stack.SMOKE_SIZES
    timing = FULL if mode == "full" else SMOKE
    began = time.monotonic()
    want = only or set(NAMES)
    log(f"[bench] {mode}: building the stack ({server}, load from {loadgen})")
    s = await stack.build(sizes, timing, loadgen, server, alt="servers" in want)
    cells: list[CellResult] = []
    growth: list[dict[str, Any]] = []
    memory: dict[str, float] = {}
    try:

        async def cell(name: str, make: Callable[[], Awaitable[CellResult]]) -> None:
            if name in want:
                log(f"[bench] {name} ({time.monotonic() - began:.0f} s)")
                made = await make()
                _observed(s, made)
                cells.append(made)

        await s.set_tenants(sizes.tenants[0], sizes.other_rows)
        await cell("get_by_id", lambda: scenarios.get_by_id(s))
        await cell("page", lambda: scenarios.page(s))
        await cell("nested", lambda: scenarios.nested(s))
        await cell("sync", lambda: scenarios.sync(s))
        await cell("create", lambda: scenarios.create(s))
        if "create" in want:  # the created rows must not change tenant A's size for growth
            async with s.superuser() as conn:
                await conn.execute(
                    "DELETE FROM contacts WHERE tenant_id = $1 AND last_name = 'Created'",
                    s.tenant_a,
                )
            await s.settle()
        await cell("servers", lambda: scenarios.servers(s))
        if "growth" in want:
            few, many = sizes.tenants
            log(f"[bench] growth: tenants {few} ({time.monotonic() - began:.0f} s)")
            growth.append(await _growth_step(s, f"{few} tenants", ["tenants"], few))
            await s.set_tenants(many, sizes.other_rows)
            log(f"[bench] growth: tenants {many} ({time.monotonic() - began:.0f} s)")
            growth.append(await _growth_step(s, f"{many:,} tenants", ["tenants", "rows"], many))
            for rows in [r for r in sizes.row_steps if r <= max_rows]:
                log(f"[bench] growth: rows {rows:,} ({time.monotonic() - began:.0f} s)")
                await s.grow_rows(rows)
                await s.refresh_sample(sizes.sample_ids)
                growth.append(await _growth_step(s, f"{rows:,} rows", ["rows"], many))
                exported = any(c.scenario == "export" for c in cells)
                if rows >= sizes.export_rows and "export" in want and not exported:
                    await cell("export", lambda: scenarios.export(s, sizes.export_rows))
        if "export" in want and not any(c.scenario == "export" for c in cells):
            await cell("export", lambda: scenarios.export(s, sizes.export_rows))
        if "memory" in want:
            log(f"[bench] memory ({time.monotonic() - began:.0f} s)")
            memory = await _memory(s, sizes.drift_requests)
        memory.update(_peaks(s))
    finally:
        await s.close()
    results: dict[str, Any] = {
        "mode": mode,
        "server": server,
        "loadgen": loadgen,
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.monotonic() - began,
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "cells": cells,
        "growth": growth,
        "memory": memory,
    }
    write(out, results)
    log(f"[bench] wrote {out / 'latest.md'} ({results['seconds']:.0f} s)")
    return results


def write(out: Path, results: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.md").write_text(render(results))
    (out / "latest.json").write_text(json.dumps(as_json(results), indent=1, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--smoke", action="store_true", help="seconds, tiny sizes")
    size.add_argument("--full", action="store_true", help="the developer's run (<= 25 min)")
    parser.add_argument("--only", default="", help=f"comma-separated: {','.join(NAMES)}")
    parser.add_argument("--loadgen", choices=("wrk", "python"), default=None)
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--max-rows", type=int, default=10**9, help="skip larger row steps")
    args = parser.parse_args()
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    unknown = only - set(NAMES)
    if unknown:
        parser.error(f"unknown names: {', '.join(sorted(unknown))}")
    loadgen = args.loadgen or ("wrk" if have_wrk() else "python")
    if loadgen == "wrk" and not have_wrk():
        parser.error("wrk is not installed (apt-get install -y wrk), or use --loadgen python")
    results = asyncio.run(
        run(
            "full" if args.full else "smoke",
            only,
            loadgen,
            args.server,
            args.out,
            max_rows=args.max_rows,
        )
    )
    bad = [c.name for c in results["cells"] if c.non_2xx or c.leak_probe.startswith("LEAK")]
    if bad:
        raise SystemExit(f"non-2xx answers or leaks in: {', '.join(bad)}")


if __name__ == "__main__":
    main()
