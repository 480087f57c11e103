"""Merging duplicate contacts: field by field, everything that pointed at a merged contact moves
to the kept one (in history), the merged contacts are deleted the normal way, all or nothing;
only contacts the caller may read and update take part."""

from __future__ import annotations

from typing import Any

import httpx

from backend.runtime import Services
from tests.api.sales_helpers import fetch, history, ids, make
from tests.conftest import TenantUser, gql, new_tenant, new_user
from tests.security.policy_helpers import user_with_roles
from tests.sync.helpers import ops, pull_all

ACTIVITY = {"kind": "call", "subject": "Follow-up"}
DEAL = {"name": "Renewal", "stage": "proposal", "close_date": "2027-03-31"}


async def _merge(client: httpx.AsyncClient, user: TenantUser, **body: Any) -> httpx.Response:
    return await client.post("/api/v1/contacts/merge", json=body, headers=user.headers)


async def test_merge_takes_chosen_fields_and_repoints_everything(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "merge")
    lead = await make(client, admin, "leads", last_name="Hopper", email="grace@navy.example")
    converted = await client.post(f"/api/v1/leads/{lead['id']}/convert", headers=admin.headers)
    assert converted.status_code == 200, converted.text
    first = converted.json()["contact"]  # the lead's contact: merged away below
    second = await make(client, admin, "contacts", last_name="Hopper", title="Rear Admiral")
    kept = await make(
        client, admin, "contacts", last_name="Hopper", first_name="Grace", reports_to_id=first["id"]
    )
    call = await make(client, admin, "activities", **ACTIVITY, contact_id=first["id"])
    deal = await make(client, admin, "opportunities", **DEAL, contact_id=second["id"])
    report = await make(client, admin, "contacts", last_name="Report", reports_to_id=second["id"])
    done = await _merge(
        client,
        admin,
        keep=kept["id"],
        merge=[first["id"], second["id"]],
        fields={"email": first["id"], "title": second["id"], "first_name": kept["id"]},
    )
    assert done.status_code == 200, done.text
    contact = done.json()["contact"]
    assert (contact["first_name"], contact["email"], contact["title"]) == (
        "Grace",
        "grace@navy.example",
        "Rear Admiral",
    )
    assert contact["reports_to_id"] is None  # it reported to a contact now merged into it
    assert done.json()["repointed"] == {
        "activity.contact_id": 1,
        "opportunity.contact_id": 1,
        "lead.converted_contact_id": 1,
        "contact.reports_to_id": 2,
    }
    assert await ids(client, admin, "contacts") == {kept["id"], report["id"]}
    assert (await fetch(client, admin, "activities", call["id"]))["contact_id"] == kept["id"]
    assert (await fetch(client, admin, "opportunities", deal["id"]))["contact_id"] == kept["id"]
    assert (await fetch(client, admin, "leads", lead["id"]))["converted_contact_id"] == kept["id"]
    assert (await fetch(client, admin, "contacts", report["id"]))["reports_to_id"] == kept["id"]
    # In history: the moves, the kept contact's new values, the deletions.
    moved = await history(client, admin, "activities", call["id"])
    assert (moved[0]["field"], moved[0]["new_value"]) == ("contact_id", kept["id"])
    fields = {h["field"] for h in await history(client, admin, "contacts", kept["id"])}
    assert {"email", "title", "reports_to_id"} <= fields
    for merged in (first, second):
        assert (await history(client, admin, "contacts", merged["id"]))[0]["event"] == "delete"


async def test_bad_requests_change_nothing(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "merge-bad")
    kept = await make(client, admin, "contacts", last_name="Kept")
    dup = await make(client, admin, "contacts", last_name="Dup", email="dup@x.example")
    stranger = await make(client, admin, "contacts", last_name="Stranger")
    cases = [
        ({"keep": kept["id"], "merge": [kept["id"]]}, "merge", "merge_into_itself"),
        ({"keep": kept["id"], "merge": [dup["id"], kept["id"]]}, "merge", "merge_into_itself"),
        ({"keep": kept["id"], "merge": []}, "merge", "required"),
        ({"keep": kept["id"], "merge": [dup["id"], dup["id"]]}, "merge", "duplicate"),
        (
            {"keep": kept["id"], "merge": [dup["id"]], "fields": {"email": stranger["id"]}},
            "fields.email",
            "not_merged",
        ),
        (
            {"keep": kept["id"], "merge": [dup["id"]], "fields": {"owner": dup["id"]}},
            "fields.owner",
            "unknown_field",
        ),
    ]
    for body, field, code in cases:
        refused = await _merge(client, admin, **body)
        assert refused.status_code == 422, refused.text
        assert (refused.json()["field"], refused.json()["code"]) == (field, code)
    assert await ids(client, admin, "contacts") == {kept["id"], dup["id"], stranger["id"]}
    assert (await fetch(client, admin, "contacts", kept["id"]))["version"] == 1


async def test_only_contacts_the_caller_may_read_and_update_are_merged(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "merge-scope")
    other = await new_tenant(services, client, "merge-other")
    rep = await new_user(services, client, admin, "rep")
    colleague = await new_user(services, client, admin, "colleague")
    mine = await make(client, rep, "contacts", last_name="Mine")
    also_mine = await make(client, rep, "contacts", last_name="Also mine")
    theirs = await make(client, colleague, "contacts", last_name="Theirs")
    foreign = await make(client, other, "contacts", last_name="Foreign")
    missing = "00000000-0000-0000-0000-000000000000"
    for merge in ([theirs["id"]], [foreign["id"]], [missing], ["not-a-uuid"]):
        refused = await _merge(client, rep, keep=mine["id"], merge=merge)
        assert refused.status_code == 422, refused.text
        assert (refused.json()["field"], refused.json()["code"]) == (
            "merge[0]",
            "unknown_reference",
        )
    refused = await _merge(client, rep, keep=theirs["id"], merge=[mine["id"]])
    assert (refused.status_code, refused.json()["field"]) == (422, "keep")
    assert await ids(client, admin, "contacts") == {mine["id"], also_mine["id"], theirs["id"]}
    assert (await fetch(client, other, "contacts", foreign["id"]))["version"] == 1
    done = await _merge(client, rep, keep=mine["id"], merge=[also_mine["id"]])
    assert done.status_code == 200, done.text
    assert await ids(client, rep, "contacts") == {mine["id"]}


async def test_a_failure_while_repointing_rolls_everything_back(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "merge-loop")
    dup = await make(client, admin, "contacts", last_name="Dup", title="Chief")
    # report -> dup; kept -> report: once report points at kept, the chart would loop.
    report = await make(client, admin, "contacts", last_name="Report", reports_to_id=dup["id"])
    kept = await make(client, admin, "contacts", last_name="Kept", reports_to_id=report["id"])
    refused = await _merge(
        client, admin, keep=kept["id"], merge=[dup["id"]], fields={"title": dup["id"]}
    )
    assert refused.status_code == 422, refused.text
    assert (refused.json()["field"], refused.json()["code"]) == ("reports_to_id", "cycle")
    assert await ids(client, admin, "contacts") == {dup["id"], report["id"], kept["id"]}
    assert await fetch(client, admin, "contacts", kept["id"]) == kept
    assert await fetch(client, admin, "contacts", report["id"]) == report


MERGE = """
mutation($input: MergeContactsInput!) {
  mergeContacts(input: $input) { contact { id email } mergedIds errors { field code } }
}"""


async def test_merge_contacts_over_graphql(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "merge-gql")
    kept = await make(client, admin, "contacts", last_name="Kept")
    dup = await make(client, admin, "contacts", last_name="Dup", email="dup@x.example")
    itself = await gql(client, admin, MERGE, {"input": {"keep": kept["id"], "merge": [kept["id"]]}})
    assert itself["data"]["mergeContacts"]["errors"] == [
        {"field": "merge", "code": "merge_into_itself"}
    ]
    body = await gql(
        client,
        admin,
        MERGE,
        {
            "input": {
                "keep": kept["id"],
                "merge": [dup["id"]],
                "fields": [{"field": "email", "takeFrom": dup["id"]}],
            }
        },
    )
    payload = body["data"]["mergeContacts"]
    assert payload["errors"] == [], body
    assert payload["contact"] == {"id": kept["id"], "email": "dup@x.example"}
    assert payload["mergedIds"] == [dup["id"]]
    assert await ids(client, admin, "contacts") == {kept["id"]}


async def test_sync_sees_the_merge_as_changes_and_tombstones(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "merge-sync")
    rep = await new_user(services, client, admin, "rep")
    kept = await make(client, rep, "contacts", last_name="Kept")
    dup = await make(client, rep, "contacts", last_name="Dup", title="Buyer")
    call = await make(client, rep, "activities", **ACTIVITY, contact_id=dup["id"])
    _, cursor = await pull_all(client, rep)
    done = await _merge(
        client, rep, keep=kept["id"], merge=[dup["id"]], fields={"title": dup["id"]}
    )
    assert done.status_code == 200, done.text
    changes, _ = await pull_all(client, rep, cursor)
    assert ops(changes) == {kept["id"]: "upsert", dup["id"]: "delete", call["id"]: "upsert"}
    by_id = {c["id"]: c for c in changes}
    assert by_id[kept["id"]]["record"]["title"] == "Buyer"
    assert by_id[call["id"]]["record"]["contact_id"] == kept["id"]


async def test_a_caller_who_may_not_delete_merges_nothing(
    services: Services, client: httpx.AsyncClient
) -> None:
    """A support agent may update contacts but not delete them: refused at the deletion, after
    the kept contact took the chosen values, so the whole merge rolls back."""
    admin = await new_tenant(services, client, "merge-support")
    support = await user_with_roles(services, client, admin, "support", ["support_agent"])
    kept = await make(client, admin, "contacts", last_name="Kept")
    dup = await make(client, admin, "contacts", last_name="Dup", title="Buyer")
    refused = await _merge(
        client, support, keep=kept["id"], merge=[dup["id"]], fields={"title": dup["id"]}
    )
    assert refused.status_code == 403, refused.text
    assert await fetch(client, admin, "contacts", kept["id"]) == kept
    assert await ids(client, admin, "contacts") == {kept["id"], dup["id"]}
    assert [h["event"] for h in await history(client, admin, "contacts", kept["id"])] == ["create"]
