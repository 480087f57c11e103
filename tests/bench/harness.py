"""Cells and their interleaving. A cell is one scenario measured next to its baselines: every
variant (the product, B0, B1, ...) runs in the order A B C C B A, repeated for the rounds, so
machine noise (five helpers share two cores) hits all of them alike. Each slot is bounded
(throughput + 1-connection + half-load seconds, at most 10 s)."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.bench.dbstate import CellDb, DbState
from tests.bench.load import LoadResult, Request, closed_load, paced_load
from tests.bench.measure import CpuMeter, percentile

MAX_SLOT_SECONDS = 10.0


@dataclass(frozen=True)
class Timing:
    rounds: int
    throughput_s: float  # 32 connections
    latency_s: float  # 1 connection, and again at half load
    idle_s: float  # the server's CPU at rest (background work: the audit sealer)
    connections: int = 32

    def __post_init__(self) -> None:
        assert self.throughput_s + 2 * self.latency_s <= MAX_SLOT_SECONDS


SMOKE = Timing(rounds=1, throughput_s=0.15, latency_s=0.05, idle_s=0.2, connections=8)
FULL = Timing(rounds=2, throughput_s=2.0, latency_s=1.0, idle_s=10.0)


@dataclass
class Variant:
    """One column of a cell: HTTP requests to a server, or a direct operation (B0)."""

    name: str
    requests: list[Request] | None = None
    port: int = 0
    server_pid: int | None = None
    direct: Callable[[], Awaitable[Any]] | None = None


@dataclass
class Figures:
    rps: list[float] = field(default_factory=list)
    server_us: list[float] = field(default_factory=list)
    db_us: list[float] = field(default_factory=list)
    p50_1: list[float] = field(default_factory=list)
    p99_1: list[float] = field(default_factory=list)
    p50_half: list[float] = field(default_factory=list)
    p99_half: list[float] = field(default_factory=list)
    requests: int = 0
    non_2xx: int = 0

    def median(self, name: str) -> float:
        values: list[float] = getattr(self, name)
        return statistics.median(values) if values else float("nan")

    def summary(self) -> dict[str, float]:
        keys = ("rps", "server_us", "db_us", "p50_1", "p99_1", "p50_half", "p99_half")
        out = {k: self.median(k) for k in keys}
        out["cpu_us"] = out["server_us"] + out["db_us"]
        out["requests"] = float(self.requests)
        out["non_2xx"] = float(self.non_2xx)
        return out


@dataclass
class CellResult:
    name: str
    scenario: str
    figures: dict[str, dict[str, float]] = field(default_factory=dict)
    bytes_raw: int = 0
    bytes_gzip: int = 0
    leak_probe: str = "-"
    note: str = ""
    available: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def non_2xx(self) -> int:
        return int(sum(f.get("non_2xx", 0) for f in self.figures.values()))


async def _direct_closed(
    op: Callable[[], Awaitable[Any]], concurrency: int, seconds: float
) -> LoadResult:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await op()
            latencies.append(time.perf_counter() - start)

    begin = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    latencies.sort()
    return LoadResult(
        len(latencies),
        0,
        time.perf_counter() - begin,
        percentile(latencies, 0.5) * 1e3,
        percentile(latencies, 0.99) * 1e3,
    )


class Harness:
    def __init__(self, timing: Timing, loadgen: str, postmaster: int) -> None:
        self.timing = timing
        self.loadgen = loadgen
        self.postmaster = postmaster
        self.db: DbState | None = None  # quiet cluster before, buffer hits and statements after
        self.last_db: CellDb | None = None

    async def _closed(self, v: Variant, connections: int, seconds: float) -> LoadResult:
        if v.direct is not None:
            return await _direct_closed(v.direct, connections, seconds)
        assert v.requests is not None
        return await closed_load(
            self.loadgen, v.port, v.requests, connections=connections, seconds=seconds
        )

    async def slot(self, v: Variant, into: Figures) -> None:
        t = self.timing
        # B0 runs in this process: its "server" CPU is ours.
        meter = CpuMeter(os.getpid() if v.direct else v.server_pid, self.postmaster)
        before = meter.sample()
        loaded = await self._closed(v, t.connections, t.throughput_s)
        cpu = CpuMeter.delta(before, meter.sample())
        n = max(loaded.requests, 1)
        into.rps.append(loaded.rps)
        into.server_us.append(cpu.server_ns / n / 1e3)
        into.db_us.append(cpu.db_ns / n / 1e3)
        single = await self._closed(v, 1, t.latency_s)
        into.p50_1.append(single.p50_ms)
        into.p99_1.append(single.p99_ms)
        into.requests += loaded.requests + single.requests
        into.non_2xx += loaded.non_2xx + single.non_2xx
        if v.requests is not None:
            half = await paced_load(v.port, v.requests, rate=loaded.rps / 2, seconds=t.latency_s)
            into.p50_half.append(half.p50_ms)
            into.p99_half.append(half.p99_ms)
            into.requests += half.requests
            into.non_2xx += half.non_2xx

    async def idle(self, server_pid: int) -> float:
        """CPU milliseconds per second a server spends with no requests (server + database)."""
        meter = CpuMeter(server_pid, self.postmaster)
        before = meter.sample()
        await asyncio.sleep(self.timing.idle_s)
        cpu = CpuMeter.delta(before, meter.sample())
        return (cpu.server_ns + cpu.db_ns) / 1e6 / self.timing.idle_s

    async def warm(self, v: Variant) -> None:
        await self._closed(v, 4, min(0.5, self.timing.throughput_s / 2))

    async def run(self, variants: list[Variant]) -> dict[str, dict[str, float]]:
        """A B C C B A per round; the medians of every figure per variant."""
        figures = {v.name: Figures() for v in variants}
        observed = await self.db.begin() if self.db is not None else None
        for v in variants:  # the same warm-up for the product and every baseline
            await self.warm(v)
        for _ in range(self.timing.rounds):
            for v in [*variants, *reversed(variants)]:
                await self.slot(v, figures[v.name])
        if self.db is not None and observed is not None:
            self.last_db = await self.db.end(*observed)
        return {name: f.summary() for name, f in figures.items()}
