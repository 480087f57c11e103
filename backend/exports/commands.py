"""`caravan export list|trace|sweep`. `list_exports`, `trace` and `sweep` do the work, given the
process's services: each returns the JSON to print and the exit status (trace: 1 when the file
carries no valid watermark)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from backend.commandline import Command, print_json, with_services
from backend.db.base import table_of
from backend.exports.models import Export
from backend.exports.sweeper import sweep_tenant
from backend.exports.watermark import trace_file
from backend.history.audit_tenants import audit_tenants
from backend.settings import Settings
from backend.tenants.models import User

if TYPE_CHECKING:
    from backend.runtime import Services

Outcome = tuple[dict[str, Any], int]
_exports, _users = table_of(Export), table_of(User)
_COLUMNS = (
    _exports.c.id,
    _exports.c.status,
    _exports.c.entity,
    _exports.c.format,
    _exports.c.row_count,
    _exports.c.fields,
    _exports.c.reason,
    _exports.c.created_at,
    _exports.c.requested_by,
    _users.c.email.label("requester_email"),
    _exports.c.downloads,
)


def _joined() -> Any:
    return _exports.join(
        _users,
        (_users.c.tenant_id == _exports.c.tenant_id) & (_users.c.id == _exports.c.requested_by),
    )


async def list_exports(services: Services, args: argparse.Namespace) -> Outcome:
    tenants = await audit_tenants(services.db, args.tenant)
    listed = []
    for tenant in tenants:
        async with services.db.tenant_transaction(tenant.id) as conn:
            stmt = select(*_COLUMNS).select_from(_joined()).order_by(_exports.c.id.desc())
            rows = (await conn.execute(stmt)).mappings().all()
        listed += [{"tenant": tenant.slug, **dict(r)} for r in rows]
    return {"exports": listed}, 0


async def trace(services: Services, args: argparse.Namespace) -> Outcome:
    path = Path(args.file)
    found = trace_file(services.exports.mark_key, path)
    slugs = {t.id: t.slug for t in await audit_tenants(services.db)}
    exports = []
    for mark in found.marks:
        async with services.db.tenant_transaction(mark.tenant_id) as conn:
            stmt = select(*_COLUMNS).select_from(_joined()).where(_exports.c.id == mark.export_id)
            row = (await conn.execute(stmt)).mappings().first()
        exports.append(
            {
                "export_id": mark.export_id,
                "tenant_id": mark.tenant_id,
                "tenant": slugs.get(mark.tenant_id),
                "requested_by": mark.requester_id,
                "requester_email": row["requester_email"] if row else None,
                "entity": row["entity"] if row else None,
                "created_at": row["created_at"] if row else None,
                "row_count": row["row_count"] if row else None,
                "verified": True,
            }
        )
    body = {
        "file": str(path),
        "watermarks_found": found.found,
        "forged_or_damaged": found.invalid,
        "exports": exports,
    }
    return body, 0 if exports else 1


async def sweep(services: Services, args: argparse.Namespace) -> Outcome:
    tenants = await audit_tenants(services.db, args.tenant)
    data_dir = services.settings.data_dir
    counts = {t.slug: await sweep_tenant(services.db, data_dir, t.id) for t in tenants}
    return {"expired": counts}, 0


def _export_arguments(export: argparse.ArgumentParser) -> None:
    export_cmds = export.add_subparsers(dest="action", required=True)
    listing = export_cmds.add_parser("list", help="every export (or one tenant's), newest first")
    listing.add_argument("--tenant", help="a tenant's slug (default: every tenant)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    trace_cmd = export_cmds.add_parser("trace", help="name the export a file came from (watermark)")
    trace_cmd.add_argument("file", metavar="FILE")
    sweep_cmd = export_cmds.add_parser("sweep", help="delete export files past their expiry")
    sweep_cmd.add_argument("--tenant", help="a tenant's slug (default: every tenant)")


def cmd_export(settings: Settings, args: argparse.Namespace) -> None:
    run = {"list": list_exports, "trace": trace, "sweep": sweep}
    body, status = with_services(settings, lambda services: run[args.action](services, args))
    if args.action == "list" and not args.json:
        for item in body["exports"]:
            print(
                f"{item['tenant']}  {item['id']}  {item['status']:8} {item['entity']:12} "
                f"{item['format']:5} {item['row_count']:>7} rows  {item['requester_email']}  "
                f"{item['created_at']:%Y-%m-%d %H:%M}"
            )
    else:
        print_json(body)
    if status:
        raise SystemExit(status)


COMMANDS = (
    Command("export", "exports: list them, trace a leaked file", cmd_export, _export_arguments),
)
