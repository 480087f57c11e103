"""Leads and their conversion: one transaction creating (or linking) the account, the contact
and optionally an opportunity, the lead marked converted with links; all through the record
service (policy, history), nothing written when any step fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from backend.runtime import Services
from tests.api.sales_helpers import fetch, history, ids, make, patch
from tests.conftest import TenantUser, gql, new_tenant, new_user
from tests.security.policy_helpers import user_with_roles

LEAD = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Analytical Engines Ltd",
    "email": "ada@engines.example",
    "phone": "+44 20 7946 0000",
    "source": "trade fair",
    "rating": "hot",
}


async def _convert(
    client: httpx.AsyncClient, user: TenantUser, lead_id: str, **body: Any
) -> httpx.Response:
    return await client.post(f"/api/v1/leads/{lead_id}/convert", json=body, headers=user.headers)


async def test_a_lead_is_created_new_and_its_conversion_fields_are_read_only(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "lead")
    lead = await make(client, admin, "leads", **LEAD)
    assert (lead["status"], lead["rating"], lead["owner_id"]) == ("new", "hot", str(admin.user_id))
    assert lead["converted_at"] is None and lead["converted_contact_id"] is None
    made = await client.post(
        "/api/v1/leads",
        json={**LEAD, "converted_at": "2027-01-01T00:00:00Z"},
        headers=admin.headers,
    )
    # Server-set fields are refused by name, in REST as in sync (422 read_only).
    assert (made.status_code, made.json()["field"]) == (422, "converted_at")
    for field, value in (("converted_contact_id", lead["id"]), ("converted_at", None)):
        refused = await patch(client, admin, "leads", lead, **{field: value})
        assert refused.status_code == 422, refused.text
        assert (refused.json()["field"], refused.json()["code"]) == (field, "read_only")
    # "converted" only comes with a conversion.
    refused = await patch(client, admin, "leads", lead, status="converted")
    assert (refused.status_code, refused.json()["code"]) == (422, "convert_lead")
    bad = await patch(client, admin, "leads", lead, rating="lukewarm")
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_choice")
    assert (await fetch(client, admin, "leads", lead["id"]))["version"] == 1


async def test_conversion_makes_linked_records_in_one_go_with_history(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "convert")
    lead = await make(client, admin, "leads", **LEAD)
    done = await _convert(
        client, admin, lead["id"], create_opportunity={"name": "Engine No. 1", "amount": "1200.5"}
    )
    assert done.status_code == 200, done.text
    body = done.json()
    account, contact, deal, converted = (
        body["account"],
        body["contact"],
        body["opportunity"],
        body["lead"],
    )
    assert account["name"] == "Analytical Engines Ltd"
    assert {k: contact[k] for k in ("first_name", "last_name", "email", "phone")} == {
        k: LEAD[k] for k in ("first_name", "last_name", "email", "phone")
    }
    assert contact["account_id"] == account["id"]
    assert (deal["stage"], deal["amount"]) == ("prospecting", "1200.50")
    assert (deal["account_id"], deal["contact_id"]) == (account["id"], contact["id"])
    in_30_days = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    assert deal["close_date"] == in_30_days
    assert converted["status"] == "converted" and converted["converted_at"] is not None
    assert (
        converted["converted_account_id"],
        converted["converted_contact_id"],
        converted["converted_opportunity_id"],
    ) == (account["id"], contact["id"], deal["id"])
    # As REST returns them, and stored.
    assert await fetch(client, admin, "leads", lead["id"]) == converted
    assert await fetch(client, admin, "contacts", contact["id"]) == contact
    changed = {h["field"] for h in await history(client, admin, "leads", lead["id"])}
    assert {"status", "converted_contact_id", "converted_at"} <= changed
    for plural, record in (("accounts", account), ("contacts", contact), ("opportunities", deal)):
        events = [h["event"] for h in await history(client, admin, plural, record["id"])]
        assert "create" in events
    # A converted lead stays converted.
    refused = await patch(client, admin, "leads", converted, status="working")
    assert (refused.status_code, refused.json()["code"]) == (422, "lead_converted")


async def test_converting_twice_is_a_conflict_and_writes_nothing_more(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "twice")
    lead = await make(client, admin, "leads", last_name="Babbage")
    first = await _convert(client, admin, lead["id"])
    assert first.status_code == 200, first.text
    assert first.json()["account"]["name"] == "Babbage"  # no company: the last name
    assert first.json()["opportunity"] is None
    before = (await ids(client, admin, "accounts"), await ids(client, admin, "contacts"))
    again = await _convert(client, admin, lead["id"])
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "lead_already_converted"
    assert (await ids(client, admin, "accounts"), await ids(client, admin, "contacts")) == before


async def test_a_failure_in_the_middle_leaves_nothing(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "atomic")
    lead = await make(client, admin, "leads", **LEAD)
    failed = await _convert(client, admin, lead["id"], create_opportunity={"name": "x" * 201})
    assert failed.status_code == 422, failed.text
    assert (failed.json()["field"], failed.json()["code"]) == (
        "create_opportunity.name",
        "too_long",
    )
    # The account and the contact were made before the opportunity failed: rolled back.
    assert await ids(client, admin, "accounts") == set()
    assert await ids(client, admin, "contacts") == set()
    assert await ids(client, admin, "opportunities") == set()
    after = await fetch(client, admin, "leads", lead["id"])
    assert (after["status"], after["version"], after["converted_at"]) == ("new", 1, None)
    assert [h["event"] for h in await history(client, admin, "leads", lead["id"])] == ["create"]
    bad_date = await _convert(
        client, admin, lead["id"], create_opportunity={"name": "ok", "close_date": "2027-02-30"}
    )
    assert bad_date.json()["field"] == "create_opportunity.close_date"
    assert await ids(client, admin, "accounts") == set()


async def test_an_existing_account_is_linked_only_if_the_caller_may_read_it(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "link")
    other = await new_tenant(services, client, "link-other")
    theirs = await make(client, other, "accounts", name="Not yours")
    rep = await new_user(services, client, admin, "rep")  # salesperson: own records only
    colleague = await new_user(services, client, admin, "colleague")
    colleagues = await make(client, colleague, "accounts", name="Colleague's")
    lead = await make(client, rep, "leads", **LEAD)
    for account_id in (theirs["id"], colleagues["id"], "not-a-uuid"):
        refused = await _convert(client, rep, lead["id"], account_id=account_id)
        assert refused.status_code == 422, refused.text
        assert (refused.json()["field"], refused.json()["code"]) == (
            "account_id",
            "unknown_reference",
        )
    assert await ids(client, rep, "contacts") == set()
    mine = await make(client, rep, "accounts", name="Mine")
    done = await _convert(client, rep, lead["id"], account_id=mine["id"])
    assert done.status_code == 200, done.text
    assert done.json()["account"] == await fetch(client, rep, "accounts", mine["id"])
    assert done.json()["contact"]["account_id"] == mine["id"]
    assert await ids(client, rep, "accounts") == {mine["id"]}


async def test_a_salesperson_cannot_convert_outside_their_scope(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "scope")
    other = await new_tenant(services, client, "scope-other")
    rep = await new_user(services, client, admin, "rep")
    colleague = await new_user(services, client, admin, "colleague")
    theirs = await make(client, colleague, "leads", **LEAD)
    foreign = await make(client, other, "leads", **LEAD)
    for lead_id in (theirs["id"], foreign["id"], "nonsense"):
        refused = await _convert(client, rep, lead_id)
        assert refused.status_code == 404, refused.text
    assert await ids(client, admin, "accounts") == set()
    assert (await fetch(client, colleague, "leads", theirs["id"]))["status"] == "new"
    # Read-only roles may read leads but never convert them (no update, no create).
    support = await user_with_roles(services, client, admin, "support", ["support_agent"])
    assert (await fetch(client, support, "leads", theirs["id"]))["id"] == theirs["id"]
    assert (await _convert(client, support, theirs["id"])).status_code == 403


async def test_marketing_creates_leads_but_does_not_work_them(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "mkt")
    marketing = await user_with_roles(services, client, admin, "mkt", ["marketing"])
    lead = await make(client, marketing, "leads", **LEAD)
    refused = await patch(client, marketing, "leads", lead, status="working")
    assert refused.status_code == 403, refused.text
    assert (await _convert(client, marketing, lead["id"])).status_code == 403
    auditor = await user_with_roles(services, client, admin, "audit", ["auditor"])
    assert lead["id"] in await ids(client, auditor, "leads")
    made = await client.post("/api/v1/leads", json=LEAD, headers=auditor.headers)
    assert made.status_code == 403


CONVERT = """
mutation($id: ID!, $input: ConvertLeadInput) {
  convertLead(id: $id, input: $input) {
    lead { id status convertedContactId convertedContact { id } }
    account { id name }
    contact { id lastName account { id } }
    opportunity { id stage name }
    errors { field code message }
  }
}"""


async def test_convert_lead_over_graphql(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "gqlconv")
    lead = await make(client, admin, "leads", **LEAD)
    failed = await gql(
        client,
        admin,
        CONVERT,
        {"id": lead["id"], "input": {"createOpportunity": {"name": "y" * 201}}},
    )
    payload = failed["data"]["convertLead"]
    assert payload["lead"] is None
    assert payload["errors"][0]["code"] == "too_long"
    assert await ids(client, admin, "accounts") == set()
    body = await gql(
        client, admin, CONVERT, {"id": lead["id"], "input": {"createOpportunity": {"name": "Z"}}}
    )
    done = body["data"]["convertLead"]
    assert done["errors"] == [], body
    assert done["lead"]["status"] == "converted"
    assert done["lead"]["convertedContact"]["id"] == done["contact"]["id"]
    assert done["contact"]["account"]["id"] == done["account"]["id"]
    assert done["opportunity"]["stage"] == "prospecting"
    again = (await gql(client, admin, CONVERT, {"id": lead["id"]}))["data"]["convertLead"]
    assert again["lead"] is None
    assert again["errors"][0]["code"] == "lead_already_converted"
    nested = await gql(
        client,
        admin,
        "query($id: ID!) { contact(id: $id) { convertedLeads { edges { node { id } } } } }",
        {"id": done["contact"]["id"]},
    )
    edges = nested["data"]["contact"]["convertedLeads"]["edges"]
    assert [e["node"]["id"] for e in edges] == [lead["id"]]
