"""`caravan backup ...` and `caravan worker --once` as an operator runs them: exit codes, one
clear line on failure (never a traceback), JSON for machines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from backend.backups.store import ARCHIVE
from backend.runtime import Services
from tests.backups.conftest import seed, superuser_url
from tests.conftest import Cluster, new_tenant

CARAVAN = [sys.executable, "-m", "backend"]


def _env(cluster: Cluster, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARAVAN_")}
    env.update(
        CARAVAN_DATABASE_URL=cluster.urls.app_url,
        CARAVAN_MIGRATION_DATABASE_URL=cluster.urls.owner_url,
        CARAVAN_BACKUP_DATABASE_URL=superuser_url(cluster),
        CARAVAN_DATA_DIR=str(data_dir),
    )
    env.update(extra)
    return env


def caravan(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CARAVAN, *args], env=env, capture_output=True, text=True, timeout=180)


def _one_line_error(result: subprocess.CompletedProcess[str], code: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("caravan: ")]
    assert len(errors) == 1 and code in errors[0], result.stderr


async def test_backup_commands_and_their_exit_codes(
    services: Services, client: httpx.AsyncClient, cluster: Cluster, data_dir: Path
) -> None:
    tenant = await new_tenant(services, client, "cli")
    await seed(client, tenant)
    env = _env(cluster, data_dir)

    made = caravan(["backup", "run", "--tenant", tenant.slug, "--json"], env)
    assert made.returncode == 0, made.stderr
    backup_id = json.loads(made.stdout)["id"]

    verified = caravan(["backup", "verify", backup_id], env)
    assert verified.returncode == 0, verified.stderr
    assert "every table matches" in verified.stdout

    missing = caravan(["backup", "verify", "20200101T000000Z-full-00000000"], env)
    assert missing.returncode == 2
    _one_line_error(missing, "backup_not_found")

    archive = data_dir / "backups" / "archives" / backup_id / ARCHIVE
    data = bytearray(archive.read_bytes())
    data[-5] ^= 0xFF
    archive.write_bytes(bytes(data))
    refused = caravan(["backup", "restore", backup_id, "--tenant", tenant.slug], env)
    assert refused.returncode == 1
    _one_line_error(refused, "backup_refused")

    dead_store = caravan(
        ["backup", "run"],
        _env(
            cluster,
            data_dir,
            CARAVAN_BACKUP_URL="s3://nowhere/x",
            CARAVAN_BACKUP_S3_ENDPOINT="http://127.0.0.1:9",
            AWS_ACCESS_KEY_ID="x",
            AWS_SECRET_ACCESS_KEY="y",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_MAX_ATTEMPTS="1",
        ),
    )
    assert dead_store.returncode == 1
    _one_line_error(dead_store, "backup")

    rotated = caravan(["backup", "rotate-key"], env)
    assert rotated.returncode == 0 and "bk-" in rotated.stdout
    assert len(list((data_dir / "backup-keys").glob("bk-*.key"))) == 2

    once = caravan(["worker", "--once"], env)
    assert once.returncode == 0, once.stderr
    listed = caravan(["backup", "list", "--json"], env)
    assert listed.returncode == 0 and "wrapped_key" not in listed.stdout
    assert [(b["id"], b["kind"]) for b in json.loads(listed.stdout)] == [
        (backup_id, "tenant"),
        (json.loads(listed.stdout)[1]["id"], "full"),
    ]
