"""The benchmarks still run (tiny sizes; their figures are never checked here)."""

from __future__ import annotations

import pytest

from tests.bench import bench_bandwidth, bench_export, bench_history, bench_policy, bench_sync


async def test_policy_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    await bench_policy.run(rounds=1, requests=2)
    assert "ratio masked / free" in capsys.readouterr().out


async def test_history_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    await bench_history.run(rounds=1, updates=4)
    assert "ratio with / without" in capsys.readouterr().out


async def test_bandwidth_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    await bench_bandwidth.run(records=3)
    assert "persisted hash" in capsys.readouterr().out


async def test_sync_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    await bench_sync.run(records=5, rounds=1)
    assert "delta sync over HTTP vs B0" in capsys.readouterr().out


async def test_export_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    await bench_export.run(rows=300, rounds=1, requests=2)
    out = capsys.readouterr().out
    assert "export xlsx" in out and "ratio with / without" in out


async def test_backup_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.bench import bench_backup

    await bench_backup.run(rows=200, interval=3600)
    assert "RPO = interval" in capsys.readouterr().out


async def test_revocation_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.bench import bench_revocation

    await bench_revocation.run(rounds=1, requests=2, revoked=50)
    assert "ratio with / without" in capsys.readouterr().out
