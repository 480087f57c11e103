"""A small product catalog, quotes on open deals, and orders spread over the last twelve months
(fulfilled, open and cancelled) so the analytics have a year to show."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from backend.context import RequestContext
from backend.crm.orders.service import orders
from backend.crm.products.service import products
from backend.crm.quotes.service import quotes
from backend.demo.names import CATALOG
from backend.demo.sales import OPEN_STAGES, Book
from backend.records.service import Record


async def seed_catalog(admin: RequestContext) -> list[Record]:
    return [
        await products.create(
            admin,
            {
                "name": name,
                "sku": sku,
                "category": category,
                "unit_price": price,
                "unit_cost": cost,
                "currency": "EUR",
            },
        )
        for name, sku, category, price, cost in CATALOG
    ]


def _lines(rng: random.Random, catalog: list[Record]) -> list[dict[str, Any]]:
    # Prices and costs come from the catalog (the server fills them).
    return [
        {"product_id": str(product["id"]), "quantity": rng.randint(1, 20)}
        for product in rng.sample(catalog, rng.randint(1, 3))
    ]


async def seed_quotes(
    rng: random.Random, book: Book, catalog: list[Record], n_quotes: int, today: date
) -> int:
    late = [(rep, deal) for rep, deal in book.opportunities if deal["stage"] in OPEN_STAGES[2:]]
    for rep, deal in late[:n_quotes]:
        await quotes.create(
            rep.ctx,
            {
                "name": f"Quote: {deal['name']}"[:200],
                "opportunity_id": str(deal["id"]),
                "status": rng.choice(["draft", "sent", "sent"]),
                "currency": "EUR",
                "valid_until": (today + timedelta(days=30)).isoformat(),
                "lines": _lines(rng, catalog),
            },
        )
    return min(len(late), n_quotes)


async def seed_orders(
    rng: random.Random, book: Book, catalog: list[Record], n_orders: int, today: date
) -> int:
    noon = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
    for i in range(n_orders):
        rep, account, contact = book.accounts[rng.randrange(len(book.accounts))]
        age = 30 * (i % 12) + rng.randint(1, 28)  # one order per month in turn, a year back
        if age > 45:
            status = rng.choices(["fulfilled", "cancelled", "open"], [8, 1, 1])[0]
        else:
            status = rng.choice(["open", "open", "fulfilled"])
        await orders.create(
            rep.ctx,
            {
                "account_id": str(account["id"]),
                "contact_id": str(contact["id"]),
                "ordered_at": (noon - timedelta(days=age)).isoformat(),
                "status": status,
                "currency": "EUR",
                "lines": _lines(rng, catalog),
            },
        )
    return n_orders
