"""Permission comes before validation: a write naming a field the caller may not write is
refused for that field (403, the field named) whatever its value, so an invalid value never
draws a 422 that would describe the rules of a field the caller has no business with. Create
and update, REST and GraphQL."""

from __future__ import annotations

import json
from typing import Any

import httpx

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant
from tests.security.policy_helpers import assert_problem, create_record, user_with_roles

DEAL = {"name": "Fleet", "stage": "proposal", "close_date": "2026-12-31"}
# Values the validation would refuse, each with a message that tells its rule.
INVALID_COSTS: list[Any] = ["-1", "1.234", "1e999", "not a number", 10**15]


def _no_rule_told(text: str) -> None:
    for hint in ("out_of_range", "at least", "at most", "digits", "too_precise", "invalid_"):
        assert hint not in text, text


async def _rep(services: Services, client: httpx.AsyncClient, label: str) -> TenantUser:
    admin = await new_tenant(services, client, label)
    return await user_with_roles(services, client, admin, "rep", ["salesperson"])


async def test_rest_create_and_update_refuse_a_forbidden_field_before_its_value(
    services: Services, client: httpx.AsyncClient
) -> None:
    rep = await _rep(services, client, "order-rest")
    deal = await create_record(client, rep, "opportunities", DEAL)
    contact = await create_record(client, rep, "contacts", {"last_name": "Mine"})
    for cost in INVALID_COSTS:
        made = await client.post(
            "/api/v1/opportunities", json={**DEAL, "cost": cost}, headers=rep.headers
        )
        assert_problem(made, 403, "field_forbidden", "cost")
        _no_rule_told(made.text)
        changed = await client.patch(
            f"/api/v1/opportunities/{deal['id']}",
            json={"cost": cost, "name": "Renamed"},
            headers={**rep.headers, "If-Match": '"1"'},
        )
        assert_problem(changed, 403, "field_forbidden", "cost")
        _no_rule_told(changed.text)
    # The salesperson may not reassign owners: an owner that is not even a UUID is refused
    # for the field, not for its form.
    owner = await client.patch(
        f"/api/v1/contacts/{contact['id']}",
        json={"owner_id": "not-a-uuid"},
        headers={**rep.headers, "If-Match": '"1"'},
    )
    assert_problem(owner, 403, "field_forbidden", "owner_id")
    _no_rule_told(owner.text)
    # Nothing was written, and a field the caller may write is still validated as before.
    listed = await client.get("/api/v1/opportunities", headers=rep.headers)
    assert [(d["id"], d["name"], d["version"]) for d in listed.json()["items"]] == [
        (deal["id"], "Fleet", 1)
    ]
    allowed = await client.patch(
        f"/api/v1/opportunities/{deal['id']}",
        json={"probability": 101},
        headers={**rep.headers, "If-Match": '"1"'},
    )
    assert_problem(allowed, 422, "out_of_range", "probability")


async def test_graphql_create_and_update_refuse_a_forbidden_field_before_its_value(
    services: Services, client: httpx.AsyncClient
) -> None:
    rep = await _rep(services, client, "order-gql")
    deal = await create_record(client, rep, "opportunities", DEAL)
    contact = await create_record(client, rep, "contacts", {"last_name": "Mine"})
    create = (
        "mutation($i: CreateOpportunityInput!) { createOpportunity(input: $i) {"
        " opportunity { id } errors { field code message } } }"
    )
    update = (
        "mutation($i: UpdateOpportunityInput!) { updateOpportunity(input: $i) {"
        " opportunity { id } errors { field code message } } }"
    )
    gql_deal = {"name": "Fleet", "stage": "proposal", "closeDate": "2026-12-31"}
    cases: list[tuple[str, dict[str, Any], str]] = [
        (create, {**gql_deal, "cost": "-1"}, "cost"),
        (create, {**gql_deal, "cost": "1.234"}, "cost"),
        (update, {"id": deal["id"], "version": 1, "cost": "-1", "name": "Renamed"}, "cost"),
        (update, {"id": deal["id"], "version": 1, "cost": "1.234"}, "cost"),
        (
            "mutation($i: UpdateContactInput!) { updateContact(input: $i) {"
            " contact { id } errors { field code message } } }",
            {"id": contact["id"], "version": 1, "ownerId": "not-a-uuid"},
            "ownerId",
        ),
    ]
    for document, variables, field in cases:
        body = await gql(client, rep, document, {"i": variables})
        (error,) = body["errors"]
        assert error["extensions"] == {
            "code": "FORBIDDEN",
            "reason": "field_forbidden",
            "field": field,
        }, body
        assert body["data"] is None
        _no_rule_told(json.dumps(body))
    listed = await client.get("/api/v1/opportunities", headers=rep.headers)
    assert [(d["name"], d["version"]) for d in listed.json()["items"]] == [("Fleet", 1)]
    assert (await client.get(f"/api/v1/contacts/{contact['id']}", headers=rep.headers)).json()[
        "version"
    ] == 1
