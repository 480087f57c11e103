"""Custom fields are policed like built-in fields, as `<entity>.cf_<key>` objects, and denied
by default: a role's `*` or `contact.*` rule does not reach them; only a rule that names them
(`contact.cf_region_code`, `contact.cf_*`, `*.cf_*`) or the tenant_admin role does. The issue's
scenario: a tenant admin adds "region code" to contacts; a salesperson sees and edits it only
once a role says so, over REST, sync, history and exports."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from backend.runtime import Services
from tests.api.test_custom_fields import FIELDS, define, get_contact, patch_contact
from tests.conftest import TenantUser, gql, new_tenant
from tests.exports.helpers import download, request_export
from tests.security.policy_helpers import assert_problem, create_record, user_with_roles
from tests.sync.helpers import pull_all, push


async def _role_id(client: httpx.AsyncClient, admin: TenantUser, name: str) -> str:
    roles = (await client.get("/api/v1/roles", headers=admin.headers)).json()["items"]
    return str(next(r["id"] for r in roles if r["name"] == name))


async def _rule(
    client: httpx.AsyncClient, admin: TenantUser, role: str, effect: str, obj: str, action: str
) -> httpx.Response:
    return await client.post(
        f"/api/v1/roles/{role}/rules",
        headers=admin.headers,
        json={"effect": effect, "object": obj, "action": action},
    )


async def test_salesperson_needs_a_rule_naming_the_field(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cfpol")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    await define(client, admin, key="region_code", label="Region code", type="text")
    mine = await create_record(client, rep, "contacts", {"last_name": "Own"})
    # The admin (tenant_admin) may write it on the rep's record.
    set_by_admin = await patch_contact(client, admin, mine, {"custom": {"region_code": "N7"}})
    assert set_by_admin.status_code == 200, set_by_admin.text
    record = set_by_admin.json()

    # Before any rule: `allow * read/update` does not reach custom fields.
    seen = await get_contact(client, rep, record["id"])
    assert seen["custom"] == {} and "custom.region_code" in seen["withheld_fields"]
    refused = await patch_contact(client, rep, record, {"custom": {"region_code": "S1"}})
    assert_problem(refused, 403, "field_forbidden", "custom.region_code")
    # Forbidden before its value is checked: a bad value is still a 403.
    refused = await patch_contact(client, rep, record, {"custom": {"region_code": 12}})
    assert_problem(refused, 403, "field_forbidden", "custom.region_code")
    created = await client.post(
        "/api/v1/contacts",
        headers=rep.headers,
        json={"last_name": "X", "custom": {"region_code": "N7"}},
    )
    assert_problem(created, 403, "field_forbidden", "custom.region_code")
    for params in ({"custom.region_code": "N7"}, {"sort": "custom.region_code"}):
        side = await client.get("/api/v1/contacts", params=params, headers=rep.headers)
        assert_problem(side, 403, "field_forbidden", "custom.region_code")
    search = await client.get("/api/v1/contacts", params={"q": "N7"}, headers=rep.headers)
    assert search.json()["items"] == []  # the search does not look into a hidden field
    sparse = await client.get(
        f"/api/v1/contacts/{record['id']}",
        params={"fields": "custom.region_code"},
        headers=rep.headers,
    )
    assert sparse.json()["custom"] == {}
    history = await client.get(f"/api/v1/contacts/{record['id']}/history", headers=rep.headers)
    entry = next(e for e in history.json()["items"] if e["field"] == "custom.region_code")
    assert entry["values_withheld"] and entry["new_value"] is None
    changes, _ = await pull_all(client, rep, entities="contacts")
    pulled = next(c for c in changes if c["id"] == record["id"])
    assert pulled["record"]["custom"] == {}
    pushed = await push(
        client,
        rep,
        [
            {
                "client_id": "c1",
                "entity": "contacts",
                "op": "update",
                "id": record["id"],
                "base_version": record["version"],
                "fields": {"custom": {"region_code": "S1"}},
            }
        ],
    )
    assert pushed["c1"]["status"] == "refused" and pushed["c1"]["field"] == "custom.region_code"

    view = await client.get(
        f"/api/v1/users/{rep.user_id}/effective-permissions",
        params={"entity": "contact"},
        headers=admin.headers,
    )
    fields = {a["action"]: a["fields"] for a in view.json()["actions"]}
    assert fields["read"]["custom.region_code"]["allowed"] is False
    assert "denied by default" in fields["read"]["custom.region_code"]["because"]

    # Read only: the rep sees it everywhere but still cannot write it.
    role = await _role_id(client, admin, "salesperson")
    granted = await _rule(client, admin, role, "allow", "contact.cf_region_code", "read")
    assert granted.status_code in (200, 201), granted.text
    seen = await get_contact(client, rep, record["id"])
    assert seen["custom"] == {"region_code": "N7"}
    view = await client.get(
        f"/api/v1/users/{rep.user_id}/effective-permissions",
        params={"entity": "contact"},
        headers=admin.headers,
    )
    fields = {a["action"]: a["fields"] for a in view.json()["actions"]}
    decided = fields["read"]["custom.region_code"]
    assert decided["allowed"] is True
    assert decided["because"].startswith("role salesperson allows read on "), decided
    assert "custom.region_code" not in seen["withheld_fields"]
    refused = await patch_contact(client, rep, seen, {"custom": {"region_code": "S1"}})
    assert_problem(refused, 403, "field_forbidden", "custom.region_code")
    listed = await client.get(
        "/api/v1/contacts", params={"custom.region_code": "N7"}, headers=rep.headers
    )
    assert [r["id"] for r in listed.json()["items"]] == [record["id"]]
    history = await client.get(f"/api/v1/contacts/{record['id']}/history", headers=rep.headers)
    entry = next(e for e in history.json()["items"] if e["field"] == "custom.region_code")
    assert entry["values_withheld"]  # read_history is its own action

    # Update and read_history too (one glob naming custom fields).
    assert (await _rule(client, admin, role, "allow", "contact.cf_*", "*")).status_code in (
        200,
        201,
    )
    written = await patch_contact(client, rep, seen, {"custom": {"region_code": "S1"}})
    assert written.status_code == 200, written.text
    assert written.json()["custom"] == {"region_code": "S1"}
    history = await client.get(f"/api/v1/contacts/{record['id']}/history", headers=rep.headers)
    entries = [e for e in history.json()["items"] if e["field"] == "custom.region_code"]
    assert [(e["old_value"], e["new_value"]) for e in entries] == [("N7", "S1"), (None, "N7")]
    changes, _ = await pull_all(client, rep, entities="contacts")
    pulled = next(c for c in changes if c["id"] == record["id"])
    assert pulled["record"]["custom"] == {"region_code": "S1"}
    current = written.json()
    pushed = await push(
        client,
        rep,
        [
            {
                "client_id": "c2",
                "entity": "contacts",
                "op": "update",
                "id": record["id"],
                "base_version": current["version"],
                "fields": {"custom": {"region_code": "W3"}},
            }
        ],
    )
    assert pushed["c2"]["status"] == "applied", pushed
    assert (await get_contact(client, rep, record["id"]))["custom"] == {"region_code": "W3"}

    # A deny beats the allow that names it.
    assert (
        await _rule(client, admin, role, "deny", "contact.cf_region_code", "read")
    ).status_code in (
        200,
        201,
    )
    assert (await get_contact(client, rep, record["id"]))["custom"] == {}


async def test_sync_conflicts_per_custom_field(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cfsync")
    await define(client, admin, key="region_code", label="Region", type="text")
    await define(client, admin, key="seats", label="Seats", type="number")
    record = await create_record(
        client, admin, "contacts", {"last_name": "S", "custom": {"region_code": "N7", "seats": 1}}
    )
    base = record["version"]
    server = await patch_contact(client, admin, record, {"custom": {"region_code": "S2"}})
    assert server.status_code == 200
    # The phone changed region_code (conflict: the server changed it too) and seats (merged).
    pushed = await push(
        client,
        admin,
        [
            {
                "client_id": "p1",
                "entity": "contacts",
                "op": "update",
                "id": record["id"],
                "base_version": base,
                "fields": {"custom": {"region_code": "E5", "seats": 2}},
            }
        ],
        resolution="server_wins",
    )
    result = pushed["p1"]
    assert result["status"] == "merged", result
    assert [(c["field"], c["client_value"], c["server_value"]) for c in result["conflicts"]] == [
        ("custom.region_code", "E5", "S2")
    ]
    assert (await get_contact(client, admin, record["id"]))["custom"] == {
        "region_code": "S2",
        "seats": 2,
    }
    bad = await push(
        client,
        admin,
        [
            {
                "client_id": "p2",
                "entity": "contacts",
                "op": "update",
                "id": record["id"],
                "base_version": result["version"],
                "fields": {"custom": {"seats": "many"}},
            }
        ],
    )
    assert (bad["p2"]["status"], bad["p2"]["code"], bad["p2"]["field"]) == (
        "refused",
        "invalid_type",
        "custom.seats",
    )


async def test_export_needs_export_on_the_custom_field(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cfexp")
    manager = await user_with_roles(services, client, admin, "mgr", ["sales_manager"])
    await define(client, admin, key="region_code", label="Region", type="text")
    await create_record(client, manager, "contacts", {"last_name": "Exp", "custom": {}})
    fields = ["id", "last_name", "custom.region_code"]
    refused = await request_export(client, manager, fields=fields, format="csv")
    assert_problem(refused, 403, "field_forbidden", "custom.region_code")
    default = await request_export(client, manager, format="csv")
    assert default.status_code == 201 and "custom.region_code" not in default.json()["fields"]
    role = await _role_id(client, admin, "sales_manager")
    for action in ("read", "create", "export"):
        assert (
            await _rule(client, admin, role, "allow", "contact.cf_region_code", action)
        ).status_code in (200, 201)
    record = await create_record(
        client, manager, "contacts", {"last_name": "Exp2", "custom": {"region_code": "N7"}}
    )
    made = await request_export(client, manager, fields=fields, format="csv")
    assert made.status_code == 201, made.text
    body = await download(client, manager, made.json()["id"])
    assert body.status_code == 200, body.text
    rows = list(csv.reader(io.StringIO(body.text)))
    assert rows[0] == fields
    assert [record["id"], "Exp2", "N7"] in rows


async def test_roles_api_accepts_only_defined_custom_objects(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cfroles")
    role = await _role_id(client, admin, "salesperson")
    unknown = await _rule(client, admin, role, "allow", "contact.cf_region_code", "read")
    assert_problem(unknown, 422, "unknown_field", "object")
    made = await define(client, admin, key="region_code", label="Region", type="text")
    assert (
        await _rule(client, admin, role, "allow", "contact.cf_region_code", "read")
    ).status_code in (200, 201)
    other_entity = await _rule(client, admin, role, "allow", "account.cf_region_code", "read")
    assert_problem(other_entity, 422, "unknown_field", "object")
    new_role = await client.post(
        "/api/v1/roles",
        headers=admin.headers,
        json={
            "name": "regional",
            "rules": [{"effect": "allow", "object": "contact.cf_nope", "action": "read"}],
        },
    )
    assert_problem(new_role, 422, "unknown_field", "object")
    await client.delete(f"{FIELDS}/{made['id']}", headers=admin.headers)
    removed = await _rule(client, admin, role, "allow", "contact.cf_region_code", "update")
    assert_problem(removed, 422, "unknown_field", "object")


async def test_other_tenants_fields_do_not_apply(
    services: Services, client: httpx.AsyncClient, tenant_b: TenantUser
) -> None:
    admin = await new_tenant(services, client, "cfiso")
    await define(client, admin, key="region_code", label="Region", type="text")
    theirs = await client.post(
        "/api/v1/contacts",
        headers=tenant_b.headers,
        json={"last_name": "B", "custom": {"region_code": "N7"}},
    )
    assert_problem(theirs, 422, "unknown_field", "custom.region_code")
    listed = await client.get(FIELDS, headers=tenant_b.headers)
    assert all(f["key"] != "region_code" for f in listed.json()["items"])


async def test_caller_lookup_finds_phone_custom_fields_only_when_readable(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cfphone")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    made = await define(client, admin, key="desk", label="Desk phone", type="phone")
    record = await create_record(client, rep, "contacts", {"last_name": "Caller"})
    patched = await patch_contact(client, admin, record, {"custom": {"desk": "+49 30 5550199"}})
    assert patched.status_code == 200, patched.text
    url = "/api/v1/lookup/phone/%2B49305550199"
    found = await client.get(url, headers=admin.headers)
    assert found.status_code == 200, found.text
    assert found.json()["record"]["id"] == record["id"]
    # The rep owns the record but may not read the field: the number does not find it.
    assert_problem(await client.get(url, headers=rep.headers), 404)
    role = await _role_id(client, admin, "salesperson")
    assert (await _rule(client, admin, role, "allow", "contact.cf_desk", "read")).status_code in (
        200,
        201,
    )
    assert (await client.get(url, headers=rep.headers)).status_code == 200
    # A removed field's numbers find nothing any more.
    assert (await client.delete(f"{FIELDS}/{made['id']}", headers=admin.headers)).status_code == 204
    assert_problem(await client.get(url, headers=admin.headers), 404)


async def test_custom_phone_numbers_follow_a_new_default_region(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cfregion")
    await define(client, admin, entity="account", key="hotline", label="Hotline", type="phone")
    made = await client.post(
        "/api/v1/accounts",
        headers=admin.headers,
        json={"name": "Berlin GmbH", "custom": {"hotline": "030 7654321"}},
    )
    assert made.status_code == 201, made.text
    url = "/api/v1/lookup/phone/%2B49307654321"
    assert_problem(await client.get(url, headers=admin.headers), 404)  # read as a US number
    changed = await client.patch(
        "/api/v1/tenant/settings", json={"default_region": "DE"}, headers=admin.headers
    )
    assert changed.status_code == 200, changed.text
    found = await client.get(url, headers=admin.headers)
    assert found.status_code == 200, found.text
    assert (found.json()["entity"], found.json()["record"]["id"]) == ("account", made.json()["id"])


async def test_graphql_sync_carries_custom_values_masked(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cfgsync")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    await define(client, admin, key="region_code", label="Region", type="text")
    record = await create_record(client, rep, "contacts", {"last_name": "G"})
    assert (
        await patch_contact(client, admin, record, {"custom": {"region_code": "N7"}})
    ).is_success
    sync = """query { sync(entities: ["contacts"], deviceId: "g") {
      changes { id record } } }"""
    push_doc = """mutation($input: PushChangesInput!) {
      pushChanges(input: $input) { results { clientId status code field } } }"""

    async def pulled() -> dict[str, Any]:
        body = await gql(client, rep, sync)
        assert "errors" not in body, body
        found: dict[str, Any] = next(
            c["record"] for c in body["data"]["sync"]["changes"] if c["id"] == record["id"]
        )
        return found

    async def pushed(client_id: str, version: int) -> dict[str, Any]:
        change = {
            "clientId": client_id,
            "entity": "contacts",
            "op": "UPDATE",
            "id": record["id"],
            "baseVersion": version,
            "fields": {"custom": {"region_code": "S1"}},
        }
        body = await gql(client, rep, push_doc, {"input": {"deviceId": "g", "changes": [change]}})
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["pushChanges"]["results"][0]
        return result

    seen = await pulled()
    assert seen["custom"] == {} and "custom.region_code" in seen["withheld_fields"]
    refused = await pushed("g1", seen["version"])
    assert (refused["status"], refused["field"]) == ("REFUSED", "custom.region_code")
    role = await _role_id(client, admin, "salesperson")
    assert (await _rule(client, admin, role, "allow", "contact.cf_region_code", "*")).is_success
    seen = await pulled()
    assert seen["custom"] == {"region_code": "N7"}
    assert (await pushed("g2", seen["version"]))["status"] == "APPLIED"
    assert (await get_contact(client, rep, record["id"]))["custom"] == {"region_code": "S1"}
