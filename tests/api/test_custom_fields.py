"""Tenant custom fields over REST and GraphQL: definitions (admins only, audited), values
validated on write like built-in fields, shown under `custom`, sparse fields, filter, sort,
search, history per field; every bad input is refused naming the field, nothing written."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant
from tests.security.policy_helpers import assert_problem, create_record, gql_data, user_with_roles

FIELDS = "/api/v1/custom-fields"


async def define(client: httpx.AsyncClient, admin: TenantUser, **body: Any) -> dict[str, Any]:
    response = await client.post(FIELDS, headers=admin.headers, json={"entity": "contact", **body})
    assert response.status_code == 201, response.text
    defined: dict[str, Any] = response.json()
    return defined


async def patch_contact(
    client: httpx.AsyncClient, user: TenantUser, record: dict[str, Any], body: dict[str, Any]
) -> httpx.Response:
    return await client.patch(
        f"/api/v1/contacts/{record['id']}",
        json=body,
        headers={**user.headers, "If-Match": f'"{record["version"]}"'},
    )


async def get_contact(
    client: httpx.AsyncClient, user: TenantUser, record_id: str
) -> dict[str, Any]:
    response = await client.get(f"/api/v1/contacts/{record_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_definitions_crud_admin_only_and_audited(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cfdefs")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    body = {"entity": "contact", "key": "region_code", "label": "Region", "type": "text"}
    refused = await client.post(FIELDS, headers=rep.headers, json=body)
    assert_problem(refused, 403, "admin_required")
    assert (await client.get(FIELDS, headers=rep.headers)).status_code == 403
    made = await define(
        client,
        admin,
        key="region_code",
        label="Region",
        type="text",
        max_length=8,
        help_text="Sales region",
    )
    assert made["policy_object"] == "contact.cf_region_code"
    listed = await client.get(FIELDS, params={"entity": "contact"}, headers=admin.headers)
    assert [f["key"] for f in listed.json()["items"]] == ["region_code"]
    assert (await client.get(FIELDS, params={"entity": "account"}, headers=admin.headers)).json()[
        "items"
    ] == []
    renamed = await client.patch(
        f"{FIELDS}/{made['id']}", headers=admin.headers, json={"label": "Sales region"}
    )
    assert renamed.status_code == 200 and renamed.json()["label"] == "Sales region"
    fixed = await client.patch(
        f"{FIELDS}/{made['id']}", headers=admin.headers, json={"type": "number"}
    )
    assert fixed.status_code == 400  # unknown to the update body: type never changes
    events = await client.get(
        "/api/v1/audit-events",
        params={"type": "policy.custom_field_created"},
        headers=admin.headers,
    )
    assert events.status_code == 200, events.text
    assert [e["details"]["key"] for e in events.json()["items"]] == ["region_code"]
    gone = await client.delete(f"{FIELDS}/{made['id']}", headers=admin.headers)
    assert gone.status_code == 204
    assert (await client.get(f"{FIELDS}/{made['id']}", headers=admin.headers)).status_code == 404
    reused = await client.post(FIELDS, headers=admin.headers, json=body)
    assert_problem(reused, 409, "key_retired", "key")


async def test_bad_definitions(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "cfbad")
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"key": "Region Code", "label": "x", "type": "text"}, 422, "invalid_key", "key"),
        ({"key": "email", "label": "x", "type": "text"}, 409, "key_conflict", "key"),
        ({"key": "last_name", "label": "x", "type": "text"}, 409, "key_conflict", "key"),
        ({"key": "x1", "label": "x", "type": "colour"}, 422, "invalid_type", "type"),
        ({"key": "x2", "label": "x", "type": "single_choice"}, 422, "invalid_choices", "choices"),
        ({"key": "x3", "label": "x", "type": "reference"}, 422, "unknown_entity", "target"),
        (
            {"key": "x4", "label": "x", "type": "reference", "target": "planet"},
            422,
            "unknown_entity",
            "target",
        ),
        (
            {"key": "x5", "label": "x", "type": "text", "max_length": 100000},
            422,
            "out_of_range",
            "max_length",
        ),
        (
            {"key": "x6", "label": "x", "type": "number", "choices": ["a"]},
            422,
            "not_applicable",
            "choices",
        ),
        ({"key": "x7", "label": "", "type": "text"}, 422, "invalid_type", "label"),
        (
            {"entity": "planet", "key": "x8", "label": "x", "type": "text"},
            422,
            "unknown_entity",
            "entity",
        ),
    ]
    for body, status, code, field in cases:
        response = await client.post(
            FIELDS, headers=admin.headers, json={"entity": "contact", **body}
        )
        assert_problem(response, status, code, field)
    await define(client, admin, key="dup", label="x", type="text")
    assert_problem(
        await client.post(
            FIELDS,
            headers=admin.headers,
            json={"entity": "contact", "key": "dup", "label": "y", "type": "text"},
        ),
        409,
        "key_conflict",
        "key",
    )
    # The same key on another entity is fine.
    await define(client, admin, entity="account", key="dup", label="x", type="text")
    listed = (await client.get(FIELDS, headers=admin.headers)).json()["items"]
    assert sorted((f["entity"], f["key"]) for f in listed) == [
        ("account", "dup"),
        ("contact", "dup"),
    ]


async def test_too_many_fields(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "cfmany")
    for i in range(50):
        await define(client, admin, entity="activity", key=f"f{i}", label=f"F{i}", type="boolean")
    response = await client.post(
        FIELDS,
        headers=admin.headers,
        json={"entity": "activity", "key": "f50", "label": "x", "type": "boolean"},
    )
    assert_problem(response, 422, "too_many_fields", "entity")


async def test_values_typed_validated_merged_and_cleared(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cfvals")
    await define(client, admin, key="region_code", label="Region", type="text", max_length=4)
    await define(client, admin, key="seats", label="Seats", type="number")
    await define(client, admin, key="budget", label="Budget", type="decimal")
    await define(client, admin, key="vip", label="VIP", type="boolean")
    await define(client, admin, key="tier", label="Tier", type="single_choice", choices=["A", "B"])
    await define(
        client,
        admin,
        key="langs",
        label="Languages",
        type="multi_choice",
        choices=["de", "en", "fr"],
    )
    await define(client, admin, key="since", label="Since", type="date")
    await define(client, admin, key="met", label="Met", type="datetime")
    await define(client, admin, key="site", label="Site", type="url")
    await define(client, admin, key="desk", label="Desk phone", type="phone")
    await define(client, admin, key="alt_mail", label="Alt mail", type="email")
    record = await create_record(
        client,
        admin,
        "contacts",
        {
            "last_name": "Typed",
            "custom": {
                "region_code": "N7",
                "seats": 12,
                "budget": "10.50",
                "vip": True,
                "tier": "A",
                "langs": ["de", "en", "de"],
                "since": "2026-01-31",
                "met": "2026-02-01T10:00:00+01:00",
                "site": "https://example.com",
                "desk": "+49 30 1234567",
                "alt_mail": "A@Example.com",
            },
        },
    )
    assert record["custom"] == {
        "region_code": "N7",
        "seats": 12,
        "budget": "10.5",
        "vip": True,
        "tier": "A",
        "langs": ["de", "en"],
        "since": "2026-01-31",
        "met": "2026-02-01T09:00:00+00:00",
        "site": "https://example.com",
        "desk": "+49 30 1234567",
        "alt_mail": "A@example.com",
    }
    # PATCH merges keys; null clears one.
    patched = await patch_contact(client, admin, record, {"custom": {"seats": 13, "vip": None}})
    assert patched.status_code == 200, patched.text
    custom = patched.json()["custom"]
    assert custom["seats"] == 13 and "vip" not in custom and custom["region_code"] == "N7"
    current = patched.json()
    bad: list[tuple[dict[str, Any], int, str, str]] = [
        ({"nope": 1}, 422, "unknown_field", "custom.nope"),
        ({"seats": "many"}, 422, "invalid_type", "custom.seats"),
        ({"seats": 1.5}, 422, "invalid_type", "custom.seats"),
        ({"region_code": "TOOLONG"}, 422, "too_long", "custom.region_code"),
        ({"tier": "C"}, 422, "invalid_choice", "custom.tier"),
        ({"langs": ["de", "xx"]}, 422, "invalid_choice", "custom.langs"),
        ({"vip": "yes"}, 422, "invalid_type", "custom.vip"),
        ({"since": "31.01.2026"}, 422, "invalid_date", "custom.since"),
        ({"met": "2026-02-01T10:00:00"}, 422, "invalid_datetime", "custom.met"),
        ({"site": "ftp://x"}, 422, "invalid_url", "custom.site"),
        ({"desk": "call me"}, 422, "invalid_phone", "custom.desk"),
        ({"alt_mail": "nope"}, 422, "invalid_email", "custom.alt_mail"),
        ({"budget": "1.1234567"}, 422, "too_precise", "custom.budget"),
    ]
    for body, status, code, field in bad:
        response = await patch_contact(client, admin, current, {"custom": body})
        assert_problem(response, status, code, field)
    not_object = await patch_contact(client, admin, current, {"custom": ["x"]})
    assert not_object.status_code == 400  # the body's type: custom is an object
    # Nothing was written by any refused request.
    after = await get_contact(client, admin, record["id"])
    assert after["version"] == current["version"] and after["custom"] == current["custom"]
    created = await client.post(
        "/api/v1/contacts",
        headers=admin.headers,
        json={"last_name": "Nope", "custom": {"seats": "x"}},
    )
    assert_problem(created, 422, "invalid_type", "custom.seats")
    listed = await client.get("/api/v1/contacts", params={"q": "Nope"}, headers=admin.headers)
    assert listed.json()["items"] == []


async def test_size_limits(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "cfsize")
    for i in range(10):
        await define(client, admin, key=f"essay{i}", label="Essay", type="long_text")
    big = "é" * 1500  # 1500 characters, 3000 bytes of JSON
    response = await client.post(
        "/api/v1/contacts",
        headers=admin.headers,
        json={"last_name": "Big", "custom": {"essay0": big}},
    )
    assert_problem(response, 422, "value_too_large", "custom.essay0")
    many = {f"essay{i}": "x" * 1900 for i in range(10)}  # ~19 KB in all
    response = await client.post(
        "/api/v1/contacts", headers=admin.headers, json={"last_name": "Big", "custom": many}
    )
    assert_problem(response, 422, "too_large", "custom")


async def test_required_on_create(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "cfreq")
    await define(client, admin, key="region_code", label="Region", type="text", required=True)
    missing = await client.post("/api/v1/contacts", headers=admin.headers, json={"last_name": "R"})
    assert_problem(missing, 422, "required", "custom.region_code")
    record = await create_record(
        client, admin, "contacts", {"last_name": "R", "custom": {"region_code": "S1"}}
    )
    cleared = await patch_contact(client, admin, record, {"custom": {"region_code": None}})
    assert_problem(cleared, 422, "required", "custom.region_code")


async def test_references_checked_like_built_ins(
    services: Services, client: httpx.AsyncClient, tenant_b: TenantUser
) -> None:
    admin = await new_tenant(services, client, "cfref")
    await define(client, admin, key="partner", label="Partner", type="reference", target="account")
    mine = await create_record(client, admin, "accounts", {"name": "Mine"})
    theirs = await create_record(client, tenant_b, "accounts", {"name": "Theirs"})
    ok = await create_record(
        client, admin, "contacts", {"last_name": "Ref", "custom": {"partner": mine["id"]}}
    )
    assert ok["custom"]["partner"] == mine["id"]
    for target in (theirs["id"], str(uuid.uuid4())):
        response = await client.post(
            "/api/v1/contacts",
            headers=admin.headers,
            json={"last_name": "Ref", "custom": {"partner": target}},
        )
        assert_problem(response, 422, "unknown_reference", "custom.partner")
    # Out of scope: a salesperson may not link to another owner's account.
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    role = await _role_id(client, admin, "salesperson")
    await _grant(client, admin, role, "contact.cf_partner", "*")
    response = await client.post(
        "/api/v1/contacts",
        headers=rep.headers,
        json={"last_name": "Ref", "custom": {"partner": mine["id"]}},
    )
    assert_problem(response, 422, "unknown_reference", "custom.partner")
    not_uuid = await client.post(
        "/api/v1/contacts",
        headers=admin.headers,
        json={"last_name": "Ref", "custom": {"partner": "nope"}},
    )
    assert_problem(not_uuid, 422, "invalid_uuid", "custom.partner")


async def _role_id(client: httpx.AsyncClient, admin: TenantUser, name: str) -> str:
    roles = (await client.get("/api/v1/roles", headers=admin.headers)).json()["items"]
    return str(next(r["id"] for r in roles if r["name"] == name))


async def _grant(
    client: httpx.AsyncClient, admin: TenantUser, role: str, obj: str, action: str
) -> None:
    response = await client.post(
        f"/api/v1/roles/{role}/rules",
        headers=admin.headers,
        json={"effect": "allow", "object": obj, "action": action},
    )
    assert response.status_code in (200, 201), response.text


async def test_sparse_filter_sort_search(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "cflist")
    await define(client, admin, key="region_code", label="Region", type="text")
    await define(client, admin, key="seats", label="Seats", type="number")
    await define(
        client, admin, key="langs", label="Langs", type="multi_choice", choices=["de", "en"]
    )
    values = [("N7", 5, ["de"]), ("S2", 40, ["en"]), ("N7", 300, ["de", "en"]), (None, None, [])]
    ids = []
    for i, (region, seats, langs) in enumerate(values):
        custom: dict[str, Any] = {
            k: v for k, v in (("region_code", region), ("seats", seats)) if v is not None
        }
        if langs:
            custom["langs"] = langs
        ids.append(
            (
                await create_record(
                    client, admin, "contacts", {"last_name": f"L{i}", "custom": custom}
                )
            )["id"]
        )
    one = await client.get(
        f"/api/v1/contacts/{ids[0]}",
        params={"fields": "last_name,custom.region_code"},
        headers=admin.headers,
    )
    assert one.json()["custom"] == {"region_code": "N7"} and "email" not in one.json()
    whole = await client.get(
        f"/api/v1/contacts/{ids[0]}", params={"fields": "custom"}, headers=admin.headers
    )
    assert set(whole.json()["custom"]) == {"region_code", "seats", "langs"}

    async def listed(**params: str) -> list[str]:
        response = await client.get("/api/v1/contacts", params=params, headers=admin.headers)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["items"]]

    assert await listed(**{"custom.region_code": "N7"}) == [ids[0], ids[2]]
    assert await listed(**{"custom.seats": "40"}) == [ids[1]]
    assert await listed(**{"custom.langs": "en"}) == [ids[1], ids[2]]
    # Numbers sort as numbers (5 < 40 < 300), missing values first; pages follow the cursor.
    assert await listed(sort="custom.seats") == [ids[3], ids[0], ids[1], ids[2]]
    assert await listed(sort="-custom.seats") == [ids[2], ids[1], ids[0], ids[3]]
    first = await client.get(
        "/api/v1/contacts", params={"sort": "custom.seats", "limit": "2"}, headers=admin.headers
    )
    nxt = first.json()["next"]
    rest = await listed(sort="custom.seats", limit="2", after=nxt)
    assert rest == [ids[1], ids[2]]
    assert await listed(q="s2") == [ids[1]]  # text custom values are searched
    # A custom key ending in _at is not a timestamp column: its cursor stays text.
    await define(client, admin, key="seen_at", label="Seen at", type="text")
    for i, record_id in enumerate(ids[:3]):
        current = await get_contact(client, admin, record_id)
        assert (
            await patch_contact(client, admin, current, {"custom": {"seen_at": f"x{i}"}})
        ).is_success
    page = await client.get(
        "/api/v1/contacts", params={"sort": "custom.seen_at", "limit": "2"}, headers=admin.headers
    )
    assert await listed(sort="custom.seen_at", limit="2", after=page.json()["next"]) == [
        ids[1],
        ids[2],
    ]
    bad = await client.get("/api/v1/contacts", params={"custom.nope": "x"}, headers=admin.headers)
    assert_problem(bad, 400, "unknown_filter", "custom.nope")
    bad = await client.get("/api/v1/contacts", params={"custom.seats": "x"}, headers=admin.headers)
    assert_problem(bad, 400, "invalid_filter", "custom.seats")
    bad = await client.get(
        "/api/v1/contacts", params={"sort": "custom.nope"}, headers=admin.headers
    )
    assert_problem(bad, 400, "invalid_sort", "sort")


async def test_history_per_field_and_removal_hides_values(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cfhist")
    made = await define(client, admin, key="region_code", label="Region", type="text")
    record = await create_record(
        client, admin, "contacts", {"last_name": "H", "custom": {"region_code": "N7"}}
    )
    patched = await patch_contact(client, admin, record, {"custom": {"region_code": "S2"}})
    assert patched.status_code == 200
    history = await client.get(f"/api/v1/contacts/{record['id']}/history", headers=admin.headers)
    update = next(e for e in history.json()["items"] if e["event"] == "update")
    assert (update["field"], update["old_value"], update["new_value"]) == (
        "custom.region_code",
        "N7",
        "S2",
    )
    # Renaming the label changes nothing stored.
    await client.patch(f"{FIELDS}/{made['id']}", headers=admin.headers, json={"label": "Zone"})
    assert (await get_contact(client, admin, record["id"]))["custom"] == {"region_code": "S2"}
    assert (await client.delete(f"{FIELDS}/{made['id']}", headers=admin.headers)).status_code == 204
    shown = await get_contact(client, admin, record["id"])
    assert shown["custom"] == {} and "custom.region_code" not in shown["withheld_fields"]
    hidden = await client.get(
        "/api/v1/contacts", params={"custom.region_code": "S2"}, headers=admin.headers
    )
    assert_problem(hidden, 400, "unknown_filter", "custom.region_code")
    still = await client.get(f"/api/v1/contacts/{record['id']}/history", headers=admin.headers)
    kept = [e for e in still.json()["items"] if e["field"] == "custom.region_code"]
    assert [(e["old_value"], e["new_value"]) for e in kept] == [("N7", "S2")]
    # A later update leaves the hidden value where it is.
    again = await patch_contact(client, admin, shown, {"first_name": "Hilda"})
    assert again.status_code == 200 and again.json()["custom"] == {}


async def test_graphql_definitions(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "cfgql")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    create = """mutation($input: CreateCustomFieldInput!) {
      createCustomField(input: $input) {
        customField { id key label type policyObject } errors { field code }
      }
    }"""
    made = gql_data(
        await gql(
            client,
            admin,
            create,
            {
                "input": {
                    "entity": "contact",
                    "key": "region_code",
                    "label": "Region",
                    "type": "text",
                }
            },
        )
    )
    field = made["createCustomField"]["customField"]
    assert field["policyObject"] == "contact.cf_region_code"
    clash = gql_data(
        await gql(
            client,
            admin,
            create,
            {"input": {"entity": "contact", "key": "email", "label": "E", "type": "text"}},
        )
    )
    assert clash["createCustomField"] == {
        "customField": None,
        "errors": [{"field": "key", "code": "key_conflict"}],
    }
    listed = gql_data(await gql(client, admin, '{ customFields(entity: "contact") { key } }'))
    assert listed["customFields"] == [{"key": "region_code"}]
    denied = await gql(client, rep, "{ customFields { key } }")
    assert [e["extensions"]["code"] for e in denied["errors"]] == ["FORBIDDEN"]
    update = """mutation($input: UpdateCustomFieldInput!) {
      updateCustomField(input: $input) { customField { label } errors { field code } } }"""
    renamed = gql_data(
        await gql(client, admin, update, {"input": {"id": field["id"], "label": "Zone"}})
    )
    assert renamed["updateCustomField"]["customField"] == {"label": "Zone"}
    deleted = gql_data(
        await gql(
            client,
            admin,
            "mutation($id: ID!) { deleteCustomField(id: $id) { deletedId } }",
            {"id": field["id"]},
        )
    )
    assert deleted["deleteCustomField"]["deletedId"] == field["id"]
    assert gql_data(await gql(client, admin, "{ customFields { key } }"))["customFields"] == []


async def test_revert_and_undelete_bring_custom_values_back(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cfrevert")
    await define(client, admin, key="region_code", label="Region", type="text")
    await define(client, admin, key="seats", label="Seats", type="number")
    record = await create_record(
        client, admin, "contacts", {"last_name": "R", "custom": {"region_code": "N7"}}
    )
    first = await patch_contact(client, admin, record, {"custom": {"region_code": "S2"}})
    assert first.status_code == 200
    second = await patch_contact(client, admin, first.json(), {"custom": {"seats": 3}})
    assert second.status_code == 200
    url = f"/api/v1/contacts/{record['id']}"
    history = (await client.get(f"{url}/history", headers=admin.headers)).json()["items"]
    region_change = next(e for e in history if e["field"] == "custom.region_code")
    # One change undone: only that key goes back.
    undone = await client.post(f"{url}/history/{region_change['id']}/revert", headers=admin.headers)
    assert undone.status_code == 200, undone.text
    assert undone.json()["custom"] == {"region_code": "N7", "seats": 3}
    # The whole record back to before the first PATCH: seats is cleared again.
    whole = await client.post(
        f"{url}/revert", headers=admin.headers, json={"before_change_id": region_change["id"]}
    )
    assert whole.status_code == 200, whole.text
    assert whole.json()["custom"] == {"region_code": "N7"}
    # Undelete restores the custom values.
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    history = (await client.get(f"{url}/history", headers=admin.headers)).json()["items"]
    deletion = next(e for e in history if e["event"] == "delete")
    back = await client.post(f"{url}/history/{deletion['id']}/revert", headers=admin.headers)
    assert back.status_code == 200, back.text
    assert back.json()["custom"] == {"region_code": "N7"}


async def test_concurrent_definitions_of_one_key(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "cfrace")
    body = {"entity": "contact", "key": "region_code", "label": "Region", "type": "text"}
    answers = await asyncio.gather(
        *(client.post(FIELDS, headers=admin.headers, json=body) for _ in range(4))
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]
    for answer in answers:
        if answer.status_code == 409:
            assert_problem(answer, 409, "key_conflict", "key")
    listed = (await client.get(FIELDS, headers=admin.headers)).json()["items"]
    assert [f["key"] for f in listed] == ["region_code"]
