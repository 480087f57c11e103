"""Disk full while an export file is written.

The tenant's export directory is a real tiny filesystem (a tmpfs mounted for this test, almost
filled), so the kernel answers ENOSPC mid-write: the request gets a clear 507 problem, no
half-written file is left, no export row claims a file, and the read budget is not charged.
With space again, the same export goes through.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import Cluster, new_tenant
from tests.exports.helpers import add_contacts, request_export
from tests.reliability.processes import superuser
from tests.security.figures import count

SIZE = 64 * 1024
LEFT = 4 * 1024  # free bytes once filled: less than the export needs
ROWS = 120


def _mount(where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.fixture
def full_dir(request: pytest.FixtureRequest) -> Iterator[list[Path]]:
    mounted: list[Path] = []
    yield mounted
    for where in mounted:
        subprocess.run(["umount", str(where)], check=False, capture_output=True)


async def _usage(cluster: Cluster, tenant_id: object) -> list[tuple[object, ...]]:
    async with superuser(cluster) as db:
        rows = await db.fetch(
            "SELECT * FROM bulk_read_usage WHERE tenant_id = $1 ORDER BY 1, 2", tenant_id
        )
    return [tuple(row.values()) for row in rows]


async def test_disk_full_during_an_export_is_a_clear_507_with_nothing_left_behind(
    cluster: Cluster, services: Services, client: httpx.AsyncClient, full_dir: list[Path]
) -> None:
    admin = await new_tenant(services, client, "disk-full")
    await add_contacts(client, admin, ROWS)
    where = cluster.data_dir / "exports" / str(admin.tenant_id)
    _mount(where)
    full_dir.append(where)
    filler = where / "filler"
    filler.write_bytes(b"\0" * (SIZE - LEFT))
    before = await _usage(cluster, admin.tenant_id)

    failed = await request_export(client, admin, format="csv", fields=["id", "last_name", "email"])
    count("faults_injected")
    assert failed.status_code == 507, failed.text
    assert failed.headers["content-type"].startswith("application/problem+json")
    body = failed.json()
    assert body["code"] == "insufficient_storage" and "Traceback" not in failed.text
    assert sorted(p.name for p in where.iterdir()) == ["filler"], "a half-written file is left"
    assert await _usage(cluster, admin.tenant_id) == before, "the budget was charged"
    listed = await client.get("/api/v1/exports", headers=admin.headers)
    assert listed.status_code == 200, listed.text
    assert [e for e in listed.json()["items"] if e["status"] == "ready"] == []

    filler.unlink()
    again = await request_export(client, admin, format="csv", fields=["id", "last_name", "email"])
    assert again.status_code == 201 and again.json()["status"] == "ready", again.text
    assert await _usage(cluster, admin.tenant_id) != before
    count("faults_survived")
