"""Every CRM entity the record service serves: policy, masking and scope apply to each."""

from __future__ import annotations

from backend.crm.accounts.service import accounts
from backend.crm.activities.service import activities
from backend.crm.cases.service import cases
from backend.crm.contacts.service import contacts
from backend.crm.leads.service import leads
from backend.crm.opportunities.service import opportunities
from backend.crm.orders.service import order_lines, orders
from backend.crm.products.service import price_book_entries, price_books, products
from backend.crm.quotes.service import quote_lines, quotes
from backend.records.service import RecordService
from backend.records.spec import EntitySpec

SERVICES: dict[str, RecordService] = {
    s.spec.name: s
    for s in (
        accounts,
        contacts,
        opportunities,
        activities,
        leads,
        cases,
        products,
        price_books,
        price_book_entries,
        quotes,
        quote_lines,
        orders,
        order_lines,
    )
}
ENTITIES: dict[str, EntitySpec] = {s.spec.name: s.spec for s in SERVICES.values()}


def entity_fields(entity: EntitySpec) -> list[str]:
    """The fields policy can mask: every column but tenant_id and the system fields."""
    system = {"id", "version", "created_at", "updated_at"}
    # `custom` holds the tenant's custom fields, each its own policy object (`cf_<key>`).
    return [c.name for c in entity.table.c if c.name not in ("tenant_id", "custom", *system)]
