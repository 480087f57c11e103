"""What one cell measures, read from /proc: CPU time of a process tree (schedstat, the steadiest
figure on a shared machine), resident memory (VmRSS, VmHWM), and latency percentiles."""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path


def _task_ns(pid: int) -> int:
    """On-CPU nanoseconds of every thread of one process (schedstat's first field)."""
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended between listing and reading
    return total


def children(pid: int) -> list[int]:
    """The direct children of a process (the postmaster's backends)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return found


def tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    found = [pid]
    for child in children(pid):
        found.extend(tree(child))
    return found


@dataclass(frozen=True)
class CpuSample:
    server_ns: int
    db_ns: int


class CpuMeter:
    """Server CPU (one process) and database CPU (the sum over the postmaster's children).

    Backends that exit between two samples lose their time; the pools keep theirs open, so
    under load that is the rare reconnect only."""

    def __init__(
        self, server_pid: int | None, postmaster_pid: int, database: str = "bench"
    ) -> None:
        self.server_pid = server_pid
        self.postmaster_pid = postmaster_pid
        self.database = database

    def backends(self) -> list[int]:
        """The client backends of the benchmark database (not autovacuum or the checkpointer,
        whose work is not the request's)."""
        found = []
        for pid in children(self.postmaster_pid):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if f" {self.database} ".encode() in title:
                found.append(pid)
        return found

    def sample(self) -> dict[int, int]:
        values = {pid: _task_ns(pid) for pid in self.backends()}
        if self.server_pid is not None:  # the server and its workers (granian forks them)
            values[-1] = sum(_task_ns(pid) for pid in tree(self.server_pid))
        return values

    @staticmethod
    def delta(before: dict[int, int], after: dict[int, int]) -> CpuSample:
        db = sum(ns - before.get(pid, 0) for pid, ns in after.items() if pid != -1)
        return CpuSample(server_ns=after.get(-1, 0) - before.get(-1, 0), db_ns=max(db, 0))


def status_kb(pid: int, field: str) -> int:
    """VmRSS / VmHWM of a process, in kB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def postmaster_pid(cluster_dir: Path) -> int:
    return int((cluster_dir / "postmaster.pid").read_text().splitlines()[0])


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0..1) of sorted values, nearest rank; NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[rank]


def sizes(body: bytes) -> tuple[int, int]:
    """Raw and gzipped bytes of a response body."""
    return len(body), len(gzip.compress(body, compresslevel=6))
