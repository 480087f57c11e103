"""Backups in a real S3-compatible bucket (SeaweedFS on 127.0.0.1): restorable, never plaintext,
Object Lock enforced by the store, and a store failure mid-backup leaves nothing listed."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from backend.backups.errors import BackupError
from backend.backups.pg import binary, libpq_url
from backend.backups.store import ARCHIVE, MANIFEST, S3Store, StoreError
from backend.runtime import Services
from tests.backups.conftest import SECRET_WORD, S3Server, backups, new_bucket, seed, superuser_url
from tests.conftest import Cluster, new_tenant


def _objects(s3: S3Server, bucket: str) -> dict[str, bytes]:
    client = s3.client()
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in listed
    }


async def test_s3_backup_verifies_and_the_bucket_never_holds_plaintext(
    services: Services,
    client: httpx.AsyncClient,
    cluster: Cluster,
    data_dir: Path,
    s3_server: S3Server,
) -> None:
    tenant = await new_tenant(services, client, "bucket")
    await seed(client, tenant, word=SECRET_WORD)
    bucket = new_bucket(s3_server)
    service = backups(services, cluster, data_dir, s3=s3_server, bucket=bucket)
    full = await service.run()
    single = await service.run(tenant.slug)
    assert {m.id for m in await service.list_backups()} == {full.id, single.id}
    for backup_id in (full.id, single.id):
        drill = await service.verify(backup_id)
        assert drill.tables_match and tenant.slug not in drill.chain_failures, drill

    objects = _objects(s3_server, bucket)
    assert set(objects) == {
        f"backups/{b}/{leaf}" for b in (full.id, single.id) for leaf in (ARCHIVE, MANIFEST)
    }
    # The seeded word is in a plain dump of the same database, and nowhere in the bucket.
    dsn, env = libpq_url(superuser_url(cluster))
    dumped = await asyncio.to_thread(
        subprocess.run,
        [binary(None, "pg_dump"), "--format=custom", "--compress=0", f"--dbname={dsn}"],
        env=env,
        capture_output=True,
        check=True,
    )
    plain = dumped.stdout
    assert SECRET_WORD.encode() in plain
    for key, data in objects.items():
        assert SECRET_WORD.encode() not in data, key
        assert b"Person0" not in data and b"x.example" not in data, key
    assert not any((data_dir / "backups").rglob("*.part"))  # no work files left behind


async def test_object_lock_refuses_early_deletes(
    services: Services,
    client: httpx.AsyncClient,
    cluster: Cluster,
    data_dir: Path,
    s3_server: S3Server,
) -> None:
    tenant = await new_tenant(services, client, "locked")
    bucket = new_bucket(s3_server, lock=True)
    service = backups(
        services,
        cluster,
        data_dir,
        s3=s3_server,
        bucket=bucket,
        backup_keep_daily=0,
        backup_keep_weekly=0,
        backup_keep_monthly=0,
    )
    first = await service.run(tenant.slug)
    second = await service.run(tenant.slug)
    assert first.extra["retain_until"] is not None
    head = s3_server.client().head_object(Bucket=bucket, Key=f"backups/{first.id}/{ARCHIVE}")
    assert head["ObjectLockMode"] == "COMPLIANCE"

    # The app itself cannot delete early: the store refuses every version's delete.
    with pytest.raises(StoreError, match="refused"):
        service.config.store.delete(f"{first.id}/{ARCHIVE}")
    with pytest.raises(Exception, match=r"AccessDenied|Forbidden|locked|retention"):
        s3_server.client().delete_object(
            Bucket=bucket,
            Key=f"backups/{first.id}/{ARCHIVE}",
            VersionId=head["VersionId"],
        )
    pruned = await service.prune()  # the policy drops the older one; the lock keeps it
    assert pruned["locked"] == [first.id] and pruned["kept"] == [second.id]
    assert {m.id for m in await service.list_backups()} == {first.id, second.id}
    assert (await service.verify(first.id)).tables_match


@contextmanager
def _cutting_proxy(upstream_port: int, cut_on: bytes) -> Iterator[int]:
    """A TCP proxy to the S3 server that drops every connection, for good, once a request
    containing `cut_on` starts to pass: the store becomes unreachable mid-upload."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    cut = threading.Event()

    def pipe(src: socket.socket, dst: socket.socket, watch: bool) -> None:
        try:
            while data := src.recv(65536):
                if watch and cut_on in data:
                    cut.set()
                if cut.is_set():
                    break
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
            if cut.is_set():
                conn.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", upstream_port))
            threading.Thread(target=pipe, args=(conn, upstream, True), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, conn, False), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


async def test_store_unavailable_mid_backup_fails_loudly_and_lists_nothing(
    services: Services,
    client: httpx.AsyncClient,
    cluster: Cluster,
    data_dir: Path,
    s3_server: S3Server,
) -> None:
    tenant = await new_tenant(services, client, "cutoff")
    await seed(client, tenant)
    bucket = new_bucket(s3_server)
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    with _cutting_proxy(port, ARCHIVE.encode()) as proxy:
        proxied = S3Server(
            f"http://127.0.0.1:{proxy}",
            s3_server.access_key,
            s3_server.secret_key,
            s3_server.process,
        )
        service = backups(
            services,
            cluster,
            data_dir,
            s3=proxied,
            bucket=bucket,
            s3_client=proxied.client(
                retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=5
            ),
        )
        with pytest.raises(BackupError, match=r"upload of .*archive"):
            await service.run(tenant.slug)
    honest = backups(services, cluster, data_dir, s3=s3_server, bucket=bucket)
    assert await honest.list_backups() == []
    assert not any(key.endswith(MANIFEST) for key in _objects(s3_server, bucket))
    async with services.db.tenant_transaction(tenant.tenant_id) as conn:
        failed = (
            await conn.exec_driver_sql(
                "select details->>'error' from security_events where type = 'backup.failed'"
            )
        ).scalar_one()
    assert "archive" in failed


async def test_large_archives_go_up_in_parts(
    services: Services, cluster: Cluster, data_dir: Path, s3_server: S3Server
) -> None:
    bucket = new_bucket(s3_server)
    service = backups(services, cluster, data_dir, s3=s3_server, bucket=bucket)
    store = service.config.store
    assert isinstance(store, S3Store)
    store.multipart_bytes = 5 << 20  # the S3 minimum part size
    blob = data_dir / "blob"
    blob.write_bytes(os.urandom(11 << 20))
    await asyncio.to_thread(
        store.put_file, "20260101T000000Z-full-0000000a/archive.bin", blob, None
    )
    head = s3_server.client().head_object(
        Bucket=bucket, Key="backups/20260101T000000Z-full-0000000a/archive.bin"
    )
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload of three parts
    back = data_dir / "back"
    await asyncio.to_thread(store.get_file, "20260101T000000Z-full-0000000a/archive.bin", back)
    assert back.read_bytes() == blob.read_bytes()
