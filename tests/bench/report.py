"""The run's results as one Markdown table (plus goals, growth slopes, plans and memory) and
as JSON. Every figure that matters is a ratio to a baseline measured in the same run."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict
from typing import Any

from tests.bench.harness import CellResult

GROWTH_LIMIT = 1.3  # per 10x
RSS_LIMIT_MB = 150.0


def _f(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def _fig(cells: dict[str, CellResult], cell: str, variant: str, key: str) -> float | None:
    found = cells.get(cell)
    if found is None or not found.available:
        return None
    return found.figures.get(variant, {}).get(key)


# (goal, cell, variant a, variant b, figure, "min" or "max", target)
GOALS: list[tuple[str, str, str, str, str, str, float]] = [
    ("REST get-by-id throughput vs B1", "get_by_id", "REST", "B1 asyncpg", "rps", "min", 0.40),
    ("REST get-by-id CPU/req vs B1", "get_by_id", "REST", "B1 asyncpg", "cpu_us", "max", 2.5),
    ("REST masked page of 50 throughput vs B1", "page", "REST", "B1 asyncpg", "rps", "min", 0.50),
    (
        "RLS: get-by-id with / without policies",
        "get_by_id",
        "B1 asyncpg",
        "B1 no RLS",
        "rps",
        "min",
        0.85,
    ),
    ("RLS: page with / without policies", "page", "B1 asyncpg", "B1 no RLS", "rps", "min", 0.95),
    ("GraphQL vs REST, one object", "get_by_id", "GraphQL", "REST", "rps", "min", 0.6),
    ("GraphQL vs REST, page of 50", "page", "GraphQL", "REST", "rps", "min", 0.4),
    (
        "create + history vs two-INSERT txn (B1), CPU/req",
        "create",
        "REST",
        "B1 two INSERTs",
        "cpu_us",
        "max",
        1.5,
    ),
    (
        "delta sync 1,000 vs B0, p50 at 1 conn",
        "sync",
        "REST sync",
        "B0 asyncpg",
        "p50_1",
        "max",
        3.0,
    ),
    (
        "export vs asyncpg cursor, seconds",
        "export",
        "REST export",
        "B0 asyncpg cursor",
        "seconds",
        "max",
        2.0,
    ),
]


def goals(cells: dict[str, CellResult], extra: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for label, cell, a, b, key, kind, target in GOALS:
        value = _ratio(_fig(cells, cell, a, key), _fig(cells, cell, b, key))
        met = None if value is None else (value >= target if kind == "min" else value <= target)
        out.append(
            {
                "goal": label,
                "value": value,
                "target": f"{'>=' if kind == 'min' else '<='} {target}",
                "met": met,
            }
        )
    export = cells.get("export")
    if export is not None and export.available and "rss_growth_mb" in export.extra:
        growth = float(export.extra["rss_growth_mb"])
        out.append(
            {
                "goal": "export RSS growth (MB)",
                "value": growth,
                "target": "<= 32",
                "met": growth <= 32,
            }
        )
    peak = extra.get("product_peak_mb")
    if peak is not None:
        out.append(
            {
                "goal": "peak RSS per product worker (MB)",
                "value": peak,
                "target": f"<= {RSS_LIMIT_MB:.0f}",
                "met": peak <= RSS_LIMIT_MB,
            }
        )
    return out


def slopes(growth: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per 10x growth on each axis: the REST cost ratio between steps, scaled to one decade."""
    out: list[dict[str, Any]] = []
    for axis, size_key in (("tenants", "tenants"), ("rows", "rows")):
        steps = [g for g in growth if axis in g["axes"]]
        for before, after in itertools.pairwise(steps):
            decades = math.log10(after[size_key] / before[size_key]) if before[size_key] else 0
            for scenario in ("get_by_id", "page"):
                for key in ("cpu_us", "p50_1"):
                    a = before["cells"][scenario]["REST"].get(key)
                    b = after["cells"][scenario]["REST"].get(key)
                    raw = _ratio(b, a)
                    if raw is None or decades <= 0:
                        continue
                    per = raw ** (1 / decades)
                    out.append(
                        {
                            "axis": axis,
                            "from": before[size_key],
                            "to": after[size_key],
                            "scenario": scenario,
                            "figure": key,
                            "ratio": raw,
                            "per_10x": per,
                            "flag": per > GROWTH_LIMIT,
                        }
                    )
    return out


def _row(cell: CellResult, variant: str, f: dict[str, float], base: dict[str, float] | None) -> str:
    vs = "-"
    if base is not None and base is not f:
        rps = _ratio(f.get("rps"), base.get("rps"))
        vs = f"{_f(rps, 2)} / {_f(_ratio(f.get('cpu_us'), base.get('cpu_us')), 2)}"
    return (
        f"| {cell.name} | {variant} | {_f(f.get('rps'))}"
        f" | {_f(f.get('p50_1'), 2)} / {_f(f.get('p99_1'), 2)}"
        f" | {_f(f.get('p50_half'), 2)} / {_f(f.get('p99_half'), 2)}"
        f" | {_f(f.get('server_us'))} + {_f(f.get('db_us'))} | {vs}"
        f" | {cell.bytes_raw:,} / {cell.bytes_gzip:,}"
        f" | {int(f.get('non_2xx', 0))} | {cell.leak_probe} |"
    )


def _baseline_of(cell: CellResult) -> dict[str, float] | None:
    for name, figures in cell.figures.items():
        if name.startswith("B1"):
            return figures
    return None


def render(results: dict[str, Any]) -> str:
    cells: dict[str, CellResult] = {c.scenario: c for c in results["cells"]}
    lines = [
        f"# Caravan benchmark ({results['mode']}, {results['server']}, load: {results['loadgen']})",
        "",
        f"Run {results['started']}, {results['seconds']:.0f} s, on {results['machine']}. "
        "Latencies in ms, CPU in microseconds per request (schedstat: server process + PostgreSQL "
        "backends). `vs B1` = req/s ratio / CPU ratio to the raw-asyncpg endpoint in the same "
        "server. Figures are medians over interleaved rounds (A B C C B A).",
        "",
        "| cell | variant | req/s (32 conn) | p50 / p99 1 conn | p50 / p99 half load"
        " | CPU us/req server + db"
        " | vs B1 (req/s / CPU) | bytes raw / gzip | non-2xx | leak probe |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for cell in results["cells"]:
        if not cell.available:
            lines.append(f"| {cell.name} | - | {cell.note} | | | | | | 0 | - |")
            continue
        base = _baseline_of(cell)
        for variant, f in cell.figures.items():
            if "seconds" in f:  # one-shot cells (export)
                lines.append(
                    f"| {cell.name} | {variant} | {_f(f['seconds'], 2)} s | | | |"
                    f" | {cell.bytes_raw:,} / - |"
                    f" {int(f.get('non_2xx', 0))} | {cell.leak_probe} |"
                )
            else:
                lines.append(_row(cell, variant, f, base))
    notes = [f"- {c.name}: {c.note}" for c in results["cells"] if c.note]
    if notes:
        lines += ["", *notes]
    lines += [
        "",
        "## Goals (ratios to same-run baselines)",
        "",
        "| goal | measured | target | |",
        "|---|---:|---|---|",
    ]
    for g in goals(cells, results.get("memory", {})):
        verdict = "not available yet" if g["met"] is None else ("met" if g["met"] else "**missed**")
        lines.append(f"| {g['goal']} | {_f(g['value'], 2)} | {g['target']} | {verdict} |")
    lines += [
        "",
        "## Growth (REST, per 10x; flagged above 1.3x)",
        "",
        "| step | tenants | rows of tenant A | get-by-id req/s, CPU us, p50"
        " | page req/s, CPU us, p50 | idle CPU ms/s | EXPLAIN (RLS) |",
        "|---|---:|---:|---|---|---:|---|",
    ]
    for g in results["growth"]:
        parts = []
        for scenario in ("get_by_id", "page"):
            f = g["cells"][scenario]["REST"]
            parts.append(f"{_f(f.get('rps'))}, {_f(f.get('cpu_us'))}, {_f(f.get('p50_1'), 2)}")
        plans = "; ".join(f"{k}: {v}" for k, v in g["explain"].items())
        lines.append(
            f"| {g['label']} | {g['tenants']:,} | {g['rows']:,} | {parts[0]} | {parts[1]}"
            f" | {_f(g.get('idle_cpu_ms_per_s'), 1)} | {plans} |"
        )
    lines += [
        "",
        "| axis | from -> to | scenario | figure | ratio | per 10x | |",
        "|---|---|---|---|---:|---:|---|",
    ]
    for s in slopes(results["growth"]):
        flag = "**above 1.3x**" if s["flag"] else "ok"
        lines.append(
            f"| {s['axis']} | {s['from']:,} -> {s['to']:,} | {s['scenario']} | {s['figure']}"
            f" | {s['ratio']:.2f} | {s['per_10x']:.2f} | {flag} |"
        )
    regressions = [
        f"{g['label']}: {k} ({v})"
        for g in results["growth"]
        for k, v in g["explain"].items()
        if ("Seq Scan" in v and g["rows"] > 10_000)
        or (k.startswith("get by id") and "pk_contacts" not in v)
    ]
    lines += [
        "",
        "EXPLAIN: "
        + (
            "a scan other than the expected index: " + ", ".join(regressions)
            if regressions
            else "index scans at every step (no RLS plan regression)."
        ),
    ]
    lines += _database(results)
    mem = results.get("memory", {})
    lines += [
        "",
        "## Memory",
        "",
        f"- peak RSS (VmHWM) per worker: product {_f(mem.get('product_peak_mb'), 1)} MB,"
        f" baseline app {_f(mem.get('baseline_peak_mb'), 1)} MB",
        f"- RSS drift over {int(mem.get('drift_requests', 0)):,} REST get-by-id requests:"
        f" {_f(mem.get('drift_mb'), 1)} MB ({int(mem.get('drift_non_2xx', 0))} non-2xx)",
    ]
    return "\n".join(lines) + "\n"


def _db_row(name: str, db: dict[str, Any] | None) -> list[str]:
    if not db:
        return []
    hit = db.get("hit_ratio")
    settled = "yes" if db.get("settled") else f"**no** ({_f(db.get('cluster_idle_ms_per_s'), 0)})"
    top = "; ".join(
        f"`{t['query'][:60]}` {t['calls']:,}x {t['mean_ms']:.3f} ms"
        f" ({t['plans']:,} plans, {t['blks_read']:,} read)"
        for t in db.get("top", [])[:3]
    )
    return [
        f"| {name} | {_f(db.get('load_avg'), 1)} | {settled} | {_f(db.get('waited_s'), 0)}"
        f" | {'-' if hit is None else f'{hit:.4f}'} | {db.get('blocks_read', 0):,} | {top} |"
    ]


def _database(results: dict[str, Any]) -> list[str]:
    """Per cell: machine load, whether the cluster was quiet first, shared-buffer hit ratio,
    and the top statements by total time (pg_stat_statements)."""
    rows: list[str] = []
    for cell in results["cells"]:
        rows += _db_row(cell.name, cell.extra.get("db"))
    for g in results["growth"]:
        for scenario, db in (g.get("db") or {}).items():
            rows += _db_row(f"{scenario} @ {g['label']}", db)
    if not rows:
        return []
    return [
        "",
        "## Database per cell",
        "",
        "Load = the machine's 1-minute load average (max of start and end); quiet = no autovacuum"
        " worker and the cluster under 30 ms/s of CPU before the cell (else its ms/s); hit ="
        " shared-buffer hit ratio of the bench database during the cell; top statements by"
        " total time, with how often each was planned (a count near the calls = custom plans).",
        "",
        "| cell | load | quiet | waited s | hit | blocks read | top statements |",
        "|---|---:|---|---:|---:|---:|---|",
        *rows,
    ]


def as_json(results: dict[str, Any]) -> dict[str, Any]:
    cells = {c.scenario: c for c in results["cells"]}
    return {
        **results,
        "cells": [asdict(c) for c in results["cells"]],
        "goals": goals(cells, results.get("memory", {})),
        "slopes": slopes(results["growth"]),
    }
