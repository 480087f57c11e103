"""`caravan tenant create`, `caravan user create` and `caravan demo`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from backend.commandline import Command, print_json, with_database
from backend.db.session import Database
from backend.settings import Settings


def _tenant_arguments(tenant: argparse.ArgumentParser) -> None:
    tenant_cmds = tenant.add_subparsers(dest="action", required=True)
    tenant_create = tenant_cmds.add_parser("create", help="create a tenant and its first admin")
    tenant_create.add_argument("--name", required=True)
    tenant_create.add_argument("--slug", required=True)
    tenant_create.add_argument("--admin-email", required=True)
    tenant_create.add_argument("--admin-password", required=True)
    tenant_create.add_argument(
        "--no-admin-mfa",
        action="store_true",
        help="do not require MFA for the tenant's admins (development and test tenants)",
    )


def _user_arguments(user: argparse.ArgumentParser) -> None:
    user_cmds = user.add_subparsers(dest="action", required=True)
    user_create = user_cmds.add_parser("create", help="create a user in a tenant")
    user_create.add_argument("--tenant", required=True, help="the tenant's slug")
    user_create.add_argument("--email", required=True)
    user_create.add_argument("--password", required=True)
    user_create.add_argument("--name")
    user_create.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="NAME",
        help="a role to give (repeatable; default: salesperson)",
    )


def _demo_arguments(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--slug", default="demo")
    demo.add_argument("--email", default="admin@demo.example")
    demo.add_argument("--password", help="the admin's password (default: a random one)")
    demo.add_argument(
        "--size",
        choices=("small", "normal"),
        default="normal",
        help="how much to seed (default normal: about a minute; small: a few seconds)",
    )
    demo.add_argument(
        "--accounts", type=int, help="how many accounts (default: 120 normal, 8 small)"
    )
    demo.add_argument(
        "--reset", action="store_true", help="drop the demo tenant if it exists and seed it afresh"
    )


def cmd_tenant(settings: Settings, args: argparse.Namespace) -> None:
    from backend.tenants.service import create_tenant

    async def work(db: Database) -> Any:
        return await create_tenant(
            db,
            name=args.name,
            slug=args.slug,
            admin_email=args.admin_email,
            admin_password=args.admin_password,
            require_admin_mfa=not args.no_admin_mfa,
        )

    created = asyncio.run(with_database(settings, work))
    print_json(
        {
            "tenant_id": created.tenant_id,
            "slug": created.slug,
            "admin_user_id": created.admin_user_id,
        }
    )


def cmd_user(settings: Settings, args: argparse.Namespace) -> None:
    from backend.tenants.service import create_user

    async def work(db: Database) -> Any:
        return await create_user(
            db,
            tenant_slug=args.tenant,
            email=args.email,
            password=args.password,
            name=args.name,
            roles=args.role,
        )

    user_id = asyncio.run(with_database(settings, work))
    print_json(
        {
            "user_id": user_id,
            "tenant": args.tenant,
            "email": args.email.lower(),
            "roles": args.role or ["salesperson"],
        }
    )


def cmd_demo(settings: Settings, args: argparse.Namespace) -> None:
    # Seeding and --reset live in backend/demo_command.py (it needs the owner role's URL).
    from backend.demo_command import cmd_demo as run

    run(settings, args)


COMMANDS = (
    Command("tenant", "tenant administration", cmd_tenant, _tenant_arguments),
    Command("user", "user administration", cmd_user, _user_arguments),
    Command("demo", "create a demo tenant with realistic data", cmd_demo, _demo_arguments),
)
