"""Exports over REST: decided by permission and by the tenant's rules, every attempt audited,
files watermarked, links single-use."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx

from backend.runtime import Services
from tests.conftest import gql, new_tenant
from tests.exports.helpers import (
    add_contacts,
    audit_events,
    download,
    request_export,
    set_rules,
)
from tests.security.policy_helpers import assert_problem, create_role, user_with_roles


async def test_salesperson_cannot_export_and_the_attempt_is_audited(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "exp-deny")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    await add_contacts(client, rep, 2)
    refused = await request_export(client, rep, format="csv")
    assert_problem(refused, 403, "action_forbidden", "contact")
    events = await audit_events(client, admin, "export.blocked", rep)
    assert len(events) == 1
    details = events[0]["details"]
    assert details["entity"] == "contact" and details["format"] == "csv"
    assert details["outcome"] == "blocked" and details["reason"] == "action_forbidden"
    assert (await client.get("/api/v1/exports", headers=rep.headers)).json()["items"] == []


async def test_a_field_without_export_permission_is_named(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "exp-field")
    await create_role(
        client,
        admin,
        "exporter",
        [("allow", "*", "read"), ("allow", "*", "export"), ("deny", "contact.email", "export")],
        {"*": "tenant"},
    )
    user = await user_with_roles(services, client, admin, "exp", ["exporter"])
    await set_rules(client, admin, roles={"exporter": {"max_rows": 100, "daily_rows": 1000}})
    refused = await request_export(client, user, fields=["id", "last_name", "email"])
    assert_problem(refused, 403, "field_forbidden", "email")
    allowed = await request_export(client, user, fields=["id", "last_name"])
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["status"] == "ready"
    events = await audit_events(client, admin, "export.blocked", user)
    assert [e["details"]["field"] for e in events] == ["email"]


async def test_never_export_fields_are_refused_even_to_admins(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "exp-never")
    await set_rules(client, admin, never_export=["contact.email"])
    await add_contacts(client, admin, 1)
    refused = await request_export(client, admin, fields=["id", "email"])
    assert_problem(refused, 403, "field_never_exported", "email")
    # The default field list leaves it out rather than failing.
    default = await request_export(client, admin)
    assert default.status_code == 201, default.text
    assert "email" not in default.json()["fields"]
    # Once the tenant's rules allow it, it may go.
    await set_rules(client, admin, never_export=[])
    assert (await request_export(client, admin, fields=["id", "email"])).status_code == 201


async def test_over_the_row_limit_is_blocked_and_audited(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "exp-limit")
    manager = await user_with_roles(services, client, admin, "mgr", ["sales_manager"])
    await set_rules(
        client,
        admin,
        roles={"sales_manager": {"max_rows": 3, "approval_threshold": None, "daily_rows": 100}},
    )
    await add_contacts(client, manager, 4)
    refused = await request_export(client, manager)
    assert_problem(refused, 403, "export_row_limit", "filter")
    events = await audit_events(client, admin, "export.blocked", manager)
    assert len(events) == 1 and events[0]["details"]["row_count"] == 4
    assert events[0]["details"]["reason"] == "export_row_limit"


async def test_over_the_threshold_waits_for_approval_then_downloads_once(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "exp-approve")
    approver = await user_with_roles(services, client, admin, "admin2", ["tenant_admin"])
    manager = await user_with_roles(services, client, admin, "mgr", ["sales_manager"])
    await set_rules(
        client,
        admin,
        roles={"sales_manager": {"max_rows": 10, "approval_threshold": 2, "daily_rows": 100}},
    )
    await add_contacts(client, manager, 3)
    made = await request_export(client, manager, format="csv", fields=["id", "last_name"])
    assert made.status_code == 201, made.text
    export = made.json()
    assert export["status"] == "pending" and export["row_count"] == 3
    link = await client.post(f"/api/v1/exports/{export['id']}/link", headers=manager.headers)
    assert_problem(link, 409, "export_pending")
    # The requester cannot approve; another admin can.
    no = await client.post(f"/api/v1/exports/{export['id']}/approve", headers=manager.headers)
    assert_problem(no, 403, "admin_required")
    approved = await client.post(
        f"/api/v1/exports/{export['id']}/approve", headers=approver.headers
    )
    assert approved.status_code == 200, approved.text
    seen = (await client.get(f"/api/v1/exports/{export['id']}", headers=manager.headers)).json()
    assert seen["status"] == "ready" and seen["decided_by"] == str(approver.user_id)

    link = await client.post(f"/api/v1/exports/{export['id']}/link", headers=manager.headers)
    url = link.json()["url"]
    first = await client.get(url)
    assert first.status_code == 200, first.text
    rows = list(csv.reader(io.StringIO(first.text)))
    assert rows[0] == ["id", "last_name"]
    assert len(rows) == 1 + 3 + 1  # header, the rows, the watermark row
    again = await client.get(url)
    assert_problem(again, 410, "link_used")
    # Someone else cannot mint a link to it.
    theirs = await client.post(f"/api/v1/exports/{export['id']}/link", headers=admin.headers)
    assert_problem(theirs, 404)
    kinds = {e["type"] for e in await audit_events(client, admin, "export.pending")}
    assert kinds == {"export.pending"}
    assert len(await audit_events(client, admin, "export.approved")) == 1
    downloads = await audit_events(client, admin, "export.downloaded")
    assert sorted(e["details"]["outcome"] for e in downloads) == ["downloaded", "refused"]


async def test_a_denied_export_cannot_be_downloaded_and_says_why(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "exp-denied")
    manager = await user_with_roles(services, client, admin, "mgr", ["sales_manager"])
    await set_rules(
        client,
        admin,
        roles={"sales_manager": {"max_rows": 10, "approval_threshold": 1, "daily_rows": 100}},
    )
    await add_contacts(client, manager, 2)
    export = (await request_export(client, manager, format="jsonl")).json()
    denied = await client.post(
        f"/api/v1/exports/{export['id']}/deny",
        json={"reason": "not before your notice period ends"},
        headers=admin.headers,
    )
    assert denied.status_code == 200, denied.text
    seen = (await client.get(f"/api/v1/exports/{export['id']}", headers=manager.headers)).json()
    assert seen["status"] == "denied"
    assert seen["reason"] == "not before your notice period ends"
    link = await client.post(f"/api/v1/exports/{export['id']}/link", headers=manager.headers)
    assert_problem(link, 409, "export_denied")
    again = await client.post(f"/api/v1/exports/{export['id']}/approve", headers=admin.headers)
    assert_problem(again, 409, "not_pending")
    events = await audit_events(client, admin, "export.denied")
    assert events[0]["details"]["reason"] == "not before your notice period ends"


async def test_jsonl_export_holds_the_requesters_rows_only(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "exp-scope")
    manager = await user_with_roles(services, client, admin, "mgr", ["sales_manager"])
    await add_contacts(client, admin, 3)  # not the manager's team
    await add_contacts(client, manager, 2)
    export = (await request_export(client, manager, format="jsonl", fields=["id", "email"])).json()
    assert export["status"] == "ready" and export["row_count"] == 2
    body = (await download(client, manager, export["id"])).text
    lines = [json.loads(line) for line in body.splitlines()]
    assert len(lines) == 3
    assert sum(1 for r in lines if r["email"].startswith("CRVN1.")) == 1


async def test_the_daily_limit_counts_every_export_of_the_day(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "exp-daily")
    manager = await user_with_roles(services, client, admin, "mgr", ["sales_manager"])
    await set_rules(
        client,
        admin,
        roles={"sales_manager": {"max_rows": 5, "approval_threshold": None, "daily_rows": 6}},
    )
    await add_contacts(client, manager, 3)
    for _ in range(2):
        assert (await request_export(client, manager, fields=["id"])).status_code == 201
    refused = await request_export(client, manager, fields=["id"])
    assert_problem(refused, 403, "export_daily_limit", "filter")
    (event,) = await audit_events(client, admin, "export.blocked", manager)
    assert event["details"]["reason"] == "export_daily_limit"
    assert len(await audit_events(client, admin, "export.rules_changed", admin)) == 1


async def test_export_rules_are_for_admins_and_validated(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "exp-rules")
    manager = await user_with_roles(services, client, admin, "mgr", ["sales_manager"])
    assert_problem(await client.get("/api/v1/export-rules", headers=manager.headers), 403)
    rules = (await client.get("/api/v1/export-rules", headers=admin.headers)).json()
    assert rules["default"]["max_rows"] == 0  # roles not named may not export
    assert rules["roles"]["sales_manager"]["max_rows"] == 1000
    changed = await client.put(
        "/api/v1/export-rules", json=rules | {"roles": {}}, headers=manager.headers
    )
    assert_problem(changed, 403, "admin_required")
    bad = rules | {"never_export": ["email; drop table"]}
    assert_problem(
        await client.put("/api/v1/export-rules", json=bad, headers=admin.headers),
        422,
        field="never_export",
    )
    negative = rules | {"bulk_read": {"rows": 0, "cells": 1, "window_seconds": 60}}
    assert_problem(
        await client.put("/api/v1/export-rules", json=negative, headers=admin.headers), 422
    )
    unknown = rules | {"surprise": 1}
    assert_problem(
        await client.put("/api/v1/export-rules", json=unknown, headers=admin.headers),
        400,
        "unknown_field",
    )
    assert (await client.get("/api/v1/export-rules", headers=admin.headers)).json() == rules
    assert len(await audit_events(client, admin, "export.rules_changed")) == 0


async def test_approve_and_deny_over_graphql(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "exp-gql-approve")
    approver = await user_with_roles(services, client, admin, "admin2", ["tenant_admin"])
    manager = await user_with_roles(services, client, admin, "mgr", ["sales_manager"])
    await set_rules(
        client,
        admin,
        roles={"sales_manager": {"max_rows": 10, "approval_threshold": 1, "daily_rows": 100}},
    )
    await add_contacts(client, manager, 2)
    first = (await request_export(client, manager, fields=["id"])).json()
    second = (await request_export(client, manager, fields=["id"])).json()
    assert first["status"] == second["status"] == "pending"
    approve = "mutation ($id: ID!) { approveExport(id: $id) { export { status } errors { code } } }"
    deny = """mutation ($id: ID!) { denyExport(id: $id, reason: "no") {
        export { status reason } errors { code } } }"""
    refused = await gql(client, manager, approve, {"id": first["id"]})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    done = await gql(client, approver, approve, {"id": first["id"]})
    assert done["data"]["approveExport"] == {"export": {"status": "ready"}, "errors": []}
    again = await gql(client, approver, approve, {"id": first["id"]})
    assert again["data"]["approveExport"]["errors"] == [{"code": "not_pending"}]
    denied = await gql(client, approver, deny, {"id": second["id"]})
    assert denied["data"]["denyExport"]["export"] == {"status": "denied", "reason": "no"}
    make_link = "mutation ($id: ID!) { createExportLink(id: $id) { url expiresAt } }"
    link = await gql(client, manager, make_link, {"id": first["id"]})
    assert (await client.get(link["data"]["createExportLink"]["url"])).status_code == 200


async def test_bad_export_requests_name_the_field_and_are_audited(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "exp-bad")
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"entity": "spaceships"}, 422, "unknown_entity", "entity"),
        ({"entity": "contacts", "format": "pdf"}, 422, "invalid_choice", "format"),
        (
            {"entity": "contacts", "filter": {"colour": "red"}},
            422,
            "unknown_field",
            "filter.colour",
        ),
        ({"entity": "contacts", "filter": {"owner_id": "nope"}}, 400, "invalid_uuid", "owner_id"),
        ({"entity": "contacts", "fields": []}, 422, "required", "fields"),
        ({"entity": "contacts", "fields": ["id", "id"]}, 422, "duplicate", "fields"),
        ({"entity": "contacts", "extra": 1}, 400, "unknown_field", "extra"),
    ]
    for body, status, code, field in cases:
        response = await client.post("/api/v1/exports", json=body, headers=admin.headers)
        assert_problem(response, status, code, field)
    events = await audit_events(client, admin, "export.blocked", admin)
    # Every request that reached the service is on the record (the last was refused by the
    # body decoder before it); nothing was exported.
    assert sorted(e["details"]["reason"] for e in events) == sorted(c[2] for c in cases[:-1])
    assert {e["details"]["outcome"] for e in events} == {"invalid"}
    assert (await client.get("/api/v1/exports", headers=admin.headers)).json()["items"] == []
