"""Real processes for the fault tests: `caravan serve` as a subprocess on a free 127.0.0.1 port
against a given database, and a superuser connection to look at what really got committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import asyncpg
import httpx

from backend.db.embedded import _free_port
from backend.settings import DEFAULT_ISSUER
from tests.bench.servers import ROOT, Server, wait_ready
from tests.conftest import ACCESS_TOKEN_TTL, TEST_DATABASE, Cluster


def serve(
    name: str, database_url: str, data_dir: Path, env: dict[str, str] | None = None
) -> Server:
    """`caravan serve` (python -m backend serve), answering /health, or an error with its log."""
    return wait_ready(launch(name, database_url, data_dir, env), "/health")


def launch(
    name: str, database_url: str, data_dir: Path, env: dict[str, str] | None = None
) -> Server:
    """Start `caravan serve` without waiting for it (several start side by side)."""
    port = _free_port()
    log = data_dir / f"serve-{name}-{port}.log"
    environment = {
        **os.environ,
        "CARAVAN_ENV": "test",
        "CARAVAN_DATA_DIR": str(data_dir),
        "CARAVAN_DATABASE_URL": database_url,
        "CARAVAN_ACCESS_TOKEN_TTL": str(ACCESS_TOKEN_TTL),
        # One public URL for every server and the in-process services, as behind one load
        # balancer: tokens name it as their issuer, so each accepts the others' tokens.
        "CARAVAN_PUBLIC_URL": DEFAULT_ISSUER,
        **(env or {}),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend", "serve", "--port", str(port)],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Server(process, port, name, log)


def kill9(server: Server) -> None:
    """SIGKILL: no shutdown, no cleanup, in-flight transactions cut off."""
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=15)


def client(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=30)


def superuser_dsn(cluster: Cluster, database: str = TEST_DATABASE) -> str:
    password = (cluster.data_dir / "secrets" / "superuser.password").read_text().strip()
    port = cluster.urls.port
    return f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{port}/{database}"


@asynccontextmanager
async def superuser(cluster: Cluster) -> AsyncIterator[asyncpg.Connection]:
    """Outside row-level security: what the database really holds."""
    conn = await asyncpg.connect(superuser_dsn(cluster))
    try:
        yield conn
    finally:
        await conn.close()
