"""The database's state around each cell, so a figure can be trusted or explained.

Before a cell: the tables are vacuumed and analysed after every seeding (`settle_after_seed`),
and the cell waits until the cluster is quiet — no autovacuum worker running and the
postmaster's whole process tree (autovacuum, checkpointer, WAL writer, backends) under
QUIET_MS_PER_S of CPU — or notes that it never got there. Around the cell: the shared-buffer
hit ratio of the bench database and the top statements by total time (pg_stat_statements,
preloaded by the bench's cluster; see tests/bench/stack.py), plus the machine's load average.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from tests.bench.measure import _task_ns, tree

QUIET_MS_PER_S = 30.0  # the cluster's own CPU, idle; above it a cell waits
SETTLE_SECONDS = 60.0  # then measures anyway and says so
TOP_STATEMENTS = 5


@dataclass
class CellDb:
    """What the database did during one cell."""

    load_avg: float = 0.0
    settled: bool = True
    waited_s: float = 0.0
    cluster_idle_ms_per_s: float = 0.0
    hit_ratio: float | None = None
    blocks_read: int = 0
    top: list[dict[str, Any]] = field(default_factory=list)


class DbState:
    def __init__(self, superuser_dsn: str, postmaster: int, database: str = "bench") -> None:
        self.dsn = superuser_dsn
        self.postmaster = postmaster
        self.database = database
        self.statements = True  # pg_stat_statements is loaded

    async def _conn(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn)

    async def settle_after_seed(self) -> None:
        """VACUUM (ANALYZE) every table and CHECKPOINT: no hint-bit writes, visibility maps
        and statistics current, dirty buffers written, before anything is measured."""
        conn = await self._conn()
        try:
            await conn.execute("VACUUM (ANALYZE)")
            await conn.execute("CHECKPOINT")
        finally:
            await conn.close()

    def _cluster_ns(self) -> int:
        return sum(_task_ns(pid) for pid in tree(self.postmaster))

    async def quiet(self) -> tuple[bool, float, float]:
        """Wait until no autovacuum runs and the cluster idles; (settled, waited s, ms/s)."""
        began = time.monotonic()
        conn = await self._conn()
        try:
            while True:
                workers = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
                )
                before = self._cluster_ns()
                await asyncio.sleep(1.0)
                idle = (self._cluster_ns() - before) / 1e6
                waited = time.monotonic() - began
                if workers == 0 and idle <= QUIET_MS_PER_S:
                    return True, waited, idle
                if waited >= SETTLE_SECONDS:
                    return False, waited, idle
        finally:
            await conn.close()

    async def _blocks(self, conn: asyncpg.Connection) -> tuple[int, int]:
        row = await conn.fetchrow(
            "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = $1", self.database
        )
        return (int(row["blks_hit"]), int(row["blks_read"])) if row else (0, 0)

    async def begin(self) -> tuple[CellDb, tuple[int, int]]:
        settled, waited, idle = await self.quiet()
        cell = CellDb(settled=settled, waited_s=waited, cluster_idle_ms_per_s=idle)
        conn = await self._conn()
        try:
            if self.statements:
                try:
                    await conn.execute("SELECT pg_stat_statements_reset()")
                except asyncpg.PostgresError:
                    self.statements = False
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            blocks = await self._blocks(conn)
        finally:
            await conn.close()
        cell.load_avg = os.getloadavg()[0]
        return cell, blocks

    async def end(self, cell: CellDb, blocks: tuple[int, int]) -> CellDb:
        conn = await self._conn()
        try:
            await asyncio.sleep(0.6)  # statistics are flushed by each backend at most every 0.5 s
            hit, read = await self._blocks(conn)
            hit, read = hit - blocks[0], read - blocks[1]
            cell.hit_ratio = hit / (hit + read) if hit + read else None
            cell.blocks_read = read
            if self.statements:
                rows = await conn.fetch(
                    "SELECT query, calls, total_exec_time, mean_exec_time, rows,"
                    " shared_blks_hit, shared_blks_read, plans"
                    " FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
                    " WHERE d.datname = $1 ORDER BY total_exec_time DESC LIMIT $2",
                    self.database,
                    TOP_STATEMENTS,
                )
                cell.top = [
                    {
                        "query": " ".join(r["query"].split())[:120],
                        "calls": int(r["calls"]),
                        "mean_ms": float(r["mean_exec_time"]),
                        "total_ms": float(r["total_exec_time"]),
                        "rows": int(r["rows"]),
                        "blks_hit": int(r["shared_blks_hit"]),
                        "blks_read": int(r["shared_blks_read"]),
                        "plans": int(r["plans"]),
                    }
                    for r in rows
                ]
        finally:
            await conn.close()
        cell.load_avg = max(cell.load_avg, os.getloadavg()[0])
        return cell
