"""`caravan service sla-check [--tenant SLUG]`: mark, escalate and audit the breached cases
now (the same check `caravan serve` runs every CARAVAN_SLA_CHECK_INTERVAL seconds)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
from typing import Any

from backend.commandline import Command, print_json, with_database
from backend.crm.cases.sla import check_breaches
from backend.db.session import Database
from backend.history.audit_tenants import audit_tenants
from backend.settings import Settings


async def sla_check(
    db: Database, slug: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Every tenant's (or one's) breach check; `now` for tests (default: the clock)."""
    report: dict[str, Any] = {}
    for tenant in await audit_tenants(db, slug):
        done = await check_breaches(db, tenant.id, now)
        if done:
            report[tenant.slug] = done
    return {"breached": report}


def _arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    check = actions.add_parser("sla-check", help="mark and escalate cases past their SLA")
    check.add_argument("--tenant", help="a tenant's slug (default: every tenant)")


def cmd_service(settings: Settings, args: argparse.Namespace) -> None:
    print_json(asyncio.run(with_database(settings, lambda db: sla_check(db, args.tenant))))


COMMANDS = (Command("service", "the service side: SLA checks", cmd_service, _arguments),)
