"""Start an app (the product, or the benchmark-only baseline app) as a server subprocess on
127.0.0.1 with uvicorn or granian, one worker, no access log, against the embedded PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from litestar import Litestar

from backend.db.embedded import _free_port

PRODUCT = "tests.bench.servers:product_app"
BASELINE = "tests.bench.baseline_app:create_baseline_app"
ROOT = Path(__file__).resolve().parents[2]


def product_app() -> Litestar:
    """The product exactly as `caravan serve` builds it, configured from the environment."""
    from backend.app import create_app
    from backend.runtime import build_services
    from backend.settings import Settings

    settings = Settings.from_env()
    assert settings.database_url is not None
    return create_app(build_services(settings, settings.database_url))


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    name: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _argv(kind: str, target: str, port: int) -> list[str]:
    if kind == "granian":
        return [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
            target,
        ]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def start(name: str, kind: str, target: str, env: dict[str, str], ready_path: str) -> Server:
    return wait_ready(launch(name, kind, target, env), ready_path)


def launch(name: str, kind: str, target: str, env: dict[str, str]) -> Server:
    """Start the process without waiting (servers start side by side)."""
    port = _free_port()
    log = Path(env["BENCH_LOG_DIR"]) / f"bench-{name}.log"
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            _argv(kind, target, port),
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Server(process, port, name, log)


def wait_ready(server: Server, ready_path: str) -> Server:
    process, port, name, log = server.process, server.port, server.name, server.log
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} server exited with {process.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{name} server did not answer {ready_path} within 90 s")


def worker_pids(server: Server) -> list[int]:
    """The processes that serve requests: granian's workers, or uvicorn's single process."""
    from tests.bench.measure import children

    return children(server.pid) or [server.pid]
