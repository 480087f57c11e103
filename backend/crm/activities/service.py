"""Activities on the generic record service."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.accounts.service import ACCOUNT
from backend.crm.activities.models import KINDS, MAX_REMIND_MINUTES, Activity
from backend.crm.contacts.service import CONTACT
from backend.crm.opportunities.service import OPPORTUNITY
from backend.db.base import table_of
from backend.errors import ValidationFailed
from backend.records.fields import OWNER, FieldSpec
from backend.records.service import Record, RecordService
from backend.records.spec import EntitySpec, Relation
from backend.tenants.models import User

ACTIVITY = EntitySpec(
    name="activity",
    plural="activities",
    table=table_of(Activity),
    fields=EntitySpec.field_map(
        FieldSpec("kind", kind="choice", choices=KINDS, required=True),
        FieldSpec("subject", max_length=200, required=True),
        FieldSpec("notes", max_length=10_000, multiline=True),
        FieldSpec("starts_at", kind="datetime"),
        FieldSpec("ends_at", kind="datetime"),
        FieldSpec("due_at", kind="datetime"),
        FieldSpec(
            "remind_minutes_before",
            kind="integer",
            minimum=0,
            maximum=MAX_REMIND_MINUTES,
            description="When to remind the owner, in minutes before it starts (or is due).",
        ),
        FieldSpec("completed_at", kind="datetime", description="When it was done; null: open."),
        FieldSpec("account_id", kind="uuid"),
        FieldSpec("contact_id", kind="uuid"),
        FieldSpec("opportunity_id", kind="uuid"),
        FieldSpec("tags", kind="tags"),
        FieldSpec("owner_id", kind="uuid", on_create=False, description=OWNER),
    ),
    search_columns=("subject",),
    filter_columns=("owner_id", "account_id", "contact_id", "opportunity_id"),
    sort_columns=("id", "created_at", "updated_at"),
    range_columns=("due_at", "starts_at"),
    references={
        "account_id": ACCOUNT,
        "contact_id": CONTACT,
        "opportunity_id": OPPORTUNITY,
        "owner_id": table_of(User),
    },
    relations=(
        Relation("account_id"),
        Relation("contact_id"),
        Relation(
            "opportunity_id",
            description="The opportunity this activity is about, if any.",
            reverse_description="The first activities about this opportunity, by id.",
        ),
    ),
)


async def check_times(
    conn: AsyncConnection,
    ctx: RequestContext,
    spec: EntitySpec,
    before: Record | None,
    after: Record | None,
) -> None:
    """An activity cannot end before it starts. Checked on the written row (so an update of
    either end is judged against the other), inside the write's transaction: raising here
    rolls the change and its history back."""
    if after is None or after["starts_at"] is None or after["ends_at"] is None:
        return
    if after["ends_at"] < after["starts_at"]:
        raise ValidationFailed.one("ends_at", "ends_before_start", "must not be before starts_at")


activities = RecordService(ACTIVITY, hooks=(check_times,))
