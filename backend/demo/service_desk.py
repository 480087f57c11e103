"""The service side: two case queues, an SLA policy per priority, a few cases, and published
knowledge articles."""

from __future__ import annotations

import random

from backend.context import RequestContext
from backend.crm.cases.service import cases
from backend.crm.cases.setup import save_policy, save_queue
from backend.demo.names import ARTICLES, CASE_SUBJECTS
from backend.demo.sales import Book
from backend.knowledge.articles import create_article

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
# priority: (first response, resolution) in business minutes
SLA_MINUTES = {"urgent": (60, 480), "high": (240, 960), "normal": (480, 2400)}


async def seed_service_desk(
    admin: RequestContext, rng: random.Random, book: Book, n_cases: int
) -> int:
    queues = [
        await save_queue(admin, {"name": name, "description": description})
        for name, description in (
            ("Support", "Questions and problems with products"),
            ("Billing", "Invoices, addresses and returns"),
        )
    ]
    hours = {day: ["08:00", "18:00"] for day in WEEKDAYS}
    for priority, (first, resolution) in SLA_MINUTES.items():
        await save_policy(
            admin,
            {
                "priority": priority,
                "first_response_minutes": first,
                "resolution_minutes": resolution,
                "business_hours": hours,
            },
        )
    for i in range(n_cases):
        _, account, contact = book.accounts[rng.randrange(len(book.accounts))]
        subject, kind = CASE_SUBJECTS[i % len(CASE_SUBJECTS)]
        queue = queues[0] if kind in ("problem", "question", "complaint") else queues[1]
        await cases.create(
            admin,
            {
                "subject": subject,
                "type": kind,
                "priority": rng.choice(list(SLA_MINUTES)),
                "channel": rng.choice(["phone", "email", "web"]),
                "account_id": str(account["id"]),
                "contact_id": str(contact["id"]),
                "queue_id": str(queue["id"]),
            },
        )
    for title, body in ARTICLES:
        await create_article(
            admin,
            {
                "title": title,
                "body": body,
                "language": "en",
                "status": "published",
                "audience": "public",
                "tags": ["help"],
            },
        )
    return n_cases
