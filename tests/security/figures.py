"""Figures for the security report: tests count what they tried and what got through.

A test calls `count("cross_tenant_probes", 120)` / `count("leaks", 0)`; the totals of one pytest
session are written to `tests/security/results/figures.json` when the session ends
(tests/conftest.py), and `uv run python -m tests.security.report` runs the security and
reliability suites and prints them as a table. The tests still assert their own expectations
(0 leaks, ...): the figures are for the README, never the thing that makes a test pass.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "figures.json"

_totals: Counter[str] = Counter()


def count(metric: str, n: int = 1) -> None:
    """Add n to a figure (n may be 0: the figure then shows up as 0, not as missing)."""
    _totals[metric] += n


def write() -> None:
    """Write this session's figures (only when a test counted something)."""
    if not _totals:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(dict(sorted(_totals.items())), indent=2) + "\n")
