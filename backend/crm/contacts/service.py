"""Contacts on the generic record service."""

from __future__ import annotations

from backend.crm.accounts.service import ACCOUNT
from backend.crm.address import ADDRESS_FIELDS
from backend.crm.contacts.models import Contact
from backend.db.base import table_of
from backend.lookup.phones import index_phones
from backend.records.fields import OWNER, FieldSpec
from backend.records.service import RecordService
from backend.records.spec import EntitySpec, Relation
from backend.tenants.models import User

CONTACT = EntitySpec(
    name="contact",
    plural="contacts",
    table=table_of(Contact),
    fields=EntitySpec.field_map(
        FieldSpec("first_name", max_length=100),
        FieldSpec("last_name", max_length=100, required=True),
        FieldSpec("email", kind="email", max_length=254),
        FieldSpec("phone", kind="phone", max_length=40),
        FieldSpec("mobile_phone", kind="phone", max_length=40),
        FieldSpec("title", max_length=100),
        FieldSpec("account_id", kind="uuid"),
        *ADDRESS_FIELDS,
        FieldSpec(
            "notes", max_length=10_000, multiline=True, description="Free text, several lines."
        ),
        FieldSpec("tags", kind="tags"),
        FieldSpec("owner_id", kind="uuid", on_create=False, description=OWNER),
    ),
    search_columns=("first_name", "last_name", "email"),
    filter_columns=("owner_id", "account_id"),
    sort_columns=("id", "created_at", "updated_at", "last_name"),
    references={
        "account_id": ACCOUNT,
        "owner_id": table_of(User),
    },
    relations=(Relation("account_id", description="The account this contact belongs to, if any."),),
)

# The phone-number index (caller lookup) changes in the same transaction as the record.
contacts = RecordService(CONTACT, hooks=(index_phones,))
