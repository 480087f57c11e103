"""The report's arithmetic: growth per 10x is scaled to one decade and flagged above 1.3x,
goals compare same-run ratios, and a cell whose endpoint is missing says so."""

from __future__ import annotations

from typing import Any

from tests.bench.harness import CellResult
from tests.bench.report import goals, render, slopes


def _step(label: str, tenants: int, rows: int, cpu: float, axes: list[str]) -> dict[str, Any]:
    figures = {"REST": {"cpu_us": cpu, "p50_1": 1.0, "rps": 100.0}}
    return {
        "label": label,
        "axes": axes,
        "tenants": tenants,
        "rows": rows,
        "cells": {"get_by_id": figures, "page": figures},
        "explain": {"get by id": "Index Scan pk_contacts"},
        "idle_cpu_ms_per_s": 1.0,
    }


def test_growth_is_scaled_per_decade_and_flagged_above_1_3() -> None:
    growth = [
        _step("10k rows", 10, 10_000, 100.0, ["rows"]),
        _step("1M rows", 10, 1_000_000, 169.0, ["rows"]),  # 1.69x over two decades: 1.3x each
        _step("10M rows", 10, 10_000_000, 300.0, ["rows"]),  # 1.78x in one decade
    ]
    found = {(s["from"], s["figure"], s["scenario"]): s for s in slopes(growth)}
    two_decades = found[(10_000, "cpu_us", "get_by_id")]
    assert round(two_decades["per_10x"], 2) == 1.3 and not two_decades["flag"]
    assert found[(1_000_000, "cpu_us", "page")]["flag"]
    assert not found[(10_000, "p50_1", "page")]["flag"]


def test_goals_are_ratios_and_missing_endpoints_are_not_available() -> None:
    get = CellResult("get", "get_by_id")
    get.figures = {
        "REST": {"rps": 500.0, "cpu_us": 1000.0},
        "B1 asyncpg": {"rps": 1000.0, "cpu_us": 500.0},
    }
    sync = CellResult("sync", "sync", available=False, note="not available yet (404)")
    verdicts = {g["goal"]: g for g in goals({"get_by_id": get, "sync": sync}, {})}
    assert verdicts["REST get-by-id throughput vs B1"]["met"] is True  # 0.5 >= 0.4
    assert verdicts["REST get-by-id CPU/req vs B1"]["met"] is True  # 2.0 <= 2.5
    assert verdicts["delta sync 1,000 vs B0, p50 at 1 conn"]["met"] is None
    table = render(
        {
            "mode": "smoke",
            "server": "uvicorn",
            "loadgen": "python",
            "started": "now",
            "seconds": 1.0,
            "machine": "test",
            "cells": [get, sync],
            "growth": [],
            "memory": {},
        }
    )
    assert "not available yet (404)" in table and "| met |" in table
