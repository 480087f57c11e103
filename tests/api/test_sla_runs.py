"""The breach check as it runs for real: `caravan service sla-check` as an operator types it (a
subprocess), and the loop inside `caravan serve`. A case's due time is moved into the past
directly in the database (the clock cannot be turned for a subprocess)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text

from backend.crm.cases.scheduler import SlaScheduler
from backend.runtime import Services
from tests.api.cases_helpers import get_case, new_case, new_policy
from tests.cli.test_cli import _env, run
from tests.conftest import Cluster, TenantUser, new_tenant


async def _overdue(services: Services, user: TenantUser, case_id: str) -> None:
    past = datetime.now(UTC) - timedelta(minutes=5)
    async with services.db.tenant_transaction(user.tenant_id) as conn:
        await conn.execute(
            text("update cases set first_response_due_at = :t where id = :id"),
            {"t": past, "id": case_id},
        )


async def test_the_cli_marks_and_escalates(
    services: Services, client: httpx.AsyncClient, cluster: Cluster
) -> None:
    admin = await new_tenant(services, client, "sla-cli")
    await new_policy(client, admin, priority="low")
    case = await new_case(client, admin, priority="low")
    calm = await new_case(client, admin, priority="low")
    await _overdue(services, admin, case["id"])
    result = await asyncio.to_thread(
        run, ["service", "sla-check", "--tenant", admin.slug], _env(cluster)
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [e["case_id"] for e in report["breached"][admin.slug]] == [case["id"]]
    marked = await get_case(client, admin, case["id"])
    assert marked["sla_breached_at"] is not None and marked["priority"] == "normal"
    assert (await get_case(client, admin, calm["id"]))["sla_breached_at"] is None


async def test_the_serve_loop_marks_breaches(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "sla-loop")
    await new_policy(client, admin, priority="high")
    case = await new_case(client, admin, priority="high")
    await _overdue(services, admin, case["id"])
    loop = SlaScheduler(services.db, 0.05)
    await loop.start()
    try:
        for _ in range(200):
            if (await get_case(client, admin, case["id"]))["sla_breached_at"] is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        await loop.stop()
    marked = await get_case(client, admin, case["id"])
    assert marked["sla_breached_at"] is not None and marked["priority"] == "urgent"
