"""Accounts with contacts, opportunities moved through the pipeline (so each has a stage
history), activities, and a year of leads, some converted: all written by the reps who own
them, through the record services."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from backend.crm.accounts.service import accounts
from backend.crm.activities.service import activities
from backend.crm.contacts.service import contacts
from backend.crm.leads.convert import convert_lead
from backend.crm.leads.service import leads
from backend.crm.opportunities.models import STAGES
from backend.crm.opportunities.service import opportunities
from backend.demo.names import (
    CALL_NOTES,
    CITIES,
    DEALS,
    FIRST,
    INDUSTRY,
    LAST,
    LEAD_SOURCES,
    PREFIX,
    SUFFIX,
    TITLES,
)
from backend.demo.people import Rep
from backend.records.service import Record

OPEN_STAGES = [stage for stage in STAGES if not stage.startswith("closed")]


@dataclass
class Book:
    """What the reps seeded, for the later steps (quotes, orders, cases)."""

    accounts: list[tuple[Rep, Record, Record]] = field(default_factory=list)  # with a contact
    opportunities: list[tuple[Rep, Record]] = field(default_factory=list)
    contacts: int = 0
    activities: int = 0
    leads: int = 0
    converted: int = 0


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


async def seed_accounts(
    rng: random.Random, reps: list[Rep], book: Book, n_accounts: int, today: date
) -> None:
    sellers = [rep for rep in reps if rep.role == "salesperson"]
    for i in range(n_accounts):
        rep = sellers[i % len(sellers)]
        suffix = rng.choice(SUFFIX)
        city, country, dial = rng.choice(CITIES)
        company = f"{rng.choice(PREFIX)} {suffix}"
        domain = company.lower().replace(" ", "") + f"{i}.example"
        account = await accounts.create(
            rep.ctx,
            {
                "name": f"{company} {i + 1}",
                "industry": INDUSTRY[suffix],
                "website": f"https://www.{domain}",
                "phone": f"{dial} {rng.randint(100000, 999999)}",
                "city": city,
                "country": country,
                "tags": rng.sample(["key-account", "prospect", "partner", "renewal", "smb"], 2),
            },
        )
        for _ in range(rng.randint(1, 4)):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            contact = await contacts.create(
                rep.ctx,
                {
                    "first_name": first,
                    "last_name": last,
                    "email": _ascii(f"{first}.{last}@{domain}".lower()),
                    "mobile_phone": f"{dial} {rng.randint(1000000, 9999999)}",
                    "title": rng.choice(TITLES),
                    "account_id": str(account["id"]),
                    "city": city,
                    "country": country,
                },
            )
            book.contacts += 1
        book.accounts.append((rep, account, contact))
        for _ in range(rng.randint(1, 2)):
            book.opportunities.append((rep, await _opportunity(rng, rep, account, today)))
        for _ in range(rng.randint(0, 2)):
            await activities.create(rep.ctx, _activity(rng, account, contact, today))
            book.activities += 1


async def _opportunity(rng: random.Random, rep: Rep, account: Record, today: date) -> Record:
    """Created in the first stage and moved stage by stage to where it ends, as a rep would."""
    target = rng.choice(STAGES)
    closed = target.startswith("closed")
    days = -rng.randint(5, 360) if closed else rng.randint(5, 270)
    deal = await opportunities.create(
        rep.ctx,
        {
            "name": f"{rng.choice(DEALS)} for {account['name']}",
            "stage": OPEN_STAGES[0],
            "amount": rng.randrange(1_000, 250_000, 500),
            "currency": "EUR",
            "close_date": (today + timedelta(days=days)).isoformat(),
            "account_id": str(account["id"]),
        },
    )
    last_open = OPEN_STAGES.index(target) if not closed else rng.randrange(len(OPEN_STAGES))
    path = OPEN_STAGES[1 : last_open + 1] + ([target] if closed else [])
    for stage in path:
        deal = await opportunities.update(rep.ctx, deal["id"], {"stage": stage}, deal["version"])
    return deal


def _activity(rng: random.Random, account: Record, contact: Record, today: date) -> dict[str, Any]:
    """A call with notes (for caller lookup) or a meeting with a reminder (for the calendar)."""
    start = datetime(today.year, today.month, today.day, 9, tzinfo=UTC) + timedelta(
        days=rng.randint(-30, 60), hours=rng.randint(0, 8)
    )
    links = {"account_id": str(account["id"]), "contact_id": str(contact["id"])}
    if rng.random() < 0.5:
        return {
            "kind": "call",
            "subject": f"Call with {contact['last_name']}",
            "notes": rng.choice(CALL_NOTES),
            "starts_at": start.isoformat(),
            "completed_at": (start + timedelta(minutes=15)).isoformat(),
            **links,
        }
    return {
        "kind": "meeting",
        "subject": f"Meeting at {account['name']}",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
        "remind_minutes_before": 30,
        **links,
    }


async def seed_leads(rng: random.Random, book: Book, n_leads: int) -> None:
    """Leads of the reps who own accounts; about a third converted into the rep's own account
    (so conversion adds contacts and deals, not accounts)."""
    for i in range(n_leads):
        rep, account, _ = book.accounts[i % len(book.accounts)]
        first, last = rng.choice(FIRST), rng.choice(LAST)
        lead = await leads.create(
            rep.ctx,
            {
                "first_name": first,
                "last_name": last,
                "company": account["name"],
                "email": _ascii(f"{first}.{last}.{i}@lead.example".lower()),
                "source": rng.choice(LEAD_SOURCES),
                "rating": rng.choice(["hot", "warm", "cold"]),
                "status": rng.choice(["new", "working", "qualified", "disqualified"]),
            },
        )
        book.leads += 1
        if i % 3 == 0:
            wanted = {
                "name": f"{rng.choice(DEALS)} ({last})",
                "amount": rng.randrange(2_000, 60_000, 500),
            }
            converted = await convert_lead(
                rep.ctx, lead["id"], account_id=str(account["id"]), opportunity=wanted
            )
            book.converted += 1
            book.contacts += 1
            if converted.opportunity is not None:
                book.opportunities.append((rep, converted.opportunity))
