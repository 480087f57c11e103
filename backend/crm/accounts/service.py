"""Accounts on the generic record service."""

from __future__ import annotations

from dataclasses import replace

from backend.crm.accounts.models import Account
from backend.crm.address import ADDRESS_FIELDS
from backend.crm.hierarchy import no_cycles
from backend.db.base import table_of
from backend.lookup.phones import index_phones
from backend.records.fields import OWNER, FieldSpec
from backend.records.service import RecordService
from backend.records.spec import EntitySpec, Relation
from backend.tenants.models import User

_ACCOUNT = EntitySpec(
    name="account",
    plural="accounts",
    table=table_of(Account),
    fields=EntitySpec.field_map(
        FieldSpec("name", max_length=200, required=True),
        FieldSpec("industry", max_length=100),
        FieldSpec("website", kind="url", max_length=2048),
        FieldSpec("phone", kind="phone", max_length=40),
        FieldSpec(
            "parent_account_id",
            kind="uuid",
            description="The account this one belongs to (a subsidiary's parent company).",
        ),
        *ADDRESS_FIELDS,
        FieldSpec("tags", kind="tags"),
        FieldSpec("owner_id", kind="uuid", on_create=False, description=OWNER),
    ),
    search_columns=("name",),
    filter_columns=("owner_id", "parent_account_id"),
    sort_columns=("id", "created_at", "updated_at", "name"),
    references={"owner_id": table_of(User)},
)
# An account has a parent account: the spec names itself, so it is completed in a second step.
ACCOUNT = replace(
    _ACCOUNT,
    references={**_ACCOUNT.references, "parent_account_id": _ACCOUNT},
    relations=(
        Relation(
            "parent_account_id",
            description="The account this one belongs to, if any.",
            reverse_name="child_accounts",
            reverse_description="The first accounts belonging to this one, by id.",
        ),
    ),
)

# The phone-number index (caller lookup) changes in the same transaction as the record.
# The account hierarchy never loops.
accounts = RecordService(ACCOUNT, hooks=(index_phones, no_cycles("parent_account_id")))
