"""The benchmark harness runs end to end in smoke mode (tiny sizes, fractions of a second per
cell): every scenario yields its row, the report renders, and no request failed or leaked.
Figures are never asserted: speed is for the table, not for CI."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bench.__main__ import NAMES, run


async def test_smoke_run_writes_every_row(tmp_path: Path) -> None:
    results = await run("smoke", set(), "python", "uvicorn", tmp_path, log=lambda _: None)

    table = (tmp_path / "latest.md").read_text()
    scenarios = {cell.scenario for cell in results["cells"]}
    assert scenarios == set(NAMES) - {"growth", "memory"}
    for cell in results["cells"]:
        assert cell.name in table
        assert cell.non_2xx == 0, cell.name
        if cell.available:  # sync and export say "not available yet" until they land
            assert cell.figures, cell.name
            assert not cell.leak_probe.startswith("LEAK"), cell.leak_probe
    assert results["cells"][0].leak_probe.startswith("ok")
    nested = next(c for c in results["cells"] if c.scenario == "nested")
    assert nested.extra["constant_statements"], nested.note
    # Growth: both tenant steps and every row step, each with its EXPLAIN and zero errors.
    assert [g["label"] for g in results["growth"]] == ["10 tenants", "100 tenants", "2,000 rows"]
    assert all(g["non_2xx"] == 0 and not g["leaks"] and g["explain"] for g in results["growth"])
    for heading in ("## Goals", "## Growth", "per 10x", "## Memory", "EXPLAIN"):
        assert heading in table
    assert results["memory"]["drift_non_2xx"] == 0
    saved = json.loads((tmp_path / "latest.json").read_text())
    assert {g["goal"] for g in saved["goals"]} >= {"REST get-by-id throughput vs B1"}
