"""`caravan audit ...` and `caravan history erase`, run as an operator would: subprocesses."""

from __future__ import annotations

import json
from typing import Any

import httpx

from backend.history.retention import Retention, set_retention
from backend.runtime import Services
from tests.cli.test_cli import _env, run
from tests.conftest import Cluster, new_tenant
from tests.security.audit_helpers import (
    as_owner,
    checkpoint,
    contact_with_history,
    seal,
    verify,
)


def _audit(cluster: Cluster, *args: str) -> tuple[int, Any]:
    result = run(["audit", *args], _env(cluster))
    assert "Traceback" not in result.stderr, result.stderr
    try:
        return result.returncode, json.loads(result.stdout)
    except json.JSONDecodeError:
        return result.returncode, result.stdout


async def test_seal_checkpoint_verify_then_tampering_is_named(
    services: Services, client: httpx.AsyncClient, cluster: Cluster
) -> None:
    tenant = await new_tenant(services, client, "cli-audit")
    await contact_with_history(client, tenant)
    await seal(services, tenant.tenant_id)
    await checkpoint(services, cluster, tenant.tenant_id)
    code, report = _audit(cluster, "verify", "--tenant", tenant.slug, "--json")
    assert code == 0 and report["ok"], report

    async with as_owner(cluster, tenant.tenant_id) as conn:
        row_id = await conn.fetchval(
            "select id from record_history where event = 'update' order by id limit 1"
        )
        await conn.execute(
            "update record_history set new_value = '\"edited@x.example\"' where id = $1", row_id
        )
    code, text = _audit(cluster, "verify", "--tenant", tenant.slug)
    assert code == 1
    assert "value_altered" in text and str(row_id) in text


async def test_erasure_redacts_values_and_keeps_the_chain_valid(
    services: Services, client: httpx.AsyncClient, cluster: Cluster
) -> None:
    tenant = await new_tenant(services, client, "cli-erase")
    contact_id = await contact_with_history(client, tenant)
    await seal(services, tenant.tenant_id)
    await checkpoint(services, cluster, tenant.tenant_id)

    erase = ["history", "erase", "--tenant", tenant.slug, "--entity", "contact"]
    erased = run([*erase, "--record", contact_id], _env(cluster))
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["redacted"] == 3

    async with as_owner(cluster, tenant.tenant_id, disable_triggers=False) as conn:
        rows = await conn.fetch(
            "select old_value, new_value, old_digest, new_digest from record_history"
            " where record_id = $1",
            contact_id,
        )
        erasures = await conn.fetchval(
            "select count(*) from security_events where type = 'history.erased'"
        )
    assert len(rows) == 3 and erasures == 1
    assert all(r["old_value"] is None and r["new_value"] is None for r in rows)
    assert all(r["new_digest"] for r in rows)  # the digests stay: the chain still holds

    await seal(services, tenant.tenant_id)
    code, report = _audit(cluster, "verify", "--tenant", tenant.slug, "--json")
    assert code == 0 and report["ok"], report


async def test_prune_past_retention_keeps_the_rest_verifiable(
    services: Services, client: httpx.AsyncClient, cluster: Cluster
) -> None:
    tenant = await new_tenant(services, client, "cli-prune")
    await contact_with_history(client, tenant)
    await set_retention(services.db, tenant.tenant_id, Retention(30, 1))
    await seal(services, tenant.tenant_id)
    await contact_with_history(client, tenant)
    await seal(services, tenant.tenant_id)
    # Time passes: the first contact's rows are 40 days old, the second's 12 hours.
    async with as_owner(cluster, tenant.tenant_id) as conn:
        head = await conn.fetchval("select max(id) from audit_seals")
        await conn.execute(
            "update audit_seals set sealed_at = sealed_at - interval '40 days' where id <= $1",
            head // 2,
        )
        await conn.execute(
            "update audit_seals set sealed_at = sealed_at - interval '12 hours' where id > $1",
            head // 2,
        )
    code, pruned = _audit(cluster, "prune", "--tenant", tenant.slug)
    assert code == 0, pruned
    summary = pruned["pruned"][0]
    assert summary["rows_deleted"] > 0 and summary["seals_through"] == head // 2
    assert summary["checkpoint"]

    async with as_owner(cluster, tenant.tenant_id, disable_triggers=False) as conn:
        first_seal = await conn.fetchval("select min(id) from audit_seals")
        history = await conn.fetchval("select count(*) from record_history")
    assert first_seal == head // 2 + 1
    assert history == 3  # the second contact's history is inside the 30 days

    await seal(services, tenant.tenant_id)
    code, report = _audit(cluster, "verify", "--tenant", tenant.slug, "--json")
    assert code == 0 and report["ok"], report

    # Without the prune checkpoint, the missing prefix would be reported: deleting it is
    # what an owner erasing the start of the log looks like.
    async with as_owner(cluster, tenant.tenant_id) as conn:
        await conn.execute("delete from audit_seals where id = $1", head // 2 + 1)
    report = await verify(services, cluster, tenant)
    assert [(f.problem, f.seq) for f in report.findings] == [("seals_deleted", head // 2 + 1)]
