"""Benchmark: encrypted backup and restore, against plain pg_dump / pg_restore in the same run.

On a fresh embedded PostgreSQL: the demo tenant (`caravan demo` data), and a bulk tenant of N
contacts (default 1,000,000, seeded with INSERT ... SELECT generate_series). Measures:

- tenant backup and tenant restore (one transaction) of the demo tenant and of the bulk tenant;
- a full backup (pg_dump custom format -> zstd -> AES-256-GCM) and its verify drill (pg_restore
  into a scratch database + digests of every table + hash-chain check) = full restore time;
- plain `pg_dump -Fc` and `pg_restore` of the same database: the baseline for the ratios;
- RPO = backup interval + full backup time; RTO = full restore (drill) time.

    uv run python -m tests.bench.bench_backup [--rows N] [--interval SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import asyncpg

from backend.backups import pg
from backend.backups.config import build_backups
from backend.db.embedded import EmbeddedPostgres
from backend.db.migrate import migrate
from backend.db.session import Database
from backend.db.target import DatabaseTarget
from backend.demo import seed_demo
from backend.settings import Settings
from backend.tenants.service import create_tenant

T = TypeVar("T")
PASSWORD = "benchmark-password"


async def _timed(work: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    start = time.perf_counter()
    result = await work()
    return result, time.perf_counter() - start


def _mib(n: int) -> str:
    return f"{n / (1 << 20):8.2f} MiB"


async def _seed_bulk(owner_url: str, db: Database, rows: int) -> None:
    created = await create_tenant(
        db,
        name="Bulk",
        slug="bulk",
        admin_email="a@bulk.example",
        admin_password=PASSWORD,
        require_admin_mfa=False,
    )
    conn = await asyncpg.connect(pg.asyncpg_url(owner_url))
    try:
        async with conn.transaction():
            await conn.execute(
                "select set_config('app.tenant_id', $1, true)", str(created.tenant_id)
            )
            await conn.execute(
                "insert into contacts (tenant_id, id, last_name, first_name, email, owner_id, "
                "notes) select $1::uuid, gen_random_uuid(), 'Person ' || g, 'First' || (g % 997),"
                " 'p' || g || '@bulk.example', $2::uuid, repeat('note ', g % 20) "
                "from generate_series(1, $3::int) g",
                str(created.tenant_id),
                str(created.admin_user_id),
                rows,
            )
    finally:
        await conn.close()


def _plain_dump(url: str, path: Path) -> None:
    dsn, env = pg.libpq_url(url)
    subprocess.run(
        [pg.binary(None, "pg_dump"), "--format=custom", f"--file={path}", f"--dbname={dsn}"],
        env=env,
        check=True,
    )


def _plain_restore(url: str, path: Path) -> None:
    dsn, env = pg.libpq_url(url)
    subprocess.run(
        [
            pg.binary(None, "pg_restore"),
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={dsn}",
            str(path),
        ],
        env=env,
        check=True,
    )


async def run(rows: int, interval: int) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="caravan-bench-backup-"))
    os.chmod(data_dir, 0o711)  # noqa: S103 - the server user must traverse it
    cluster = EmbeddedPostgres(data_dir)
    port = cluster.start()
    figures: dict[str, Any] = {"rows": rows}
    try:
        urls = await cluster.bootstrap(port, database="bench")
        await migrate(urls.owner_url, "caravan_app")
        superuser = (data_dir / "secrets" / "superuser.password").read_text().strip()
        dump_url = f"postgresql://postgres:{quote(superuser, safe='')}@127.0.0.1:{port}/bench"
        db = Database(urls.app_url, pool_size=2)
        settings = Settings(
            environment="test",
            data_dir=data_dir,
            database_url=urls.app_url,
            migration_database_url=urls.owner_url,
            backup_database_url=dump_url,
        )
        service = build_backups(
            settings, DatabaseTarget(urls.app_url, urls.owner_url, "caravan_app"), db
        )
        await seed_demo(db, slug="demo", email="a@demo.example", password=PASSWORD)
        _, seeded = await _timed(lambda: _seed_bulk(urls.owner_url, db, rows))
        print(f"seeded {rows} contacts in {seeded:.1f} s")

        for slug in ("demo", "bulk"):
            manifest, took = await _timed(lambda s=slug: service.run(s))  # type: ignore[misc]
            restored, back = await _timed(
                lambda m=manifest, s=slug: service.restore(m.id, tenant=s)  # type: ignore[misc]
            )
            assert restored.tables_match and restored.chain_ok, restored
            figures[slug] = {
                "rows": sum(t.rows for t in manifest.tables.values()),
                "backup_s": took,
                "restore_s": back,
                "plain_bytes": manifest.plaintext_bytes,
                "stored_bytes": manifest.ciphertext_bytes,
            }

        full, full_s = await _timed(lambda: service.run())
        drill, drill_s = await _timed(lambda: service.verify(full.id))
        assert drill.tables_match, drill
        plain = data_dir / "plain.dump"
        _, plain_dump_s = await _timed(lambda: asyncio.to_thread(_plain_dump, dump_url, plain))
        scratch = f"bench_plain_{secrets.token_hex(3)}"
        admin = await asyncpg.connect(pg.with_database(dump_url, "postgres"))
        await admin.execute(f"create database {scratch} owner caravan_owner")
        _, plain_restore_s = await _timed(
            lambda: asyncio.to_thread(_plain_restore, pg.with_database(dump_url, scratch), plain)
        )
        await admin.execute(f"drop database {scratch} with (force)")
        await admin.close()
        figures["full"] = {
            "backup_s": full_s,
            "restore_drill_s": drill_s,
            "plain_bytes": full.plaintext_bytes,
            "stored_bytes": full.ciphertext_bytes,
            "pg_dump_s": plain_dump_s,
            "pg_dump_bytes": plain.stat().st_size,
            "pg_restore_s": plain_restore_s,
        }
        figures["rpo_s"] = interval + full_s
        figures["rto_s"] = drill_s
        await db.dispose()
    finally:
        cluster.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    _print(figures, interval)
    return figures


def _print(f: dict[str, Any], interval: int) -> None:
    print(f"\nBackup benchmark ({f['rows']} bulk contacts; sizes: plaintext -> stored)")
    for slug in ("demo", "bulk"):
        t = f[slug]
        print(
            f"  tenant {slug:5} {t['rows']:>9} rows  backup {t['backup_s']:6.2f} s  "
            f"restore {t['restore_s']:6.2f} s  {_mib(t['plain_bytes'])} -> "
            f"{_mib(t['stored_bytes'])}"
        )
    full = f["full"]
    print(
        f"  full database          backup {full['backup_s']:6.2f} s  restore+verify "
        f"{full['restore_drill_s']:6.2f} s  {_mib(full['plain_bytes'])} -> "
        f"{_mib(full['stored_bytes'])}"
    )
    print(
        f"  plain pg_dump -Fc       dump   {full['pg_dump_s']:6.2f} s  pg_restore "
        f"{full['pg_restore_s']:6.2f} s  {_mib(full['pg_dump_bytes'])}"
    )
    print(
        f"  ratio encrypted / plain: backup time {full['backup_s'] / full['pg_dump_s']:.2f}x, "
        f"size {full['stored_bytes'] / full['pg_dump_bytes']:.2f}x, restore time "
        f"{full['restore_drill_s'] / full['pg_restore_s']:.2f}x (ours includes digests + chain)"
    )
    print(
        f"  RPO = interval {interval} s + backup {full['backup_s']:.1f} s = {f['rpo_s']:.0f} s; "
        f"RTO (full restore, verified) = {f['rto_s']:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--interval", type=int, default=3600, help="backup interval (RPO)")
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.interval))


if __name__ == "__main__":
    main()
