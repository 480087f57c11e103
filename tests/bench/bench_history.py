"""Benchmark: the write overhead of change history, and the sealer's throughput.

1. The same update (one changed field on a contact, through the record service, one
   transaction each) with history written, and with the history insert skipped - a
   benchmark-only switch that replaces the service's `record_updated` with a no-op. Rounds are
   interleaved A-B-B-A on one embedded PostgreSQL, so machine noise hits both alike; the figure
   is the ratio.
2. Sealing: the rows the updates left unsealed, appended to the chain by `seal_tenant`
   (rows/s), then verified by `verify_tenant` (rows/s).

    uv run python -m tests.bench.bench_history [--rounds 3] [--updates 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import backend.records.service as record_service
from backend.context import Principal, RequestContext
from backend.crm.contacts.service import contacts
from backend.db.embedded import EmbeddedPostgres
from backend.db.migrate import migrate
from backend.db.session import Database
from backend.history.audit_tenants import TenantRef
from backend.history.checkpoints import default_store, trusted_keys
from backend.history.sealer import seal_tenant
from backend.history.verify import verify_tenant
from backend.runtime import build_services
from backend.settings import Settings
from backend.tenants.service import create_tenant

PASSWORD = "benchmark-password"
CONTACTS = 50


async def _no_history(*_: Any, **__: Any) -> None:
    return None


class Updates:
    def __init__(self, ctx: RequestContext, ids: list[uuid.UUID]) -> None:
        self.ctx = ctx
        self.ids = ids
        self.versions = dict.fromkeys(ids, 1)
        self.counter = 0

    async def timed(self, n: int, *, history: bool) -> float:
        """Wall seconds per update over n sequential updates."""
        # The benchmark-only switch: the service's history insert replaced by a no-op.
        switch = patch.object(record_service, "record_updated", _no_history)
        with nullcontext() if history else switch:
            start = time.perf_counter()
            for _ in range(n):
                self.counter += 1
                key = self.ids[self.counter % len(self.ids)]
                await contacts.update(
                    self.ctx, key, {"title": f"T{self.counter}"}, self.versions[key]
                )
                self.versions[key] += 1
        return (time.perf_counter() - start) / n


async def _unsealed(db: Database, tenant_id: uuid.UUID) -> int:
    async with db.tenant_transaction(tenant_id) as conn:
        result = await conn.exec_driver_sql(
            "select (select count(*) from record_history) + (select count(*) from security_events)"
            " - (select count(*) from audit_seals)"
        )
        return int(result.scalar_one())


async def run(rounds: int, updates: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="caravan-bench-"))
    os.chmod(data_dir, 0o711)  # noqa: S103 - the server user must traverse it
    pg = EmbeddedPostgres(data_dir)
    urls = await pg.bootstrap(pg.start(), database="bench")
    try:
        await migrate(urls.owner_url, "caravan_app")
        settings = Settings(environment="test", data_dir=data_dir, database_url=urls.app_url)
        services = build_services(settings, urls.app_url)
        created = await create_tenant(
            services.db,
            name="Bench",
            slug="bench",
            admin_email="admin@bench.example",
            admin_password=PASSWORD,
        )
        principal = Principal(user_id=created.admin_user_id, tenant_id=created.tenant_id)
        ctx = RequestContext(principal, services.db, "system")
        ids = [(await contacts.create(ctx, {"last_name": f"B{i}"}))["id"] for i in range(CONTACTS)]
        bench = Updates(ctx, ids)
        await bench.timed(50, history=True)
        await bench.timed(50, history=False)  # warm both paths
        with_history: list[float] = []
        without: list[float] = []
        for _ in range(rounds):  # A-B-B-A
            for history, into in ((True, with_history), (False, without)) * 2:
                into.append(await bench.timed(updates, history=history))
        ratio = statistics.median(with_history) / statistics.median(without)
        print("update one contact field     wall per update (median)")
        print(f"  with history               {statistics.median(with_history) * 1e3:8.3f} ms")
        print(f"  history insert skipped     {statistics.median(without) * 1e3:8.3f} ms")
        print(f"  ratio with / without       {ratio:8.2f}x")

        pending = await _unsealed(services.db, created.tenant_id)
        start = time.perf_counter()
        result = await seal_tenant(services.db, created.tenant_id)
        sealing = time.perf_counter() - start
        print(
            f"sealing: {result.sealed} rows ({pending} pending) in {sealing:.2f} s = "
            f"{result.sealed / sealing:,.0f} rows/s"
        )

        keys = await trusted_keys(services.db, services.keys.box)
        start = time.perf_counter()
        report = await verify_tenant(
            services.db,
            TenantRef(created.tenant_id, "bench"),
            keys,
            default_store(data_dir),
            timedelta(minutes=10),
        )
        checking = time.perf_counter() - start
        assert report.ok, report.findings
        print(
            f"verify: {report.seals_checked} seals in {checking:.2f} s = "
            f"{report.seals_checked / checking:,.0f} rows/s"
        )
        await services.db.dispose()
    finally:
        pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.updates))


if __name__ == "__main__":
    main()
