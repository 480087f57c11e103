"""Opportunities on the generic record service."""

from __future__ import annotations

from backend.crm.accounts.service import ACCOUNT
from backend.crm.contacts.service import CONTACT
from backend.crm.opportunities.models import STAGES, Opportunity
from backend.crm.opportunities.stages import follow_stage
from backend.crm.pipelines.models import Pipeline, PipelineStage
from backend.db.base import table_of
from backend.records.fields import OWNER, FieldSpec
from backend.records.service import RecordService
from backend.records.spec import EntitySpec, Relation
from backend.tenants.models import User

MAX_MONEY = 999_999_999_999  # Numeric(14, 2)

OPPORTUNITY = EntitySpec(
    name="opportunity",
    plural="opportunities",
    table=table_of(Opportunity),
    fields=EntitySpec.field_map(
        FieldSpec("name", max_length=200, required=True),
        FieldSpec(
            "stage",
            kind="choice",
            choices=STAGES,
            # Mirrors stage_id (see the README, "Pipelines, stages and the forecast").
            description="Where the deal stands in the pipeline.",
        ),
        FieldSpec(
            "pipeline_id",
            kind="uuid",
            description="The pipeline this deal follows; default: the tenant's default pipeline.",
        ),
        FieldSpec(
            "stage_id",
            kind="uuid",
            description="The stage of its pipeline the deal is in (wins over `stage`).",
        ),
        FieldSpec("amount", kind="decimal", minimum=0, maximum=MAX_MONEY),
        FieldSpec("currency", kind="currency", max_length=3, description="ISO 4217, e.g. EUR."),
        FieldSpec(
            "probability",
            kind="integer",
            minimum=0,
            maximum=100,
            description="The chance of winning, in percent.",
        ),
        FieldSpec("close_date", kind="date", required=True),
        FieldSpec("account_id", kind="uuid"),
        FieldSpec("contact_id", kind="uuid"),
        FieldSpec("competitor", max_length=200),
        FieldSpec("budget", kind="decimal", minimum=0, maximum=MAX_MONEY),
        FieldSpec(
            "cost",
            kind="decimal",
            minimum=0,
            maximum=MAX_MONEY,
            description="What winning this customer costs (time, travel, samples).",
        ),
        FieldSpec("next_step", max_length=200),
        FieldSpec("description", max_length=10_000, multiline=True),
        FieldSpec("tags", kind="tags"),
        FieldSpec("owner_id", kind="uuid", on_create=False, description=OWNER),
    ),
    search_columns=("name", "competitor"),
    filter_columns=("owner_id", "account_id", "contact_id", "pipeline_id", "stage_id"),
    sort_columns=("id", "created_at", "updated_at", "name", "amount", "close_date"),
    range_columns=("amount", "close_date"),
    references={
        "account_id": ACCOUNT,
        "contact_id": CONTACT,
        "owner_id": table_of(User),
        "pipeline_id": table_of(Pipeline),
        "stage_id": table_of(PipelineStage),
    },
    relations=(Relation("account_id"), Relation("contact_id")),
)

opportunities = RecordService(OPPORTUNITY, hooks=(follow_stage,))
