"""`caravan audit seal|checkpoint|prune|verify|retention` and `caravan history erase`.

`audit` and `erase` do the work, given the process's services: each returns the JSON to print
and the exit status (verify: 1 when anything was found)."""

from __future__ import annotations

import argparse
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from backend.commandline import Command, print_json, with_services
from backend.errors import NotFound
from backend.history.audit_tenants import audit_tenants
from backend.history.checkpoints import checkpoint_tenant, default_store, trusted_keys
from backend.history.retention import Retention, get_retention, prune_tenant, set_retention
from backend.history.sealer import seal_tenant
from backend.history.verify import verify_tenant
from backend.settings import Settings

if TYPE_CHECKING:
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
    # Imported here: erasure loads every entity's record service, which the other commands
    # (all built when `caravan` parses its arguments) do not need.
    from backend.history.erasure import erase_record_history

    (tenant,) = await audit_tenants(services.db, args.tenant)
    try:
        record_id = uuid.UUID(args.record)
    except ValueError:
        raise NotFound(f"{args.entity} not found", field="record") from None
    rows = await erase_record_history(services.db, tenant.id, args.entity, record_id)
    body = {"tenant": tenant.slug, "entity": args.entity, "record": args.record, "redacted": rows}
    return body, 0


def _audit_arguments(audit: argparse.ArgumentParser) -> None:
    audit_cmds = audit.add_subparsers(dest="action", required=True)
    for name, text in (
        ("seal", "append committed history and audit rows to their tenant's chain"),
        ("checkpoint", "write signed chain-head checkpoints where backups go"),
        ("prune", "delete sealed rows past the tenant's retention (after a signed checkpoint)"),
    ):
        audit_cmds.add_parser(name, help=text).add_argument("--tenant", help="a tenant's slug")
    verify = audit_cmds.add_parser(
        "verify", help="recompute the chains; exit 1 and name the first tampered row if any"
    )
    verify.add_argument("--tenant", help="a tenant's slug (default: every tenant)")
    verify.add_argument("--max-unsealed-age", type=int, default=600, metavar="SECONDS")
    verify.add_argument("--json", action="store_true", help="print the full report as JSON")
    retention = audit_cmds.add_parser("retention", help="show or set a tenant's retention")
    retention.add_argument("--tenant", required=True)
    retention.add_argument("--history-days", metavar="DAYS|none")
    retention.add_argument("--audit-days", metavar="DAYS|none")


def _history_arguments(history: argparse.ArgumentParser) -> None:
    history_cmds = history.add_subparsers(dest="action", required=True)
    erase_cmd = history_cmds.add_parser(
        "erase", help="privacy erasure: redact a record's history values (the chain stays valid)"
    )
    erase_cmd.add_argument("--tenant", required=True)
    erase_cmd.add_argument("--entity", required=True)
    erase_cmd.add_argument("--record", required=True, metavar="ID")


def cmd_audit(settings: Settings, args: argparse.Namespace) -> None:
    body, status = with_services(settings, lambda services: audit(services, args))
    if args.action == "verify" and not args.json:
        _print_findings(body)
    else:
        print_json(body)
    if status:
        raise SystemExit(status)


def _print_findings(body: dict[str, Any]) -> None:
    for tenant in body["tenants"]:
        state = "ok" if tenant["ok"] else f"{len(tenant['findings'])} finding(s)"
        print(
            f"{tenant['slug']}: {tenant['seals_checked']} seals, head {tenant['head_seq']}, "
            f"{tenant['checkpoints']} checkpoints, {tenant['unsealed_pending']} pending: {state}"
        )
        for finding in tenant["findings"]:
            print(f"  {finding['problem']}: {finding['detail']}")


def cmd_history(settings: Settings, args: argparse.Namespace) -> None:
    body, _ = with_services(settings, lambda services: erase(services, args))
    print_json(body)


COMMANDS = (
    Command("audit", "the tamper-evident history and audit chain", cmd_audit, _audit_arguments),
    Command("history", "change history administration", cmd_history, _history_arguments),
)
