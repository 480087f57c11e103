"""`caravan demo`: one demo tenant with a few hundred realistic accounts, contacts and
opportunities and activities."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from backend.context import Principal, RequestContext
from backend.crm.accounts.service import accounts
from backend.crm.activities.service import activities
from backend.crm.contacts.service import contacts
from backend.crm.opportunities.models import STAGES
from backend.crm.opportunities.service import opportunities
from backend.db.session import Database
from backend.tenants.service import create_tenant

# The demo tenant's name: `caravan demo --reset` drops a tenant only if it carries this name, so
# a mistyped --slug can never delete a real tenant.
DEMO_TENANT_NAME = "Demo Trading Ltd"
CALL_NOTES = [
    "Asked for a quote on the spring order",
    "Unhappy with the last delivery; promised a call back",
    "Budget approved; wants a demo next week",
]
DEALS = ["Annual licence", "Fleet renewal", "Pilot project", "Service contract", "Expansion"]
# The usual weighted-pipeline probability of each stage (closed deals: certain either way).
STAGE_PROBABILITY = {
    "prospecting": 10,
    "qualification": 25,
    "proposal": 50,
    "negotiation": 75,
    "closed_won": 100,
    "closed_lost": 0,
}

FIRST = [
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elif",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Karin",
    "Luca",
    "Maya",
    "Nils",
    "Olga",
    "Pavel",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wim",
    "Yara",
    "Zoe",
]
LAST = [
    "Albrecht",
    "Bianchi",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Hansen",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Urban",
    "Varga",
    "Weber",
    "Yilmaz",
]
PREFIX = [
    "North",
    "Blue",
    "Alpine",
    "Harbor",
    "Summit",
    "Granite",
    "Silver",
    "Meadow",
    "Iron",
    "Coastal",
    "Evergreen",
    "Atlas",
    "Nova",
    "Pioneer",
    "Crescent",
    "Falcon",
]
SUFFIX = [
    "Logistics",
    "Foods",
    "Analytics",
    "Builders",
    "Pharma",
    "Textiles",
    "Energy",
    "Motors",
    "Media",
    "Robotics",
    "Travel",
    "Furniture",
]
INDUSTRY = {
    "Logistics": "Transport",
    "Foods": "Food & Beverage",
    "Analytics": "Software",
    "Builders": "Construction",
    "Pharma": "Healthcare",
    "Textiles": "Manufacturing",
    "Energy": "Utilities",
    "Motors": "Automotive",
    "Media": "Media",
    "Robotics": "Manufacturing",
    "Travel": "Hospitality",
    "Furniture": "Retail",
}
CITIES = [
    ("Berlin", "DE", "+49 30"),
    ("Lyon", "FR", "+33 4"),
    ("Milan", "IT", "+39 02"),
    ("Porto", "PT", "+351 22"),
    ("Gdańsk", "PL", "+48 58"),
    ("Ghent", "BE", "+32 9"),
    ("Aarhus", "DK", "+45 8"),
    ("Graz", "AT", "+43 316"),
]
TITLES = [
    "Buyer",
    "Head of Purchasing",
    "CFO",
    "Operations Manager",
    "CEO",
    "IT Lead",
    "Office Manager",
    "Procurement Specialist",
]


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


@dataclass(frozen=True)
class DemoResult:
    slug: str
    email: str
    accounts: int
    contacts: int
    opportunities: int
    activities: int = 0


async def seed_demo(
    db: Database, *, slug: str, email: str, password: str, n_accounts: int = 120, seed: int = 7
) -> DemoResult:
    # MFA for admins is off in the demo tenant, so the tour signs in with a password only.
    created = await create_tenant(
        db,
        name=DEMO_TENANT_NAME,
        slug=slug,
        admin_email=email,
        admin_password=password,
        require_admin_mfa=False,
    )
    ctx = RequestContext(
        principal=Principal(user_id=created.admin_user_id, tenant_id=created.tenant_id),
        db=db,
        channel="cli",
    )
    rng = random.Random(seed)
    n_contacts = n_opportunities = n_activities = 0
    for i in range(n_accounts):
        suffix = rng.choice(SUFFIX)
        city, country, dial = rng.choice(CITIES)
        company = f"{rng.choice(PREFIX)} {suffix}"
        domain = company.lower().replace(" ", "") + f"{i}.example"
        account = await accounts.create(
            ctx,
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
                ctx,
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
            n_contacts += 1
        for _ in range(rng.randint(0, 2)):
            stage = rng.choice(STAGES)
            await opportunities.create(
                ctx,
                {
                    "name": f"{rng.choice(DEALS)} for {account['name']}",
                    "stage": stage,
                    "amount": rng.randrange(1_000, 250_000, 500),
                    "currency": "EUR",
                    "probability": STAGE_PROBABILITY[stage],
                    "close_date": (
                        date(2026, 12, 1) + timedelta(days=rng.randint(0, 270))
                    ).isoformat(),
                    "cost": rng.randrange(100, 5_000, 50),
                    "account_id": str(account["id"]),
                },
            )
            n_opportunities += 1
        for _ in range(rng.randint(0, 2)):
            await activities.create(ctx, _demo_activity(rng, account, contact))
            n_activities += 1
    return DemoResult(
        slug=slug,
        email=email,
        accounts=n_accounts,
        contacts=n_contacts,
        opportunities=n_opportunities,
        activities=n_activities,
    )


def _demo_activity(
    rng: random.Random, account: dict[str, Any], contact: dict[str, Any]
) -> dict[str, Any]:
    """A call with notes (for caller lookup) or a meeting with a reminder (for the calendar)."""
    start = datetime(2026, 12, 1, 9, tzinfo=UTC) + timedelta(
        days=rng.randint(0, 60), hours=rng.randint(0, 8)
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
