"""The security figures table: `uv run python -m tests.security.report`.

Runs the security and reliability suites in a subprocess (their session writes
tests/security/results/figures.json, see figures.py), then prints one Markdown table: each
figure, its value, its goal and whether the goal is met. Exits non-zero when pytest failed or
any goal is missed (a figure nobody counted is missed, not silently dropped).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.security.figures import RESULTS

SUITES = ("tests/security", "tests/reliability")


@dataclass(frozen=True)
class Goal:
    """`zero`: must be 0; `some`: must be above 0 (the test really tried); `equals`: must
    equal another figure (e.g. every injected fault survived)."""

    kind: str
    other: str = ""

    def met(self, value: int, figures: Mapping[str, int]) -> bool:
        if self.kind == "zero":
            return value == 0
        if self.kind == "some":
            return value > 0
        return self.other in figures and value == figures[self.other]

    def describe(self) -> str:
        return {"zero": "0", "some": "> 0"}.get(self.kind, f"= {self.other}")


ZERO, SOME = Goal("zero"), Goal("some")

# Order is the table's order: what was tried, then what got through.
GOALS: dict[str, Goal] = {
    "cross_tenant_probes": SOME,
    "cross_scope_probes": SOME,
    "leaks": ZERO,
    "graphql_abuse_cases": SOME,
    "graphql_abuse_accepted": ZERO,
    "forgeries_tried": SOME,
    "forgeries_accepted": ZERO,
    "rls_tables_checked": SOME,
    "rls_violations": ZERO,
    "fuzz_cases": SOME,
    "fuzz_server_errors": ZERO,
    "fuzz_nonconforming": ZERO,
    "faults_injected": SOME,
    "faults_survived": Goal("equals", "faults_injected"),
    "rows_lost": ZERO,
    "duplicates": ZERO,
    "races_run": SOME,
    "race_violations": ZERO,
}


@dataclass(frozen=True)
class Row:
    metric: str
    value: int | None  # None: no test counted it
    goal: str
    met: bool


def rows(figures: Mapping[str, int]) -> list[Row]:
    """One row per known goal, then any figure without a goal (shown, never 'missed')."""
    table = [
        Row(
            name,
            figures.get(name),
            goal.describe(),
            name in figures and goal.met(figures[name], figures),
        )
        for name, goal in GOALS.items()
    ]
    table += [Row(name, figures[name], "-", True) for name in sorted(set(figures) - set(GOALS))]
    return table


def markdown(table: list[Row]) -> str:
    lines = ["| Figure | Value | Goal | |", "|---|---:|---|---|"]
    for row in table:
        value = "not measured" if row.value is None else str(row.value)
        lines.append(f"| {row.metric} | {value} | {row.goal} | {'met' if row.met else 'MISSED'} |")
    return "\n".join(lines)


def load(path: Path = RESULTS) -> dict[str, int]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {str(k): int(v) for k, v in data.items()}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    RESULTS.unlink(missing_ok=True)  # never report a previous run's figures
    if "-m" not in args:
        args += ["-m", "slow or not slow"]  # the fault and deep fuzz tests count too
    pytest = subprocess.run(
        [sys.executable, "-m", "pytest", *SUITES, "-q", "-p", "no:cacheprovider", *args],
        check=False,
    )
    table = rows(load())
    print(markdown(table))
    missed = [r.metric for r in table if not r.met]
    if pytest.returncode != 0:
        print(f"\npytest failed (exit {pytest.returncode})")
    if missed:
        print(f"\ngoals missed: {', '.join(missed)}")
    return exit_code(pytest.returncode, table)


def exit_code(pytest_status: int, table: list[Row]) -> int:
    """0 only when pytest passed and every goal is met."""
    return 1 if pytest_status != 0 or not all(r.met for r in table) else 0


if __name__ == "__main__":
    raise SystemExit(main())
