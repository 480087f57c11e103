"""The figures table's arithmetic, without running the suites it reports on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.security.report import GOALS, Row, exit_code, load, markdown, rows


def all_met() -> dict[str, int]:
    figures = {name: (5 if goal.kind == "some" else 0) for name, goal in GOALS.items()}
    figures["faults_survived"] = figures["faults_injected"]
    return figures


def by_metric(table: list[Row]) -> dict[str, Row]:
    return {row.metric: row for row in table}


def test_every_goal_met_gives_a_clean_table_and_exit_0() -> None:
    table = rows(all_met())
    assert [r.metric for r in table] == list(GOALS)
    assert all(r.met for r in table)
    assert exit_code(0, table) == 0


def test_a_single_leak_misses_its_goal() -> None:
    table = by_metric(rows({**all_met(), "leaks": 1}))
    assert not table["leaks"].met
    assert [m for m, r in table.items() if not r.met] == ["leaks"]
    assert exit_code(0, list(table.values())) == 1


def test_nothing_tried_is_missed_not_passed() -> None:
    table = by_metric(rows({**all_met(), "cross_tenant_probes": 0}))
    assert not table["cross_tenant_probes"].met


def test_a_figure_nobody_counted_is_missed() -> None:
    figures = all_met()
    del figures["rows_lost"]
    table = by_metric(rows(figures))
    assert table["rows_lost"].value is None
    assert not table["rows_lost"].met
    assert "| rows_lost | not measured | 0 | MISSED |" in markdown(list(table.values()))


def test_faults_survived_must_equal_faults_injected() -> None:
    figures = {**all_met(), "faults_injected": 7, "faults_survived": 6}
    assert not by_metric(rows(figures))["faults_survived"].met
    figures["faults_survived"] = 7
    assert by_metric(rows(figures))["faults_survived"].met


def test_unknown_figures_are_shown_without_a_goal() -> None:
    table = by_metric(rows({**all_met(), "extra_thing": 3}))
    assert table["extra_thing"] == Row("extra_thing", 3, "-", True)


def test_a_failed_pytest_fails_the_report_even_with_every_goal_met() -> None:
    assert exit_code(1, rows(all_met())) == 1


def test_markdown_has_a_header_and_one_line_per_row() -> None:
    table = rows(all_met())
    lines = markdown(table).splitlines()
    assert lines[0] == "| Figure | Value | Goal | |"
    assert len(lines) == 2 + len(table)
    assert "| leaks | 0 | 0 | met |" in lines
    assert "| cross_tenant_probes | 5 | > 0 | met |" in lines


def test_load_reads_the_written_file_and_tolerates_its_absence(tmp_path: Path) -> None:
    assert load(tmp_path / "missing.json") == {}
    path = tmp_path / "figures.json"
    path.write_text(json.dumps({"leaks": 0, "cross_tenant_probes": 12}))
    assert load(path) == {"leaks": 0, "cross_tenant_probes": 12}


async def test_a_failing_forgery_test_counts_as_accepted() -> None:
    """The @forgeries decorator: tried always, accepted when the test's refusal check fails
    (the session's real figures are restored afterwards)."""
    from tests.security import figures
    from tests.security.forgeries import forgeries

    saved = figures._totals.copy()
    try:
        figures._totals.clear()

        @forgeries(3)
        async def refused() -> None:
            pass

        @forgeries(2)
        async def accepted() -> None:
            raise AssertionError("the forged token got a 200")

        await refused()
        with pytest.raises(AssertionError):
            await accepted()
        assert dict(figures._totals) == {"forgeries_tried": 5, "forgeries_accepted": 2}
    finally:
        figures._totals.clear()
        figures._totals.update(saved)
