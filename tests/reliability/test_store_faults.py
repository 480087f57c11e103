"""The object store dies in the middle of a backup run by the CLI, as an operator would run it.

A SeaweedFS of its own (the session's one serves other tests) sits behind a TCP relay that
SIGKILLs it the moment the archive upload starts. `caravan backup run` must exit 1 with one
`caravan: ...` line (no traceback), record backup.failed in the tenant's audit, and once the
store is back nothing is listed as a backup.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from backend.backups.store import ARCHIVE
from backend.runtime import Services
from tests.backups.conftest import S3Server, _weed, free_port, seed
from tests.backups.test_cli import _env, _one_line_error, caravan
from tests.conftest import Cluster, new_tenant
from tests.reliability.processes import superuser
from tests.security.figures import count


class Weed:
    """`weed mini` on fixed ports, so it can be killed and started again on the same data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.access, self.secret = "caravan-fault", "fault-secret-not-a-real-one"
        (root / "s3.json").write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "caravan",
                            "credentials": [{"accessKey": self.access, "secretKey": self.secret}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        (root / "data").mkdir(exist_ok=True)
        self.ports = {n: free_port() for n in ("master", "volume", "filer", "s3")}
        self.grpc = {n: free_port() for n in ("master", "volume", "filer", "s3")}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self) -> None:
        with (self.root / "weed.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    _weed(),
                    "mini",
                    f"-dir={self.root / 'data'}",
                    "-ip=127.0.0.1",
                    "-ip.bind=127.0.0.1",
                    *(f"-{n}.port={p}" for n, p in self.ports.items()),
                    *(f"-{n}.port.grpc={p}" for n, p in self.grpc.items()),
                    "-webdav=false",
                    "-admin.ui=false",
                    "-s3.port.iceberg=0",
                    "-s3.port.lance=0",
                    f"-s3.config={self.root / 's3.json'}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = S3Server(self.endpoint, self.access, self.secret, self.process).client()
        deadline = time.monotonic() + 60
        while True:
            try:
                client.list_buckets()
                return
            except Exception:  # noqa: BLE001 - not up yet
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((self.root / "weed.log").read_text()[-2000:]) from None
                time.sleep(0.3)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def weed() -> Iterator[Weed]:
    server = Weed(Path(tempfile.mkdtemp(prefix="caravan-weed-fault-")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def _killing_relay(weed: Weed, kill_on: bytes) -> Iterator[int]:
    """A TCP relay to the store that kills the store's process once a request containing
    `kill_on` starts to pass."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def pipe(src: socket.socket, dst: socket.socket, watch: bool) -> None:
        try:
            while data := src.recv(65536):
                if watch and kill_on in data:
                    weed.kill()
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            sock.close()

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", weed.ports["s3"]))
            except OSError:
                conn.close()
                continue
            threading.Thread(target=pipe, args=(conn, upstream, True), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, conn, False), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


@pytest.mark.slow
async def test_store_killed_mid_backup_fails_loudly_and_nothing_is_listed(
    services: Services,
    client: httpx.AsyncClient,
    cluster: Cluster,
    weed: Weed,
    tmp_path: Path,
) -> None:
    tenant = await new_tenant(services, client, "store-dies")
    await seed(client, tenant)
    bucket = "caravan-fault"
    S3Server(weed.endpoint, weed.access, weed.secret, weed.process).client().create_bucket(  # type: ignore[arg-type]
        Bucket=bucket
    )
    s3_env = {
        "CARAVAN_BACKUP_URL": f"s3://{bucket}/backups",
        "AWS_ACCESS_KEY_ID": weed.access,
        "AWS_SECRET_ACCESS_KEY": weed.secret,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.chmod(tmp_path, 0o700)  # the backup keys live under it
    with _killing_relay(weed, ARCHIVE.encode()) as relay:
        env = _env(
            cluster,
            tmp_path,
            CARAVAN_BACKUP_S3_ENDPOINT=f"http://127.0.0.1:{relay}",
            **s3_env,
        )
        started = time.monotonic()
        run = caravan(["backup", "run", "--tenant", tenant.slug], env)
        took = time.monotonic() - started
    count("faults_injected")
    assert weed.process is not None and weed.process.returncode == -signal.SIGKILL
    assert run.returncode == 1, (run.stdout, run.stderr)
    _one_line_error(run, "backup")
    assert took < 120, took
    async with superuser(cluster) as db:
        failed = await db.fetchval(
            "SELECT count(*) FROM security_events WHERE tenant_id = $1 AND type = 'backup.failed'",
            tenant.tenant_id,
        )
    assert failed == 1

    weed.start()  # the store is back: the failed run left no backup behind
    listed = caravan(
        ["backup", "list", "--json"],
        _env(cluster, tmp_path, CARAVAN_BACKUP_S3_ENDPOINT=weed.endpoint, **s3_env),
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    count("faults_survived")
