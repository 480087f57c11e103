"""What `caravan audit ...` and `caravan history erase` do, given the process's services.
Each returns the JSON to print and the exit status (verify: 1 when anything was found)."""

from __future__ import annotations

import argparse
import uuid
from datetime import timedelta
from typing import Any

from backend.errors import NotFound
from backend.history.audit_tenants import audit_tenants
from backend.history.checkpoints import checkpoint_tenant, default_store, trusted_keys
from backend.history.erasure import erase_record_history
from backend.history.retention import Retention, get_retention, prune_tenant, set_retention
from backend.history.sealer import seal_tenant
from backend.history.verify import verify_tenant
from backend.runtime import Services

Outcome = tuple[dict[str, Any], int]


def _days(raw: str | None, current: int | None) -> int | None:
    if raw is None:
        return current
    return None if raw.lower() in ("none", "forever", "off") else int(raw)


async def audit(services: Services, args: argparse.Namespace) -> Outcome:
    db = services.db
    store = default_store(services.settings.data_dir)
    tenants = await audit_tenants(db, args.tenant)
    if args.action == "seal":
        results = [await seal_tenant(db, t.id) for t in tenants]
        return {
            "tenants": [
                {"tenant": t.slug, "sealed": r.sealed, "head_seq": r.head_seq, "busy": r.busy}
                for t, r in zip(tenants, results, strict=True)
            ]
        }, 0
    if args.action == "verify":
        keys = await trusted_keys(db, services.keys.box)
        age = timedelta(seconds=args.max_unsealed_age)
        reports = [await verify_tenant(db, t, keys, store, age) for t in tenants]
        ok = all(r.ok for r in reports)
        return {"ok": ok, "tenants": [r.as_dict() for r in reports]}, 0 if ok else 1
    await services.keys.load()
    if args.action == "checkpoint":
        written = [await checkpoint_tenant(db, services.keys.current, store, t.id) for t in tenants]
        return {
            "checkpoints": [
                {"tenant": t.slug, "seq": w[0] if w else None, "file": w[1] if w else None}
                for t, w in zip(tenants, written, strict=True)
            ]
        }, 0
    if args.action == "prune":
        pruned = [await prune_tenant(db, services.keys.current, store, t.id) for t in tenants]
        return {
            "pruned": [
                {
                    "tenant": t.slug,
                    "rows_deleted": p.rows_deleted,
                    "history_through": p.history_through,
                    "events_through": p.events_through,
                    "seals_through": p.seals_through,
                    "checkpoint": p.checkpoint,
                }
                for t, p in zip(tenants, pruned, strict=True)
            ]
        }, 0
    # retention
    (tenant,) = tenants
    current = await get_retention(db, tenant.id)
    wanted = Retention(
        _days(args.history_days, current.history_days), _days(args.audit_days, current.audit_days)
    )
    if wanted != current:
        current = await set_retention(db, tenant.id, wanted)
    return {
        "tenant": tenant.slug,
        "history_retention_days": current.history_days,
        "audit_retention_days": current.audit_days,
    }, 0


async def erase(services: Services, args: argparse.Namespace) -> Outcome:
    (tenant,) = await audit_tenants(services.db, args.tenant)
    try:
        record_id = uuid.UUID(args.record)
    except ValueError:
        raise NotFound(f"{args.entity} not found", field="record") from None
    rows = await erase_record_history(services.db, tenant.id, args.entity, record_id)
    body = {"tenant": tenant.slug, "entity": args.entity, "record": args.record, "redacted": rows}
    return body, 0
