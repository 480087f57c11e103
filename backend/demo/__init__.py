"""`caravan demo`: one living demo tenant. Two sales teams (a sales manager and salespeople
each, signing in with the admin's password) own accounts, contacts, opportunities moved through
the pipeline, activities and leads (some converted); a product catalog with quotes and a year of
orders; case queues, SLA policies, cases and published knowledge articles. Every record goes
through the services (policy, history and stage history as for any write); seeded random, so
the same seed gives the same tenant."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from backend.db.session import Database
from backend.demo.commerce import seed_catalog, seed_orders, seed_quotes
from backend.demo.names import DEMO_TENANT_NAME
from backend.demo.people import as_user, seed_sales_force
from backend.demo.sales import Book, seed_accounts, seed_leads
from backend.demo.service_desk import seed_service_desk
from backend.tenants.service import create_tenant

__all__ = ["DEMO_TENANT_NAME", "SIZES", "DemoResult", "DemoSize", "seed_demo"]


@dataclass(frozen=True)
class DemoSize:
    accounts: int  # unless --accounts says otherwise
    salespeople_per_team: int
    leads: int
    quotes: int
    orders: int
    cases: int


SIZES = {
    "small": DemoSize(accounts=8, salespeople_per_team=2, leads=9, quotes=3, orders=14, cases=3),
    "normal": DemoSize(
        accounts=120, salespeople_per_team=3, leads=120, quotes=25, orders=150, cases=12
    ),
}


@dataclass(frozen=True)
class DemoResult:
    slug: str
    email: str
    accounts: int
    contacts: int
    opportunities: int
    activities: int = 0
    reps: tuple[str, ...] = ()  # "email (role, team)"
    leads: int = 0
    converted: int = 0
    quotes: int = 0
    orders: int = 0
    cases: int = 0


async def seed_demo(
    db: Database,
    *,
    slug: str,
    email: str,
    password: str,
    n_accounts: int | None = None,
    seed: int = 7,
    size: str = "normal",
) -> DemoResult:
    plan = SIZES[size]
    n_accounts = plan.accounts if n_accounts is None else n_accounts
    # MFA for admins is off in the demo tenant, so the tour signs in with a password only.
    created = await create_tenant(
        db,
        name=DEMO_TENANT_NAME,
        slug=slug,
        admin_email=email,
        admin_password=password,
        require_admin_mfa=False,
    )
    admin = as_user(db, created.tenant_id, created.admin_user_id)
    rng = random.Random(seed)
    today = datetime.now(UTC).date()
    reps = await seed_sales_force(
        admin,
        slug=slug,
        domain=email.rpartition("@")[2],
        password=password,
        per_team=plan.salespeople_per_team,
    )
    book = Book()
    await seed_accounts(rng, reps, book, n_accounts, today)
    n_orders = n_quotes = n_cases = 0
    if book.accounts:
        await seed_leads(rng, book, plan.leads)
        catalog = await seed_catalog(admin)
        n_quotes = await seed_quotes(rng, book, catalog, plan.quotes, today)
        n_orders = await seed_orders(rng, book, catalog, plan.orders, today)
        n_cases = await seed_service_desk(admin, rng, book, plan.cases)
    return DemoResult(
        slug=slug,
        email=email,
        accounts=n_accounts,
        contacts=book.contacts,
        opportunities=len(book.opportunities),
        activities=book.activities,
        reps=tuple(f"{rep.email} ({rep.role}, {rep.team})" for rep in reps),
        leads=book.leads,
        converted=book.converted,
        quotes=n_quotes,
        orders=n_orders,
        cases=n_cases,
    )
