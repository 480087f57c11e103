"""REST for the sales steps that span several records: converting a lead, merging contacts.
Parse -> service -> shape; each is one transaction in its service."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import UNSET, UnsetType

from backend.context import RequestContext
from backend.crm.contacts.merge import merge_contacts
from backend.crm.leads.convert import convert_lead

Ctx = NamedDependency[RequestContext]


class NewOpportunity(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    amount: float | int | str | None = None  # a string for exact money
    close_date: str | None = None  # YYYY-MM-DD; default: today + 30 days


class ConvertBody(msgspec.Struct, forbid_unknown_fields=True):
    # An existing account (one you may read) instead of a new one named after the company.
    account_id: str | UnsetType = UNSET
    create_opportunity: NewOpportunity | UnsetType = UNSET


class MergeBody(msgspec.Struct, forbid_unknown_fields=True):
    keep: str
    merge: list[str]
    # field -> the id of the contact (kept or merged) whose value the kept contact takes.
    fields: dict[str, str] | UnsetType = UNSET


class LeadConversionController(Controller):
    path = "/api/v1/leads"
    tags = ["leads"]

    @post(
        "/{lead_id:str}/convert",
        summary="Convert a lead into an account, a contact and optionally an opportunity",
        description=(
            "One transaction: a new account named after the company (or the last name), or "
            "`account_id`, an existing account you may read; a contact at it; with "
            "`create_opportunity`, an opportunity at the first open stage (close date default "
            "today + 30 days); the lead marked converted with links to them. 404 for a lead "
            "outside your scope; 409 `lead_already_converted`; 422 `unknown_reference` on "
            "`account_id` for an account that is missing or not yours to read; 422 on "
            "`create_opportunity.<field>`. On any error nothing is written."
        ),
        status_code=200,
    )
    async def convert(
        self, ctx: Ctx, lead_id: FromPath[str], data: JSONBody[ConvertBody | None] = None
    ) -> dict[str, Any]:
        body = data or ConvertBody()
        wanted = body.create_opportunity
        done = await convert_lead(
            ctx,
            lead_id,
            account_id=None if isinstance(body.account_id, UnsetType) else body.account_id,
            opportunity=None if isinstance(wanted, UnsetType) else msgspec.structs.asdict(wanted),
        )
        return {
            "lead": done.lead,
            "account": done.account,
            "contact": done.contact,
            "opportunity": done.opportunity,
        }


class ContactMergeController(Controller):
    path = "/api/v1/contacts"
    tags = ["contacts"]

    @post(
        "/merge",
        summary="Merge duplicate contacts into one",
        description=(
            "The kept contact takes each field in `fields` from the contact named there; "
            "activities, opportunities, converted leads and reports of the merged contacts "
            "move to it; the merged contacts are deleted. One transaction. Every id must be "
            "a contact you may read and update, else 422 `unknown_reference` on `keep` or "
            "`merge[i]` (as for a missing one); 422 `merge_into_itself`; 422 `cycle` when "
            "the moved reports would loop; 403 when you may not delete the merged contacts."
        ),
        status_code=200,
    )
    async def merge(self, ctx: Ctx, data: JSONBody[MergeBody]) -> dict[str, Any]:
        fields = {} if isinstance(data.fields, UnsetType) else data.fields
        done = await merge_contacts(ctx, data.keep, data.merge, fields)
        return {
            "contact": done.contact,
            "merged_ids": [str(m) for m in done.merged_ids],
            "repointed": done.repointed,
        }


SALES_CONTROLLERS = (LeadConversionController, ContactMergeController)
