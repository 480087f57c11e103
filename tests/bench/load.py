"""Load generators on 127.0.0.1, bounded in time: wrk (Debian's package, when installed) with a
Lua script for bodies and headers, or an asyncio raw-socket generator (`--loadgen python`).

Both report requests, non-2xx answers and latencies. Paced load (a fixed request rate, for p50/p99
at half load) is always the Python generator: wrk cannot hold a rate. Its latencies count from the
scheduled send time, so a stalled server is not hidden by the generator waiting for it."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.bench.measure import percentile


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def wire(self, port: int) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class LoadResult:
    requests: int
    non_2xx: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def _summarise(latencies: list[float], non_2xx: int, seconds: float) -> LoadResult:
    latencies.sort()
    return LoadResult(
        requests=len(latencies),
        non_2xx=non_2xx,
        seconds=seconds,
        p50_ms=percentile(latencies, 0.50) * 1e3,
        p99_ms=percentile(latencies, 0.99) * 1e3,
    )


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (Content-Length or chunked); return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        if key == "content-length":
            length = int(value)
        elif key == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _worker(
    port: int,
    requests: list[bytes],
    deadline: float,
    latencies: list[float],
    counts: list[int],
    offset: int,
    limit: int | None,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while time.perf_counter() < deadline and (limit is None or len(latencies) < limit):
            start = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - start)
            if not 200 <= status < 300:
                counts[0] += 1
    finally:
        writer.close()


async def python_load(
    port: int,
    requests: list[Request],
    *,
    connections: int,
    seconds: float,
    limit: int | None = None,
) -> LoadResult:
    """Closed loop: each connection sends its next request when the last one answered."""
    wires = [r.wire(port) for r in requests]
    latencies: list[float] = []
    counts = [0]
    start = time.perf_counter()
    await asyncio.gather(
        *(
            _worker(port, wires, start + seconds, latencies, counts, n * 7919, limit)
            for n in range(connections)
        )
    )
    return _summarise(latencies, counts[0], time.perf_counter() - start)


async def paced_load(
    port: int, requests: list[Request], *, rate: float, seconds: float, connections: int = 8
) -> LoadResult:
    """Open loop at `rate` requests/s over `connections` keep-alive connections."""
    wires = [r.wire(port) for r in requests]
    latencies: list[float] = []
    counts = [0]
    interval = connections / max(rate, 1.0)
    begin = time.perf_counter()

    async def lane(n: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            k = 0
            while True:
                due = begin + (k + n / connections) * interval
                if due > begin + seconds:
                    break
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                writer.write(wires[(n * 7919 + k) % len(wires)])
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - due)
                if not 200 <= status < 300:
                    counts[0] += 1
                k += 1
        finally:
            writer.close()

    await asyncio.gather(*(lane(n) for n in range(connections)))
    return _summarise(latencies, counts[0], time.perf_counter() - begin)


# -- wrk -------------------------------------------------------------------------------------

_LUA = """
local reqs = {}
local bodies = %s
local paths = %s
local method = %s
local headers = %s
for i = 1, #paths do
  reqs[i] = wrk.format(method, paths[i], headers, bodies[((i - 1) %% #bodies) + 1])
end
local n = 0
request = function()
  n = n + 1
  return reqs[(n %% #reqs) + 1]
end
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %%d, "non_2xx": %%d, "errors": %%d, "seconds": %%f,'
    .. ' "p50_us": %%f, "p99_us": %%f}\\n', summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50), latency:percentile(99)))
end
"""


def _lua_list(values: list[str]) -> str:
    return "{" + ", ".join(json.dumps(v) for v in values) + "}"


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def wrk_load(port: int, requests: list[Request], *, connections: int, seconds: float) -> LoadResult:
    """wrk with one thread per core (at most 2), all requests sharing method and headers."""
    first = requests[0]
    script = _LUA % (
        _lua_list([r.body.decode() for r in requests] or [""]),
        _lua_list([r.path for r in requests]),
        json.dumps(first.method),
        "{"
        + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in first.headers.items())
        + "}",
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        threads = str(min(2, connections))
        out = subprocess.run(
            [
                "wrk",
                "-t",
                threads,
                "-c",
                str(connections),
                "-d",
                f"{max(1, round(seconds))}s",
                "-s",
                handle.name,
                f"http://127.0.0.1:{port}{first.path}",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 30,
        ).stdout
    finally:
        Path(handle.name).unlink(missing_ok=True)
    line = next(x for x in out.splitlines() if x.startswith('{"requests"'))
    data = json.loads(line)
    return LoadResult(
        requests=int(data["requests"]),
        non_2xx=int(data["non_2xx"]) + int(data["errors"]),
        seconds=float(data["seconds"]),
        p50_ms=float(data["p50_us"]) / 1e3,
        p99_ms=float(data["p99_us"]) / 1e3,
    )


async def closed_load(
    loadgen: str, port: int, requests: list[Request], *, connections: int, seconds: float
) -> LoadResult:
    if loadgen == "wrk":
        return await asyncio.to_thread(
            wrk_load, port, requests, connections=connections, seconds=seconds
        )
    return await python_load(port, requests, connections=connections, seconds=seconds)
