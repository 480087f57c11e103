"""Every CRM entity the record service serves: policy, masking and scope apply to each."""

from __future__ import annotations

from backend.crm.accounts.service import accounts
from backend.crm.activities.service import activities
from backend.crm.cases.service import cases
from backend.crm.contacts.service import contacts
from backend.crm.opportunities.service import opportunities
from backend.records.service import RecordService
from backend.records.spec import EntitySpec

SERVICES: dict[str, RecordService] = {
    s.spec.name: s for s in (accounts, contacts, opportunities, activities, cases)
}
ENTITIES: dict[str, EntitySpec] = {s.spec.name: s.spec for s in SERVICES.values()}


def entity_fields(entity: EntitySpec) -> list[str]:
    """The fields policy can mask: every column but tenant_id and the system fields."""
    system = {"id", "version", "created_at", "updated_at"}
    # `custom` holds the tenant's custom fields, each its own policy object (`cf_<key>`).
    return [c.name for c in entity.table.c if c.name not in ("tenant_id", "custom", *system)]
