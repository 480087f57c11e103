"""The benchmarks still run (tiny sizes; their figures are never checked here)."""

from __future__ import annotations

import pytest

from tests.bench import bench_history, bench_policy


async def test_policy_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    await bench_policy.run(rounds=1, requests=2)
    assert "ratio masked / free" in capsys.readouterr().out


async def test_history_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    await bench_history.run(rounds=1, updates=4)
    assert "ratio with / without" in capsys.readouterr().out


async def test_backup_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.bench import bench_backup

    await bench_backup.run(rows=200, interval=3600)
    assert "RPO = interval" in capsys.readouterr().out
