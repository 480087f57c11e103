"""Converting a lead: in one transaction, an account (new, or an existing one the caller may
read), a contact at it, optionally an opportunity, and the lead marked converted with links to
all of them. Every write goes through the record services, so policy, history, hooks and sync
apply as to any other write; an error anywhere leaves nothing written."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.context import RequestContext
from backend.crm.accounts.service import accounts
from backend.crm.contacts.service import contacts
from backend.crm.leads.service import CONVERTED, leads
from backend.crm.opportunities.models import STAGES
from backend.crm.opportunities.service import opportunities
from backend.crm.together import all_or_nothing
from backend.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from backend.records.service import Record

CLOSE_IN_DAYS = 30  # a new opportunity's close date unless one is given
OPPORTUNITY_INPUT = "create_opportunity"


@dataclass(frozen=True)
class Conversion:
    lead: Record
    account: Record
    contact: Record
    opportunity: Record | None


def first_open_stage() -> str:
    """Where a new opportunity starts: the pipeline's first stage that is not closed."""
    return next(stage for stage in STAGES if not stage.startswith("closed"))


async def convert_lead(
    ctx: RequestContext,
    lead_id: uuid.UUID | str,
    *,
    account_id: str | None = None,
    opportunity: Mapping[str, Any] | None = None,
) -> Conversion:
    """The lead converted. Errors: 404 lead missing or outside the caller's update scope;
    409 `lead_already_converted`; 422 `account_id` naming no account the caller may read (as
    a missing one), or a problem with the opportunity (its fields named
    `create_opportunity.<field>`), or with the lead's values as contact / account fields."""
    key = leads.parse_id(lead_id)
    async with all_or_nothing(ctx):
        lead = await leads.get(ctx, key)  # as the caller may read it: only that is copied
        async with ctx.session.transaction() as conn:
            access = await leads.access(ctx, conn, "update")
            # Locked until the conversion commits: two at once cannot both convert it.
            current = await leads.fetch(conn, leads.visible(ctx, access, "update"), key, lock=True)
        if current is None:
            raise NotFound("lead not found")
        if current["converted_at"] is not None:
            raise Conflict(
                "this lead is already converted", field="id", code="lead_already_converted"
            )
        account = await _account(ctx, lead, account_id)
        contact = await contacts.create(ctx, _contact_values(lead, account["id"]))
        deal = None
        if opportunity is not None:
            deal = await _opportunity(ctx, opportunity, account["id"], contact["id"])
        converted = await leads.update(
            ctx,
            key,
            {},
            current["version"],
            server_values={
                "status": CONVERTED,
                "converted_account_id": account["id"],
                "converted_contact_id": contact["id"],
                "converted_opportunity_id": deal["id"] if deal is not None else None,
                "converted_at": datetime.now(UTC),
            },
        )
    return Conversion(lead=converted, account=account, contact=contact, opportunity=deal)


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


async def _account(ctx: RequestContext, lead: Record, account_id: str | None) -> Record:
    if account_id is None:
        return await accounts.create(ctx, {"name": lead.get("company") or lead.get("last_name")})
    try:
        return await accounts.get(ctx, account_id)
    except (NotFound, Forbidden):
        # Another tenant's, outside the caller's scope, or unreadable: all look missing.
        raise ValidationFailed.one(
            "account_id", "unknown_reference", "names no such record"
        ) from None


def _contact_values(lead: Record, account_id: uuid.UUID) -> dict[str, Any]:
    names = ("first_name", "last_name", "email", "phone")
    return _present({**{name: lead.get(name) for name in names}, "account_id": account_id})


async def _opportunity(
    ctx: RequestContext, wanted: Mapping[str, Any], account_id: uuid.UUID, contact_id: uuid.UUID
) -> Record:
    close = datetime.now(UTC).date() + timedelta(days=CLOSE_IN_DAYS)
    values = {
        "name": wanted.get("name"),
        "amount": wanted.get("amount"),
        "close_date": wanted.get("close_date") or close.isoformat(),
        "stage": first_open_stage(),
        "account_id": account_id,
        "contact_id": contact_id,
    }
    try:
        return await opportunities.create(ctx, _present(values))
    except ValidationFailed as failed:
        # Named as the client sent them: inside create_opportunity.
        raise ValidationFailed.of(
            [
                FieldProblem(f"{OPPORTUNITY_INPUT}.{p.field}", p.code, p.message)
                for p in failed.problems
            ]
        ) from None
