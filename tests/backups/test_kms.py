"""Data keys wrapped by AWS KMS through boto3. Tested only against moto's server mode on
127.0.0.1 (a local imitation of KMS), not against AWS itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from backend.backups.errors import BackupRefused
from backend.backups.store import MANIFEST
from backend.runtime import Services
from tests.backups.conftest import backups, free_port, seed
from tests.conftest import Cluster, new_tenant


@pytest.fixture(scope="module")
def kms() -> Iterator[Any]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield boto3.client(
            "kms",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    finally:
        server.stop()


async def test_kms_wrapped_backup_restores_and_a_disabled_key_refuses(
    services: Services, client: httpx.AsyncClient, cluster: Cluster, data_dir: Path, kms: Any
) -> None:
    tenant = await new_tenant(services, client, "kms")
    await seed(client, tenant)
    key_id = kms.create_key(Description="caravan backups")["KeyMetadata"]["KeyId"]
    service = backups(services, cluster, data_dir, backup_kms_key_id=key_id, kms_client=kms)
    manifest = await service.run(tenant.slug)
    assert manifest.key_id == f"kms:{key_id}"
    assert not (data_dir / "backup-keys").exists()  # no local key file in KMS mode
    assert (await service.verify(manifest.id)).tables_match

    local = backups(services, cluster, data_dir)  # a local key file cannot open it
    with pytest.raises(BackupRefused):
        await local.restore(manifest.id, tenant=tenant.slug)

    # Another backup's wrapped key: KMS binds each to its backup id (encryption context).
    other = await service.run(tenant.slug)
    path = data_dir / "backups" / "archives" / manifest.id / MANIFEST
    document = json.loads(path.read_text())
    document["manifest"]["wrapped_key"] = other.wrapped_key
    path.write_text(json.dumps(document))
    with pytest.raises(BackupRefused, match="KMS refused"):
        await service.restore(manifest.id, tenant=tenant.slug)
