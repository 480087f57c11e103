"""GraphQL caller lookup: the same service as GET /api/v1/lookup/phone/{number}."""

from __future__ import annotations

from typing import Any

import strawberry

from backend.api.gql.entities import entity_types
from backend.api.gql.entities.objects import GqlInfo
from backend.errors import NotFound
from backend.lookup.service import lookup_phone

_CONTACT, _ACCOUNT, _ACTIVITY = (entity_types(n) for n in ("contact", "account", "activity"))

# The card names generated entity types, so it is built like them (a class made at import).
CallerCard: Any = strawberry.type(
    type(
        "CallerCard",
        (),
        {
            "__module__": __name__,
            "__annotations__": {
                "number": str,
                "contact": _CONTACT.type | None,
                "account": _ACCOUNT.type | None,
                "activities": list[_ACTIVITY.type],  # type: ignore[name-defined]
            },
            "number": strawberry.field(description="The number in E.164, as it was matched."),
            "activities": strawberry.field(
                description="The record's latest activities, newest first."
            ),
        },
    )
)


async def caller_lookup(info: GqlInfo, number: str) -> Any:
    ctx = info.context.require()
    try:
        found = await lookup_phone(ctx, number)
    except NotFound:
        return None
    record = found["record"]
    return CallerCard(
        number=found["number"],
        contact=_CONTACT.node(record) if found["entity"] == "contact" else None,
        account=_ACCOUNT.node(record) if found["entity"] == "account" else None,
        activities=[_ACTIVITY.node(a) for a in found["activities"]],
    )


@strawberry.type
class LookupQuery:
    caller_lookup: Any = strawberry.field(
        resolver=caller_lookup,
        graphql_type=CallerCard | None,
        description="Who is calling: the contact (or account) with this number in your scope, "
        "or null. Numbers without a country code are read in the tenant's default region.",
    )
