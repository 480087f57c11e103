"""Contacts on the generic record service."""

from __future__ import annotations

from dataclasses import replace

from backend.crm.accounts.service import ACCOUNT
from backend.crm.address import ADDRESS_FIELDS
from backend.crm.contacts.models import Contact
from backend.crm.hierarchy import no_cycles
from backend.db.base import table_of
from backend.lookup.phones import index_phones
from backend.records.fields import OWNER, FieldSpec
from backend.records.service import RecordService
from backend.records.spec import EntitySpec, Relation
from backend.tenants.models import User

_CONTACT = EntitySpec(
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
        FieldSpec(
            "reports_to_id",
            kind="uuid",
            description="The contact this one reports to (organisation chart).",
        ),
        *ADDRESS_FIELDS,
        FieldSpec(
            "notes", max_length=10_000, multiline=True, description="Free text, several lines."
        ),
        FieldSpec("tags", kind="tags"),
        FieldSpec("owner_id", kind="uuid", on_create=False, description=OWNER),
    ),
    search_columns=("first_name", "last_name", "email"),
    filter_columns=("owner_id", "account_id", "reports_to_id"),
    sort_columns=("id", "created_at", "updated_at", "last_name"),
    references={
        "account_id": ACCOUNT,
        "owner_id": table_of(User),
    },
    relations=(Relation("account_id", description="The account this contact belongs to, if any."),),
)
# A contact reports to a contact: the spec names itself, so it is completed in a second step.
CONTACT = replace(
    _CONTACT,
    references={**_CONTACT.references, "reports_to_id": _CONTACT},
    relations=(
        *_CONTACT.relations,
        Relation(
            "reports_to_id",
            description="The contact this one reports to, if any.",
            reverse_name="direct_reports",
            reverse_description="The first contacts reporting to this one, by id.",
        ),
    ),
)

# The phone-number index (caller lookup) changes in the same transaction as the record.
# The organisation chart never loops.
contacts = RecordService(CONTACT, hooks=(index_phones, no_cycles("reports_to_id")))
