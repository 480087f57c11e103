"""Debian's PgBouncer in transaction mode in front of the test cluster, for the tests that run
the app through it. Tests skip (with the reason) when the binary is missing."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from backend.db.embedded import _ensure_server_user, _free_port
from tests.conftest import TEST_DATABASE, Cluster

MISSING = "pgbouncer is not installed (apt-get install -y pgbouncer)"


def binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found is None and Path("/usr/sbin/pgbouncer").exists():
        found = "/usr/sbin/pgbouncer"
    return found


def require() -> str:
    found = binary()
    if found is None:
        pytest.skip(MISSING)
    return found


def version(path: str) -> tuple[int, int]:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"PgBouncer (\d+)\.(\d+)", out.stdout)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited: {log.read_text(errors='replace')}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen: {log.read_text(errors='replace')}")


@contextmanager
def bouncer(cluster: Cluster, server_pool: int = 3) -> Iterator[str]:
    """PgBouncer (pool_mode=transaction, `server_pool` server connections for the app role)
    on a free 127.0.0.1 port; yields the app role's URL through it."""
    path = require()
    app = urlsplit(cluster.urls.app_url)
    role, password = app.username or "", unquote(app.password or "")
    port = _free_port()
    home = Path(tempfile.mkdtemp(prefix="caravan-pgbouncer-"))
    # A statement cache per server connection for clients that name their statements
    # (PgBouncer 1.21+); the app names none when CARAVAN_DB_PGBOUNCER is set.
    prepared = "max_prepared_statements = 100\n" if version(path) >= (1, 21) else ""
    (home / "userlist.txt").write_text(f'"{role}" "{password}"\n')
    (home / "pgbouncer.ini").write_text(
        f"[databases]\n{TEST_DATABASE} = host=127.0.0.1 port={cluster.urls.port}"
        f" dbname={TEST_DATABASE}\n\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {home / 'userlist.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {server_pool}\n"
        "max_client_conn = 500\nserver_reset_query =\n"
        f"{prepared}"
        f"logfile = {home / 'pgbouncer.log'}\npidfile = {home / 'pgbouncer.pid'}\n"
    )
    argv = [path, str(home / "pgbouncer.ini")]
    user = _ensure_server_user()
    if user is not None:  # PgBouncer refuses to run as root
        os.chown(home, user.pw_uid, user.pw_gid)
        for item in home.iterdir():
            os.chown(item, user.pw_uid, user.pw_gid)
        argv[1:1] = ["-u", user.pw_name]
    log = home / "stderr.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, process, log)
        yield f"postgresql+asyncpg://{role}:{app.password}@127.0.0.1:{port}/{TEST_DATABASE}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(home, ignore_errors=True)
