"""Accounts on the generic record service."""

from __future__ import annotations

from backend.crm.accounts.models import Account
from backend.crm.address import ADDRESS_FIELDS
from backend.db.base import table_of
from backend.lookup.phones import index_phones
from backend.records.fields import OWNER, FieldSpec
from backend.records.service import RecordService
from backend.records.spec import EntitySpec
from backend.tenants.models import User

ACCOUNT = EntitySpec(
    name="account",
    plural="accounts",
    table=table_of(Account),
    fields=EntitySpec.field_map(
        FieldSpec("name", max_length=200, required=True),
        FieldSpec("industry", max_length=100),
        FieldSpec("website", kind="url", max_length=2048),
        FieldSpec("phone", kind="phone", max_length=40),
        *ADDRESS_FIELDS,
        FieldSpec("tags", kind="tags"),
        FieldSpec("owner_id", kind="uuid", on_create=False, description=OWNER),
    ),
    search_columns=("name",),
    filter_columns=("owner_id",),
    sort_columns=("id", "created_at", "updated_at", "name"),
    references={"owner_id": table_of(User)},
)

# The phone-number index (caller lookup) changes in the same transaction as the record.
accounts = RecordService(ACCOUNT, hooks=(index_phones,))
