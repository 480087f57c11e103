"""The tamper-evident audit chain: append-only for the app role, gap-free sealing under
concurrent writers, and `verify` naming the first row the database owner edited, deleted or
reordered - even when the owner rewrote the whole chain consistently (the signed checkpoints)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from joserfc import jws
from joserfc.jwk import ECKey
from sqlalchemy import select

from backend.context import Principal, RequestContext
from backend.crm.contacts.service import contacts
from backend.history.chain import link
from backend.history.changes import RecordChange, value_digest
from backend.history.checkpoints import checkpoint_name
from backend.history.sealer import SOURCES, seal_tenant
from backend.history.seals import seals
from backend.runtime import Services
from tests.conftest import Cluster, TenantUser, new_tenant
from tests.security.audit_helpers import (
    as_owner,
    checkpoint,
    contact_with_history,
    dsn,
    seal,
    store,
    verify,
)


async def _history_ids(cluster: Cluster, tenant_id: uuid.UUID) -> list[tuple[int, uuid.UUID]]:
    """(seq, row id) of the tenant's sealed history rows, in chain order."""
    async with as_owner(cluster, tenant_id, disable_triggers=False) as conn:
        rows = await conn.fetch(
            "select id, row_id from audit_seals where source = 'history' order by id"
        )
    return [(r["id"], r["row_id"]) for r in rows]


@pytest.fixture
async def sealed(services: Services, client: httpx.AsyncClient, cluster: Cluster) -> TenantUser:
    """A fresh tenant with a little history, sealed and checkpointed; verify passes."""
    tenant = await new_tenant(services, client, "chain")
    await contact_with_history(client, tenant)
    await seal(services, tenant.tenant_id)
    await checkpoint(services, cluster, tenant.tenant_id)
    report = await verify(services, cluster, tenant)
    assert report.ok, report.findings
    return tenant


@pytest.mark.parametrize(
    "statement",
    [
        "update record_history set field = 'x'",
        "delete from record_history",
        "truncate record_history",
        "update audit_seals set hash = repeat('0', 64)",
        "delete from audit_seals",
        "truncate audit_seals",
        "insert into audit_seals (tenant_id, id, source, row_id, row_txid, prev_hash, hash)"
        " values ('00000000-0000-0000-0000-000000000000', 1, 'x', gen_random_uuid(), 0, '', '')",
    ],
)
async def test_app_role_cannot_rewrite_history_or_seals(
    sealed: TenantUser, cluster: Cluster, statement: str
) -> None:
    conn = await asyncpg.connect(dsn(cluster.urls.app_url))
    try:
        async with conn.transaction():
            await conn.execute(
                "select set_config('app.tenant_id', $1, true)", str(sealed.tenant_id)
            )
            # Even with the erasure/prune flags set by hand: they open nothing without grants.
            await conn.execute("select set_config('caravan.history_erasing', 'on', true)")
            await conn.execute("select set_config('caravan.audit_pruning', 'on', true)")
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_the_owner_is_refused_too_unless_triggers_are_disabled(
    sealed: TenantUser, cluster: Cluster
) -> None:
    async with as_owner(cluster, sealed.tenant_id, disable_triggers=False) as conn:
        for statement in (
            "update record_history set new_digest = 'x'",
            "delete from audit_seals",
            # The erasure flag allows only values -> NULL, nothing else in the same row.
            "select set_config('caravan.history_erasing', 'on', true);"
            " update record_history set old_value = null, new_value = null, field = 'x'",
        ):
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.execute(statement)


async def test_the_app_role_cannot_prune_inside_retention(
    sealed: TenantUser, services: Services
) -> None:
    async with services.db.tenant_transaction(sealed.tenant_id) as conn:
        with pytest.raises(Exception, match=r"within retention|cannot be pruned"):
            await conn.exec_driver_sql("select caravan_prune_audit(1, 1, 1)")


async def test_a_rolled_back_change_leaves_no_history(
    services: Services, tenant_a: TenantUser
) -> None:
    ctx = RequestContext(
        Principal(user_id=tenant_a.user_id, tenant_id=tenant_a.tenant_id), services.db, "system"
    )
    made = await contacts.create(ctx, {"last_name": "Rollback"})
    with pytest.raises(RuntimeError):
        async with ctx.session.request_scope():
            await contacts.update(ctx, made["id"], {"title": "Never"}, expected_version=1)
            raise RuntimeError("the operation fails after the write")
    table = SOURCES["history"]
    async with services.db.tenant_transaction(tenant_a.tenant_id) as conn:
        events = (
            await conn.execute(select(table.c.event).where(table.c.record_id == made["id"]))
        ).scalars()
        assert list(events) == ["create"]


async def test_concurrent_writers_are_sealed_gap_free_and_in_order(
    services: Services, client: httpx.AsyncClient, cluster: Cluster
) -> None:
    tenants = [await new_tenant(services, client, name) for name in ("conc-x", "conc-y")]
    ids: dict[uuid.UUID, list[str]] = {}
    for tenant in tenants:
        made = [
            await client.post(
                "/api/v1/contacts", json={"last_name": f"C{i}"}, headers=tenant.headers
            )
            for i in range(100)
        ]
        ids[tenant.tenant_id] = [m.json()["id"] for m in made]

    async def update(tenant: TenantUser, contact_id: str) -> None:
        changed = await client.patch(
            f"/api/v1/contacts/{contact_id}",
            json={"title": "Changed", "phone": "+1 555"},
            headers={**tenant.headers, "If-Match": '"1"'},
        )
        assert changed.status_code == 200, changed.text

    async def sealers() -> None:  # sealing runs while the writers write, twice at once
        for _ in range(10):
            await asyncio.gather(*(seal_tenant(services.db, t.tenant_id) for t in tenants * 2))
            await asyncio.sleep(0.01)

    await asyncio.gather(sealers(), *(update(t, c) for t in tenants for c in ids[t.tenant_id]))
    for tenant in tenants:
        await seal(services, tenant.tenant_id)
        report = await verify(services, cluster, tenant, max_unsealed_age=timedelta(0))
        assert report.ok, report.findings
        async with services.db.tenant_transaction(tenant.tenant_id) as conn:
            chain = (await conn.execute(select(seals).order_by(seals.c.id))).all()
            history = (
                await conn.execute(select(RecordChange.id).where(RecordChange.event == "update"))
            ).all()
        assert len(history) == 200  # two fields changed on each of 100 contacts
        assert [s.id for s in chain] == list(range(1, len(chain) + 1))
        assert len({(s.source, s.row_id) for s in chain}) == len(chain)
        txids = [s.row_txid for s in chain]
        assert txids == sorted(txids)  # the order their transactions became final


async def test_verify_names_an_edited_value(
    sealed: TenantUser, services: Services, cluster: Cluster
) -> None:
    seq, row_id = (await _history_ids(cluster, sealed.tenant_id))[-1]
    async with as_owner(cluster, sealed.tenant_id) as conn:
        await conn.execute(
            "update record_history set new_value = '\"forged@x.example\"' where id = $1", row_id
        )
    report = await verify(services, cluster, sealed)
    first = report.findings[0]
    assert (first.problem, first.seq, first.row_id) == ("value_altered", seq, row_id)


async def test_verify_names_an_edited_digest(
    sealed: TenantUser, services: Services, cluster: Cluster
) -> None:
    seq, row_id = (await _history_ids(cluster, sealed.tenant_id))[1]
    async with as_owner(cluster, sealed.tenant_id) as conn:
        await conn.execute(
            "update record_history set new_digest = repeat('a', 64) where id = $1", row_id
        )
    report = await verify(services, cluster, sealed)
    first = report.findings[0]
    assert (first.problem, first.seq, first.row_id) == ("row_altered", seq, row_id)


async def test_verify_names_a_deleted_row(
    sealed: TenantUser, services: Services, cluster: Cluster
) -> None:
    seq, row_id = (await _history_ids(cluster, sealed.tenant_id))[0]
    async with as_owner(cluster, sealed.tenant_id) as conn:
        await conn.execute("delete from record_history where id = $1", row_id)
    report = await verify(services, cluster, sealed)
    first = report.findings[0]
    assert (first.problem, first.seq, first.row_id) == ("row_deleted", seq, row_id)


async def test_verify_names_swapped_seals(
    sealed: TenantUser, services: Services, cluster: Cluster
) -> None:
    (seq_a, row_a), (seq_b, row_b) = (await _history_ids(cluster, sealed.tenant_id))[:2]
    async with as_owner(cluster, sealed.tenant_id) as conn:
        swap = "update audit_seals set row_id = $2 where id = $1"
        await conn.execute(swap, seq_a, uuid.uuid4())
        await conn.execute(swap, seq_b, row_a)
        await conn.execute(swap, seq_a, row_b)
    report = await verify(services, cluster, sealed)
    first = report.findings[0]
    assert (first.problem, first.seq, first.row_id) == ("row_altered", seq_a, row_b)


async def test_verify_names_a_deleted_seal_and_row(
    sealed: TenantUser, services: Services, cluster: Cluster
) -> None:
    seq, row_id = (await _history_ids(cluster, sealed.tenant_id))[1]
    async with as_owner(cluster, sealed.tenant_id) as conn:
        await conn.execute("delete from audit_seals where id = $1", seq)
        await conn.execute("delete from record_history where id = $1", row_id)
    report = await verify(services, cluster, sealed)
    first = report.findings[0]
    assert (first.problem, first.seq) == ("seals_deleted", seq)


async def test_a_consistently_rewritten_chain_is_caught_by_the_checkpoint(
    sealed: TenantUser, services: Services, cluster: Cluster
) -> None:
    """The owner edits a value AND its digest, then recomputes every later seal: the chain is
    internally consistent again, but disagrees with the signed checkpoint."""
    seq, row_id = (await _history_ids(cluster, sealed.tenant_id))[1]
    async with services.db.tenant_transaction(sealed.tenant_id) as conn:
        chain = (await conn.execute(select(seals).order_by(seals.c.id))).all()
        rows: dict[uuid.UUID, dict[str, Any]] = {}
        for source, table in SOURCES.items():
            for row in (await conn.execute(select(table))).mappings():
                rows[row["id"]] = {**row, "_source": source}
    forged = rows[row_id]
    forged["new_value"] = "forged@x.example"
    forged["new_digest"] = value_digest(forged["value_salt"], forged["new_value"])
    rewritten = []
    prev = chain[seq - 2].hash
    for s in chain[seq - 1 :]:
        new_hash = link(prev, s.id, s.source, rows[s.row_id])
        rewritten.append((s.id, prev, new_hash))
        prev = new_hash
    async with as_owner(cluster, sealed.tenant_id) as conn:
        await conn.execute(
            "update record_history set new_value = $2::jsonb, new_digest = $3 where id = $1",
            row_id,
            json.dumps(forged["new_value"]),
            forged["new_digest"],
        )
        await conn.executemany(
            "update audit_seals set prev_hash = $2, hash = $3 where id = $1", rewritten
        )
    report = await verify(services, cluster, sealed)
    assert [f.problem for f in report.findings] == ["checkpoint_mismatch"]
    assert report.findings[0].seq == chain[-1].id


async def test_a_cut_off_tail_is_caught_by_the_checkpoint(
    sealed: TenantUser, services: Services, cluster: Cluster
) -> None:
    async with as_owner(cluster, sealed.tenant_id) as conn:
        last = await conn.fetchrow("select id, source, row_id from audit_seals order by id desc")
        assert last is not None
        await conn.execute("delete from audit_seals where id = $1", last["id"])
        await conn.execute("delete from record_history where id = $1", last["row_id"])
        await conn.execute("delete from security_events where id = $1", last["row_id"])
    report = await verify(services, cluster, sealed)
    assert [(f.problem, f.seq) for f in report.findings] == [("chain_truncated", last["id"])]


async def test_rows_left_unsealed_too_long_are_flagged(
    sealed: TenantUser, services: Services, cluster: Cluster, client: httpx.AsyncClient
) -> None:
    await contact_with_history(client, sealed)
    assert (await verify(services, cluster, sealed)).unsealed_pending > 0
    report = await verify(services, cluster, sealed, max_unsealed_age=timedelta(0))
    assert [f.problem for f in report.findings] == ["unsealed"]
    assert report.findings[0].source == "history"


async def test_a_forged_or_tampered_checkpoint_is_refused(
    sealed: TenantUser, services: Services, cluster: Cluster
) -> None:
    names = await store(cluster).names(sealed.tenant_id)
    genuine = await store(cluster).get(sealed.tenant_id, names[-1])
    header, _, signature = genuine.decode().split(".")
    claims = json.loads(jws.extract_compact(genuine).payload)
    claims["hash"] = "f" * 64
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    now = datetime.now(UTC)
    await store(cluster).put(
        sealed.tenant_id,
        checkpoint_name(claims["seq"], "head", now),
        f"{header}.{payload}.{signature}".encode(),
    )
    forger = ECKey.generate_key("P-256", private=True)
    forger.ensure_kid()
    forged = jws.serialize_compact(
        {"alg": "ES256", "kid": forger.kid}, json.dumps(claims), forger, algorithms=["ES256"]
    )
    await store(cluster).put(
        sealed.tenant_id, checkpoint_name(claims["seq"] + 1, "head", now), forged.encode()
    )
    report = await verify(services, cluster, sealed)
    assert [f.problem for f in report.findings] == ["checkpoint_untrusted"] * 2
    details = sorted(f.detail for f in report.findings)
    assert "does not verify" in details[0] and "not a trusted key" in details[1]
