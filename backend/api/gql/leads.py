"""GraphQL for the sales steps that span several records: `convertLead`, `mergeContacts`.
Same rules as every mutation (backend/api/gql/payloads.py): input problems, conflicts and
stale versions are payload `errors`; not found / forbidden are top-level errors; either way
nothing of the operation is saved."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import strawberry

from backend.api.gql.entities import entity_types
from backend.api.gql.payloads import FieldError, GqlInfo, payload_call
from backend.crm.contacts.merge import merge_contacts
from backend.crm.leads.convert import convert_lead

LEAD, ACCOUNT = entity_types("lead"), entity_types("account")
CONTACT, OPPORTUNITY = entity_types("contact"), entity_types("opportunity")


@strawberry.input
class CreateOpportunityOnConversionInput:
    name: str
    amount: Decimal | None = None
    close_date: date | None = strawberry.field(
        default=None, description="Default: today + 30 days."
    )


@strawberry.input
class ConvertLeadInput:
    account_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="An existing account you may read; default: a new one named after the "
        "lead's company (or last name).",
    )
    create_opportunity: CreateOpportunityOnConversionInput | None = strawberry.field(
        default=None, description="Also an opportunity, at the first open stage."
    )


@strawberry.type
class ConvertLeadPayload:
    lead: LEAD.type | None  # type: ignore[name-defined]
    account: ACCOUNT.type | None  # type: ignore[name-defined]
    contact: CONTACT.type | None  # type: ignore[name-defined]
    opportunity: OPPORTUNITY.type | None  # type: ignore[name-defined]
    errors: list[FieldError]


@strawberry.input
class MergeFieldInput:
    field: str = strawberry.field(description="The field, as REST names it (snake_case).")
    take_from: strawberry.ID


@strawberry.input
class MergeContactsInput:
    keep: strawberry.ID
    merge: list[strawberry.ID]
    fields: list[MergeFieldInput] = strawberry.field(
        default_factory=list, description="Which contact each field's value is taken from."
    )


@strawberry.type
class MergeContactsPayload:
    contact: CONTACT.type | None  # type: ignore[name-defined]
    merged_ids: list[strawberry.ID]
    errors: list[FieldError]


def _node(types: Any, record: dict[str, Any] | None) -> Any:
    return types.node(record) if record is not None else None


@strawberry.type
class LeadsMutation:
    @strawberry.mutation(
        description="Convert a lead into an account, a contact and optionally an opportunity, "
        "in one transaction. A lead already converted: error code lead_already_converted."
    )  # type: ignore[untyped-decorator]
    async def convert_lead(
        self, info: GqlInfo, id: strawberry.ID, input: ConvertLeadInput | None = None
    ) -> ConvertLeadPayload:
        ctx = info.context.require()
        wanted = input or ConvertLeadInput()
        opportunity = wanted.create_opportunity
        done, errors = await payload_call(
            info,
            lambda: convert_lead(
                ctx,
                id,
                account_id=wanted.account_id,
                opportunity=None
                if opportunity is None
                else {
                    "name": opportunity.name,
                    "amount": opportunity.amount,
                    "close_date": opportunity.close_date,
                },
            ),
        )
        if done is None:
            return ConvertLeadPayload(
                lead=None, account=None, contact=None, opportunity=None, errors=errors
            )
        return ConvertLeadPayload(
            lead=LEAD.node(done.lead),
            account=ACCOUNT.node(done.account),
            contact=CONTACT.node(done.contact),
            opportunity=_node(OPPORTUNITY, done.opportunity),
            errors=[],
        )

    @strawberry.mutation(
        description="Merge duplicate contacts into one kept contact, in one transaction."
    )  # type: ignore[untyped-decorator]
    async def merge_contacts(
        self, info: GqlInfo, input: MergeContactsInput
    ) -> MergeContactsPayload:
        ctx = info.context.require()
        fields = {f.field: f.take_from for f in input.fields}
        done, errors = await payload_call(
            info, lambda: merge_contacts(ctx, input.keep, input.merge, fields)
        )
        if done is None:
            return MergeContactsPayload(contact=None, merged_ids=[], errors=errors)
        return MergeContactsPayload(
            contact=CONTACT.node(done.contact),
            merged_ids=[strawberry.ID(str(m)) for m in done.merged_ids],
            errors=[],
        )
