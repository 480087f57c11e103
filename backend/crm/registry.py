"""Every CRM entity the record service serves: policy, masking and scope apply to each."""

from __future__ import annotations

from backend.crm.accounts.service import ACCOUNT, accounts
from backend.crm.contacts.service import CONTACT, contacts
from backend.records.service import RecordService
from backend.records.spec import EntitySpec

SERVICES: dict[str, RecordService] = {s.spec.name: s for s in (accounts, contacts)}
ENTITIES: dict[str, EntitySpec] = {ACCOUNT.name: ACCOUNT, CONTACT.name: CONTACT}


def entity_fields(entity: EntitySpec) -> list[str]:
    """The fields policy can mask: every column but tenant_id and the system fields."""
    system = {"id", "version", "created_at", "updated_at"}
    return [c.name for c in entity.table.c if c.name != "tenant_id" and c.name not in system]
