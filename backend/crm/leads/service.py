"""Leads on the generic record service. Conversion is in convert.py."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.accounts.service import ACCOUNT
from backend.crm.contacts.service import CONTACT
from backend.crm.leads.models import RATINGS, STATUSES, Lead
from backend.crm.opportunities.service import OPPORTUNITY
from backend.db.base import table_of
from backend.errors import ValidationFailed
from backend.records.fields import OWNER, FieldSpec
from backend.records.service import Record, RecordService
from backend.records.spec import EntitySpec, Relation
from backend.tenants.models import User

CONVERTED = "converted"
_SET_BY_CONVERSION = "Set when the lead is converted; read-only."

LEAD = EntitySpec(
    name="lead",
    plural="leads",
    table=table_of(Lead),
    fields=EntitySpec.field_map(
        FieldSpec("first_name", max_length=100),
        FieldSpec("last_name", max_length=100, required=True),
        FieldSpec("company", max_length=200),
        FieldSpec("email", kind="email", max_length=254),
        FieldSpec("phone", kind="phone", max_length=40),
        FieldSpec("source", max_length=100, description="Where the lead came from, e.g. web."),
        FieldSpec(
            "status",
            kind="choice",
            choices=STATUSES,
            description="Default new; `converted` is set by converting the lead, never directly.",
        ),
        FieldSpec("rating", kind="choice", choices=RATINGS, description="How promising it is."),
        FieldSpec(
            "campaign_id", kind="uuid", description="The campaign that brought the lead, if any."
        ),
        FieldSpec("notes", max_length=10_000, multiline=True),
        FieldSpec("tags", kind="tags"),
        FieldSpec("owner_id", kind="uuid", on_create=False, description=OWNER),
        *(
            FieldSpec(
                name, kind="uuid", on_create=False, on_update=False, description=_SET_BY_CONVERSION
            )
            for name in (
                "converted_account_id",
                "converted_contact_id",
                "converted_opportunity_id",
            )
        ),
        FieldSpec(
            "converted_at",
            kind="datetime",
            on_create=False,
            on_update=False,
            description=_SET_BY_CONVERSION,
        ),
    ),
    search_columns=("first_name", "last_name", "company", "email"),
    filter_columns=("owner_id", "campaign_id", "converted_contact_id"),
    sort_columns=("id", "created_at", "updated_at", "last_name"),
    references={
        "owner_id": table_of(User),
        "converted_account_id": ACCOUNT,
        "converted_contact_id": CONTACT,
        "converted_opportunity_id": OPPORTUNITY,
    },
    relations=(
        Relation(
            "converted_account_id",
            description="The account this lead was converted into, if any.",
            reverse_name="converted_leads",
            reverse_description="The first leads converted into this account, by id.",
        ),
        Relation(
            "converted_contact_id",
            description="The contact this lead was converted into, if any.",
            reverse_name="converted_leads",
            reverse_description="The first leads converted into this contact, by id.",
        ),
        Relation(
            "converted_opportunity_id",
            description="The opportunity made when this lead was converted, if any.",
            reverse_name="converted_leads",
            reverse_description="The first leads converted into this opportunity, by id.",
        ),
    ),
)


async def keep_conversion(
    conn: AsyncConnection,
    ctx: RequestContext,
    spec: EntitySpec,
    before: Record | None,
    after: Record | None,
) -> None:
    """Status `converted` comes only with conversion (which sets converted_at in the same
    write), and a converted lead stays converted."""
    if after is None:
        return
    if after["status"] == CONVERTED and after["converted_at"] is None:
        raise ValidationFailed.one(
            "status", "convert_lead", "set by converting the lead (POST /leads/{id}/convert)"
        )
    if after["converted_at"] is not None and after["status"] != CONVERTED:
        raise ValidationFailed.one("status", "lead_converted", "a converted lead stays converted")


leads = RecordService(LEAD, hooks=(keep_conversion,))
