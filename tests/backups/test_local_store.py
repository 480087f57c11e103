"""Backups to the local directory store: round trips, tenant isolation, and refusals."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import asyncpg
import httpx
import pytest

from backend.backups import pg
from backend.backups.errors import BackupNotFound, BackupRefused
from backend.backups.manifest import TableCount
from backend.backups.restore import SESSION_TABLES
from backend.backups.service import BackupService
from backend.backups.store import ARCHIVE, MANIFEST, LocalStore
from backend.runtime import Services
from tests.backups.conftest import SECRET_WORD, backups, seed, superuser_url
from tests.backups.helpers import tenant_digests, tenant_record_digests
from tests.conftest import PASSWORD, Cluster, TenantUser, new_tenant, sign_in
from tests.security.audit_helpers import seal, verify


async def _security_events(services: Services, tenant: TenantUser, kind: str) -> list[str]:
    async with services.db.tenant_transaction(tenant.tenant_id) as conn:
        rows = await conn.exec_driver_sql(
            "select outcome from security_events where type = $1 order by occurred_at", (kind,)
        )
        return [r[0] for r in rows]


async def test_full_backup_round_trip_into_a_wiped_database(
    services: Services, client: httpx.AsyncClient, cluster: Cluster, data_dir: Path
) -> None:
    tenant = await new_tenant(services, client, "fullrt")
    await seed(client, tenant, word=SECRET_WORD)
    await seal(services, tenant.tenant_id)
    service = backups(services, cluster, data_dir)
    manifest = await service.run()
    assert manifest.kind == "full" and manifest.tables["contacts"].rows >= 3
    assert [m.id for m in await service.list_backups()] == [manifest.id]
    assert await _security_events(services, tenant, "backup.created") == ["success"]

    # "Wiped": an empty database; restore, then compare every table with the snapshot.
    wiped = f"caravan_rt_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(superuser_url(cluster, "postgres"))
    await admin.execute(f"create database {wiped} owner caravan_owner")
    try:
        result = await service.restore(manifest.id, target_database=superuser_url(cluster, wiped))
        assert result.tables_match, result.mismatches
        assert tenant.slug not in result.chain_failures
        live = await tenant_record_digests(superuser_url(cluster), str(tenant.tenant_id))
        restored = await tenant_record_digests(superuser_url(cluster, wiped), str(tenant.tenant_id))
        assert live == restored and restored["record_history"].rows >= 7
        conn = await asyncpg.connect(superuser_url(cluster, wiped))
        try:
            counts = await pg.digests(conn, list(manifest.tables))
        finally:
            await conn.close()
        for table, want in manifest.tables.items():  # every row of every table, by digest
            if table in SESSION_TABLES:
                assert counts[table].rows == 0  # sign-in sessions are never revived
            else:
                assert counts[table] == want, table

        # Damage the restored database (a bad import), then restore over it in place.
        conn = await asyncpg.connect(superuser_url(cluster, wiped))
        try:
            await conn.execute("update contacts set last_name = 'overwritten'")
            await conn.execute("drop table opportunities cascade")
        finally:
            await conn.close()
        again = await service.restore(manifest.id, target_database=superuser_url(cluster, wiped))
        assert again.tables_match, again.mismatches
        assert (
            await tenant_record_digests(superuser_url(cluster, wiped), str(tenant.tenant_id))
            == live
        )
    finally:
        await admin.execute(f"drop database if exists {wiped} with (force)")
        await admin.close()


async def test_tenant_restore_replaces_one_tenant_and_leaves_others_untouched(
    services: Services, client: httpx.AsyncClient, cluster: Cluster, data_dir: Path
) -> None:
    mine = await new_tenant(services, client, "restoreme")
    other = await new_tenant(services, client, "bystander")
    await seed(client, mine)
    await seed(client, other)
    await seal(services, mine.tenant_id)
    device = await sign_in(client, mine.slug, mine.email, PASSWORD)  # a session in the backup
    service = backups(services, cluster, data_dir)
    manifest = await service.run(mine.slug)
    before = await tenant_digests(superuser_url(cluster), str(mine.tenant_id))

    # A bad import: a sign-in (a security event), a new contact, an edit, a delete.
    await sign_in(client, mine.slug, mine.email, PASSWORD)
    await seed(client, mine, n=1, word="bad-import")
    listing = await client.get("/api/v1/contacts", headers=mine.headers)
    victim = listing.json()["items"][0]["id"]
    assert (
        await client.delete(f"/api/v1/contacts/{victim}", headers=mine.headers)
    ).status_code == 204
    other_before = await tenant_digests(superuser_url(cluster), str(other.tenant_id))

    result = await service.restore(manifest.id, tenant=mine.slug)
    assert result.tables_match and result.chain_ok is True, result
    after = await tenant_digests(superuser_url(cluster), str(mine.tenant_id))
    for table in ("contacts", "accounts", "record_history", "audit_seals"):
        assert after[table] == before[table], table
    assert await tenant_digests(superuser_url(cluster), str(other.tenant_id)) == other_before
    names = {
        c["last_name"]
        for c in (await client.get("/api/v1/contacts", headers=mine.headers)).json()["items"]
    }
    assert not any("bad-import" in n for n in names) and len(names) == 3
    assert "success" in await _security_events(services, mine, "backup.restored")
    # The security events logged since the backup are kept, and sealed after the restored chain.
    sign_ins = await _security_events(services, mine, "auth.sign_in")
    assert len(sign_ins) == 3  # new_tenant's, the device's (in the backup), the bad import's
    await seal(services, mine.tenant_id)
    report = await verify(services, cluster, mine)
    assert report.ok, report.findings
    # Sign-in sessions are not revived by a restore: that device must sign in again.
    refreshed = await client.post("/auth/refresh", json={"refresh_token": device["refresh_token"]})
    assert refreshed.status_code == 401

    # Into a new tenant for inspection: the original stays as it is.
    settled = await tenant_digests(superuser_url(cluster), str(mine.tenant_id))
    copy = await service.restore(manifest.id, as_new_tenant=f"copy-{secrets.token_hex(3)}")
    assert copy.tenant_id != str(mine.tenant_id)
    copied = await tenant_digests(superuser_url(cluster), copy.tenant_id or "")
    assert copied["contacts"].rows == before["contacts"].rows
    assert copied["record_history"].rows == before["record_history"].rows
    assert copy.chain_ok  # its rows await sealing into the copy's own chain
    assert await tenant_digests(superuser_url(cluster), str(mine.tenant_id)) == settled


async def _tenant_backup(
    services: Services, client: httpx.AsyncClient, cluster: Cluster, data_dir: Path, label: str
) -> tuple[TenantUser, BackupService, str]:
    tenant = await new_tenant(services, client, label)
    await seed(client, tenant)
    service = backups(services, cluster, data_dir)
    manifest = await service.run(tenant.slug)
    await seed(client, tenant, n=1, word="after-backup")  # what a refused restore must keep
    return tenant, service, manifest.id


async def _unchanged(cluster: Cluster, tenant: TenantUser, before: dict[str, TableCount]) -> None:
    assert await tenant_record_digests(superuser_url(cluster), str(tenant.tenant_id)) == before


async def test_one_flipped_byte_is_refused_and_nothing_is_written(
    services: Services, client: httpx.AsyncClient, cluster: Cluster, data_dir: Path
) -> None:
    tenant, service, backup_id = await _tenant_backup(services, client, cluster, data_dir, "flip")
    archive = data_dir / "backups" / "archives" / backup_id / ARCHIVE
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    before = await tenant_record_digests(superuser_url(cluster), str(tenant.tenant_id))
    with pytest.raises(BackupRefused, match=r"SHA-256|authentication"):
        await service.restore(backup_id, tenant=tenant.slug)
    with pytest.raises(BackupRefused):
        await service.verify(backup_id)
    await _unchanged(cluster, tenant, before)
    # Both refusals are in the tenant's audit log.
    assert await _security_events(services, tenant, "backup.restored") == ["failure"]
    assert await _security_events(services, tenant, "backup.verified") == ["failure"]


async def test_a_wrong_or_missing_master_key_is_refused(
    services: Services, client: httpx.AsyncClient, cluster: Cluster, data_dir: Path
) -> None:
    tenant, service, backup_id = await _tenant_backup(services, client, cluster, data_dir, "key")
    before = await tenant_record_digests(superuser_url(cluster), str(tenant.tenant_id))
    (key_file,) = (data_dir / "backup-keys").glob("bk-*.key")
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (data_dir / "backup-keys").stat().st_mode & 0o777 == 0o700
    assert (data_dir / "backups").stat().st_mode & 0o777 == 0o700
    original = key_file.read_text()
    key_file.write_text("A" * 43 + "=")
    with pytest.raises(BackupRefused, match="does not open"):
        await service.restore(backup_id, tenant=tenant.slug)
    key_file.unlink()
    with pytest.raises(BackupRefused, match="missing"):
        await service.restore(backup_id, tenant=tenant.slug)
    await _unchanged(cluster, tenant, before)
    key_file.write_text(original)  # the right key: restorable again
    result = await service.restore(backup_id, tenant=tenant.slug)
    assert result.tables_match


async def test_rotation_keeps_old_backups_restorable(
    services: Services, client: httpx.AsyncClient, cluster: Cluster, data_dir: Path
) -> None:
    tenant, service, old_id = await _tenant_backup(services, client, cluster, data_dir, "rotate")
    from backend.backups.masterkey import LocalKeyFiles

    keys = LocalKeyFiles(data_dir / "backup-keys")
    old_key = keys.key_id
    new_key = keys.rotate()
    new = await service.run(tenant.slug)
    assert new.key_id == new_key != old_key
    for backup_id in (old_id, new.id):
        assert (await service.verify(backup_id)).tables_match


async def test_a_swapped_or_edited_manifest_is_refused(
    services: Services, client: httpx.AsyncClient, cluster: Cluster, data_dir: Path
) -> None:
    tenant, service, first = await _tenant_backup(services, client, cluster, data_dir, "swap")
    second = (await service.run(tenant.slug)).id
    root = data_dir / "backups" / "archives"
    before = await tenant_record_digests(superuser_url(cluster), str(tenant.tenant_id))
    manifest_a = (root / first / MANIFEST).read_bytes()
    manifest_b = (root / second / MANIFEST).read_bytes()

    (root / second / MANIFEST).write_bytes(manifest_a)  # swapped
    with pytest.raises(BackupRefused, match="describes"):
        await service.restore(second, tenant=tenant.slug)

    # Swapped archives (the manifest's own id kept): checksum and chunk AAD refuse it.
    (root / second / MANIFEST).write_bytes(manifest_b)
    (root / second / ARCHIVE).write_bytes((root / first / ARCHIVE).read_bytes())
    with pytest.raises(BackupRefused):
        await service.restore(second, tenant=tenant.slug)

    # Edited: claim other row counts; the signature no longer verifies.
    document = json.loads(manifest_a)
    document["manifest"]["tables"]["contacts"]["rows"] += 1
    (root / first / MANIFEST).write_text(json.dumps(document))
    with pytest.raises(BackupRefused, match="signature"):
        await service.restore(first, tenant=tenant.slug)
    await _unchanged(cluster, tenant, before)


async def test_unknown_backup_and_half_written_backup_are_not_listed(
    services: Services, client: httpx.AsyncClient, cluster: Cluster, data_dir: Path
) -> None:
    tenant = await new_tenant(services, client, "half")
    service = backups(services, cluster, data_dir)
    with pytest.raises(BackupNotFound):
        await service.restore("20260101T000000Z-full-00000000")

    class ManifestFails(LocalStore):
        def put_bytes(self, name: str, data: bytes, retain_until: object) -> None:
            raise OSError("disk full")

    store = ManifestFails(data_dir / "backups" / "archives")
    object.__setattr__(service.config, "store", store)
    with pytest.raises(Exception, match="disk full"):
        await service.run(tenant.slug)
    assert await service.list_backups() == []
    assert any(n.endswith(ARCHIVE) for n in store.names())  # an orphan archive, never listed
    assert "failure" in await _security_events(services, tenant, "backup.failed")
