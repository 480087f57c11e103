"""REST contract for records, run for every entity: create, read with ETags, guarded updates,
deletes, list paging, filters and sort order."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, new_tenant, new_user

PROBLEM_JSON = "application/problem+json"
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


@dataclass(frozen=True)
class Entity:
    plural: str
    name_field: str  # the required text field, also the name-like sort column

    @property
    def url(self) -> str:
        return f"/api/v1/{self.plural}"

    def body(self, name: str = "Minimal", **extra: Any) -> dict[str, Any]:
        return {self.name_field: name, **extra}


ACCOUNTS = Entity("accounts", "name")
CONTACTS = Entity("contacts", "last_name")
ENTITIES = [pytest.param(ACCOUNTS, id="accounts"), pytest.param(CONTACTS, id="contacts")]


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert isinstance(body["code"], str)
    assert body["code"]
    assert "Traceback" not in response.text
    if code is not None:
        assert body["code"] == code, body


async def create(
    client: httpx.AsyncClient, user: TenantUser, entity: Entity, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(entity.url, json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


async def get_record(
    client: httpx.AsyncClient, user: TenantUser, entity: Entity, record_id: str
) -> dict[str, Any]:
    response = await client.get(f"{entity.url}/{record_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


async def patch(
    client: httpx.AsyncClient,
    user: TenantUser,
    entity: Entity,
    record: dict[str, Any],
    changes: dict[str, Any],
) -> dict[str, Any]:
    response = await client.patch(
        f"{entity.url}/{record['id']}",
        json=changes,
        headers={**user.headers, "If-Match": f'"{record["version"]}"'},
    )
    assert response.status_code == 200, response.text
    updated: dict[str, Any] = response.json()
    return updated


async def list_page(
    client: httpx.AsyncClient, user: TenantUser, entity: Entity, **params: str | int
) -> dict[str, Any]:
    response = await client.get(entity.url, params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"items", "next"}
    return body


async def list_all(
    client: httpx.AsyncClient, user: TenantUser, entity: Entity, limit: int = 3, **params: str
) -> list[dict[str, Any]]:
    """Every record of the list, following `next` cursors page by page."""
    items: list[dict[str, Any]] = []
    page = await list_page(client, user, entity, limit=limit, **params)
    items.extend(page["items"])
    pages = 1
    while page["next"] is not None:
        assert len(page["items"]) == limit
        page = await list_page(client, user, entity, limit=limit, after=page["next"], **params)
        items.extend(page["items"])
        pages += 1
        assert pages < 100, "paging did not terminate"
    return items


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in records]


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


# -- create, read, update, delete ---------------------------------------------------------------
@pytest.mark.parametrize("entity", ENTITIES)
async def test_create_returns_201_with_location_etag_and_owner(
    client: httpx.AsyncClient, tenant_a: TenantUser, entity: Entity
) -> None:
    response = await client.post(entity.url, json=entity.body("Created"), headers=tenant_a.headers)
    assert response.status_code == 201, response.text
    record = response.json()
    assert response.headers["location"] == f"{entity.url}/{record['id']}"
    assert response.headers["etag"] == '"1"'
    assert uuid.UUID(record["id"])
    assert record["version"] == 1
    assert record[entity.name_field] == "Created"
    assert record["owner_id"] == str(tenant_a.user_id)
    assert "tenant_id" not in record
    assert all(SNAKE_CASE.match(key) for key in record), sorted(record)
    assert {"created_at", "updated_at", "tags"} <= set(record)
    assert record["tags"] == []


@pytest.mark.parametrize("entity", ENTITIES)
async def test_every_listed_record_carries_id_and_version(
    services: Services, client: httpx.AsyncClient, entity: Entity
) -> None:
    tenant = await new_tenant(services, client, "listkeys")
    for n in range(2):
        await create(client, tenant, entity, entity.body(f"Keys {n}"))
    page = await list_page(client, tenant, entity)
    assert len(page["items"]) == 2
    assert page["next"] is None
    for record in page["items"]:
        assert uuid.UUID(record["id"])
        assert record["version"] == 1
        assert all(SNAKE_CASE.match(key) for key in record), sorted(record)


@pytest.mark.parametrize("entity", ENTITIES)
async def test_get_returns_etag_and_if_none_match_gives_304(
    client: httpx.AsyncClient, tenant_a: TenantUser, entity: Entity
) -> None:
    record = await create(client, tenant_a, entity, entity.body("Cached"))
    url = f"{entity.url}/{record['id']}"
    fetched = await client.get(url, headers=tenant_a.headers)
    assert fetched.status_code == 200
    assert fetched.headers["etag"] == '"1"'
    assert fetched.json() == record

    cached = await client.get(url, headers={**tenant_a.headers, "If-None-Match": '"1"'})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == '"1"'

    stale = await client.get(url, headers={**tenant_a.headers, "If-None-Match": '"7"'})
    assert stale.status_code == 200
    assert stale.json()["id"] == record["id"]

    # RFC 9110: a list of tags (weak ones compare equal), or `*` for "any current version".
    for header in ('"3", W/"1"', "*"):
        listed = await client.get(url, headers={**tenant_a.headers, "If-None-Match": header})
        assert listed.status_code == 304, header
    # "11" contains "1" as text but is another version.
    other = await client.get(url, headers={**tenant_a.headers, "If-None-Match": '"11"'})
    assert other.status_code == 200


@pytest.mark.parametrize("entity", ENTITIES)
async def test_patch_with_if_match_bumps_version_and_etag(
    client: httpx.AsyncClient, tenant_a: TenantUser, entity: Entity
) -> None:
    record = await create(client, tenant_a, entity, entity.body("Before"))
    response = await client.patch(
        f"{entity.url}/{record['id']}",
        json={entity.name_field: "After"},
        headers={**tenant_a.headers, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    updated = response.json()
    assert updated["version"] == 2
    assert updated[entity.name_field] == "After"
    assert updated["id"] == record["id"]
    assert updated["created_at"] == record["created_at"]
    assert ts(updated["updated_at"]) >= ts(record["updated_at"])

    fetched = await client.get(f"{entity.url}/{record['id']}", headers=tenant_a.headers)
    assert fetched.headers["etag"] == '"2"'
    assert fetched.json() == updated
    old_tag = await client.get(
        f"{entity.url}/{record['id']}", headers={**tenant_a.headers, "If-None-Match": '"1"'}
    )
    assert old_tag.status_code == 200


@pytest.mark.parametrize("entity", ENTITIES)
async def test_patch_without_if_match_is_428(
    client: httpx.AsyncClient, tenant_a: TenantUser, entity: Entity
) -> None:
    record = await create(client, tenant_a, entity, entity.body("Unguarded"))
    response = await client.patch(
        f"{entity.url}/{record['id']}",
        json={entity.name_field: "Changed"},
        headers=tenant_a.headers,
    )
    assert_problem(response, 428)
    assert response.json()["field"] == "If-Match"
    assert await get_record(client, tenant_a, entity, record["id"]) == record


@pytest.mark.parametrize("entity", ENTITIES)
async def test_delete_with_stale_if_match_is_412_and_keeps_the_record(
    client: httpx.AsyncClient, tenant_a: TenantUser, entity: Entity
) -> None:
    record = await create(client, tenant_a, entity, entity.body("Kept"))
    current = await patch(client, tenant_a, entity, record, {"tags": ["x"]})
    response = await client.delete(
        f"{entity.url}/{record['id']}", headers={**tenant_a.headers, "If-Match": '"1"'}
    )
    assert_problem(response, 412, "version_mismatch")
    assert await get_record(client, tenant_a, entity, record["id"]) == current


async def test_deleting_an_account_keeps_its_contacts_with_account_id_null(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    account = await create(client, tenant_a, ACCOUNTS, {"name": "Closing GmbH"})
    people = [
        await create(client, tenant_a, CONTACTS, {"last_name": n, "account_id": account["id"]})
        for n in ("Arendt", "Benjamin")
    ]
    assert [p["account_id"] for p in people] == [account["id"], account["id"]]

    deleted = await client.delete(f"{ACCOUNTS.url}/{account['id']}", headers=tenant_a.headers)
    assert deleted.status_code == 204
    for person in people:
        kept = await get_record(client, tenant_a, CONTACTS, person["id"])
        assert kept["account_id"] is None
        assert kept["last_name"] == person["last_name"]
    listed = await list_page(client, tenant_a, CONTACTS, account_id=account["id"])
    assert listed["items"] == []


# -- list paging ---------------------------------------------------------------------------------
@pytest.mark.parametrize("entity", ENTITIES)
async def test_list_pages_through_every_record_exactly_once(
    services: Services, client: httpx.AsyncClient, entity: Entity
) -> None:
    tenant = await new_tenant(services, client, "paging")
    created = [await create(client, tenant, entity, entity.body(f"Page {n}")) for n in range(7)]

    first = await list_page(client, tenant, entity, limit=3)
    assert len(first["items"]) == 3
    assert isinstance(first["next"], str)
    second = await list_page(client, tenant, entity, limit=3, after=first["next"])
    assert len(second["items"]) == 3
    assert isinstance(second["next"], str)
    third = await list_page(client, tenant, entity, limit=3, after=second["next"])
    assert len(third["items"]) == 1
    assert third["next"] is None

    seen = ids(first["items"] + second["items"] + third["items"])
    assert len(seen) == 7
    assert sorted(seen) == sorted(ids(created))
    # The default order is by id (time-ordered UUIDs): the order they were created in.
    assert seen == sorted(seen, key=uuid.UUID)


@pytest.mark.parametrize("entity", ENTITIES)
async def test_a_page_exactly_full_has_no_next(
    services: Services, client: httpx.AsyncClient, entity: Entity
) -> None:
    tenant = await new_tenant(services, client, "fullpage")
    for n in range(3):
        await create(client, tenant, entity, entity.body(f"Full {n}"))
    page = await list_page(client, tenant, entity, limit=3)
    assert len(page["items"]) == 3
    assert page["next"] is None
    empty = await list_page(client, await new_tenant(services, client, "empty"), entity)
    assert empty == {"items": [], "next": None}


# -- filters -------------------------------------------------------------------------------------
@pytest.mark.parametrize("entity", ENTITIES)
async def test_q_is_a_case_insensitive_substring_search(
    services: Services, client: httpx.AsyncClient, entity: Entity
) -> None:
    tenant = await new_tenant(services, client, "search")
    hits = [
        await create(client, tenant, entity, entity.body(n))
        for n in ("Blumenthal", "BLUMENKOHL", "von blume")
    ]
    await create(client, tenant, entity, entity.body("Rosenberg"))
    found = await list_all(client, tenant, entity, q="bLuMe")
    assert sorted(ids(found)) == sorted(ids(hits))
    assert await list_all(client, tenant, entity, q="nothing-like-this") == []


@pytest.mark.parametrize("entity", ENTITIES)
async def test_q_treats_like_wildcards_literally(
    services: Services, client: httpx.AsyncClient, entity: Entity
) -> None:
    tenant = await new_tenant(services, client, "wildcard")
    percent = await create(client, tenant, entity, entity.body("100% Cotton"))
    underscore = await create(client, tenant, entity, entity.body("snake_case"))
    backslash = await create(client, tenant, entity, entity.body("back\\slash"))
    await create(client, tenant, entity, entity.body("1000 Cotton"))
    await create(client, tenant, entity, entity.body("snakeXcase"))
    await create(client, tenant, entity, entity.body("backslash"))

    assert ids(await list_all(client, tenant, entity, q="%")) == [percent["id"]]
    assert ids(await list_all(client, tenant, entity, q="0%")) == [percent["id"]]
    assert ids(await list_all(client, tenant, entity, q="_")) == [underscore["id"]]
    assert ids(await list_all(client, tenant, entity, q="e_c")) == [underscore["id"]]
    assert ids(await list_all(client, tenant, entity, q="k\\s")) == [backslash["id"]]


async def test_contact_q_searches_first_name_and_email(
    services: Services, client: httpx.AsyncClient
) -> None:
    tenant = await new_tenant(services, client, "csearch")
    by_first = await create(client, tenant, CONTACTS, {"last_name": "One", "first_name": "Quentin"})
    by_email = await create(
        client, tenant, CONTACTS, {"last_name": "Two", "email": "quentinfan@example.com"}
    )
    await create(client, tenant, CONTACTS, {"last_name": "Three", "first_name": "Other"})
    found = await list_all(client, tenant, CONTACTS, q="QUENTIN")
    assert sorted(ids(found)) == sorted([by_first["id"], by_email["id"]])


@pytest.mark.parametrize("entity", ENTITIES)
async def test_owner_id_filter(
    services: Services, client: httpx.AsyncClient, entity: Entity
) -> None:
    tenant = await new_tenant(services, client, "owners")
    other = await new_user(services, client, tenant, "other")
    mine = [await create(client, tenant, entity, entity.body(f"Mine {n}")) for n in range(2)]
    theirs = [await create(client, other, entity, entity.body(f"Theirs {n}")) for n in range(3)]
    assert all(r["owner_id"] == str(other.user_id) for r in theirs)

    listed_mine = await list_all(client, tenant, entity, owner_id=str(tenant.user_id))
    assert ids(listed_mine) == ids(mine)
    listed_theirs = await list_all(client, tenant, entity, owner_id=str(other.user_id))
    assert ids(listed_theirs) == ids(theirs)
    assert await list_all(client, tenant, entity, owner_id=str(uuid.uuid4())) == []


async def test_contacts_account_id_filter(services: Services, client: httpx.AsyncClient) -> None:
    tenant = await new_tenant(services, client, "accfilter")
    acme = await create(client, tenant, ACCOUNTS, {"name": "Acme"})
    globex = await create(client, tenant, ACCOUNTS, {"name": "Globex"})
    at_acme = [
        await create(client, tenant, CONTACTS, {"last_name": f"A{n}", "account_id": acme["id"]})
        for n in range(4)
    ]
    at_globex = await create(
        client, tenant, CONTACTS, {"last_name": "G", "account_id": globex["id"]}
    )
    await create(client, tenant, CONTACTS, {"last_name": "Nobody's"})

    assert ids(await list_all(client, tenant, CONTACTS, account_id=acme["id"])) == ids(at_acme)
    assert ids(await list_all(client, tenant, CONTACTS, account_id=globex["id"])) == [
        at_globex["id"]
    ]
    combined = await list_all(
        client, tenant, CONTACTS, account_id=acme["id"], owner_id=str(tenant.user_id), q="a3"
    )
    assert ids(combined) == [at_acme[3]["id"]]


@pytest.mark.parametrize("entity", ENTITIES)
async def test_updated_since_filter(
    services: Services, client: httpx.AsyncClient, entity: Entity
) -> None:
    tenant = await new_tenant(services, client, "since")
    records = [await create(client, tenant, entity, entity.body(f"Since {n}")) for n in range(4)]
    touched = await patch(client, tenant, entity, records[1], {"tags": ["touched"]})
    since = touched["updated_at"]
    current = {r["id"]: r for r in await list_all(client, tenant, entity)}
    current[touched["id"]] = touched
    expected = sorted(rid for rid, r in current.items() if ts(r["updated_at"]) >= ts(since))

    found = await list_all(client, tenant, entity, updated_since=since)
    assert sorted(ids(found)) == expected
    assert touched["id"] in ids(found)
    assert records[0]["id"] not in ids(found)  # created before the touch, never changed since
    assert all(ts(r["updated_at"]) >= ts(since) for r in found)

    everything = await list_all(client, tenant, entity, updated_since="2000-01-01T00:00:00Z")
    assert sorted(ids(everything)) == sorted(current)
    assert await list_all(client, tenant, entity, updated_since="2999-01-01T00:00:00+00:00") == []


# -- sort order ----------------------------------------------------------------------------------
@pytest.mark.parametrize("entity", ENTITIES)
async def test_sort_by_updated_at_descending_across_pages(
    services: Services, client: httpx.AsyncClient, entity: Entity
) -> None:
    tenant = await new_tenant(services, client, "sortupd")
    records = [await create(client, tenant, entity, entity.body(f"Upd {n}")) for n in range(6)]
    touched = await patch(client, tenant, entity, records[2], {"tags": ["latest"]})

    found = await list_all(client, tenant, entity, limit=2, sort="-updated_at")
    assert sorted(ids(found)) == sorted(ids(records))
    assert found[0]["id"] == touched["id"]
    keys = [(ts(r["updated_at"]), uuid.UUID(r["id"])) for r in found]
    assert keys == sorted(keys, reverse=True)

    ascending = await list_all(client, tenant, entity, limit=4, sort="updated_at")
    assert ids(ascending) == list(reversed(ids(found)))


@pytest.mark.parametrize("entity", ENTITIES)
async def test_sort_by_name_is_stable_across_pages_with_equal_values(
    services: Services, client: httpx.AsyncClient, entity: Entity
) -> None:
    tenant = await new_tenant(services, client, "sortname")
    names = ["Miller", "Adams", "Miller", "Zimmer", "Miller", "Adams", "Miller", "Baker"]
    created = [await create(client, tenant, entity, entity.body(n)) for n in names]
    field = entity.name_field

    ascending = await list_all(client, tenant, entity, limit=2, sort=field)
    assert len(ascending) == len(created)
    assert sorted(ids(ascending)) == sorted(ids(created))
    expected = sorted(created, key=lambda r: (r[field], uuid.UUID(r["id"])))
    assert ids(ascending) == ids(expected)

    descending = await list_all(client, tenant, entity, limit=3, sort=f"-{field}")
    assert ids(descending) == list(reversed(ids(expected)))
    # The same pages again give the same order (stable across repeated reads).
    assert ids(await list_all(client, tenant, entity, limit=2, sort=field)) == ids(ascending)


@pytest.mark.parametrize("entity", ENTITIES)
async def test_cursor_of_one_sort_order_is_refused_by_another(
    services: Services, client: httpx.AsyncClient, entity: Entity
) -> None:
    tenant = await new_tenant(services, client, "sortcursor")
    for n in range(3):
        await create(client, tenant, entity, entity.body(f"C {n}"))
    page = await list_page(client, tenant, entity, limit=1, sort=entity.name_field)
    assert isinstance(page["next"], str)
    response = await client.get(
        entity.url, params={"after": page["next"], "sort": "-updated_at"}, headers=tenant.headers
    )
    assert_problem(response, 400, "invalid_cursor")
    assert response.json()["field"] == "after"


# -- field behaviour -----------------------------------------------------------------------------
@pytest.mark.parametrize("entity", ENTITIES)
async def test_patch_owner_to_another_user_of_the_tenant(
    services: Services, client: httpx.AsyncClient, entity: Entity
) -> None:
    tenant = await new_tenant(services, client, "reassign")
    colleague = await new_user(services, client, tenant, "colleague")
    record = await create(client, tenant, entity, entity.body("Handover"))
    assert record["owner_id"] == str(tenant.user_id)

    updated = await patch(client, tenant, entity, record, {"owner_id": str(colleague.user_id)})
    assert updated["owner_id"] == str(colleague.user_id)
    assert updated["version"] == 2
    fetched = await get_record(client, tenant, entity, record["id"])
    assert fetched["owner_id"] == str(colleague.user_id)
    listed = await list_all(client, tenant, entity, owner_id=str(colleague.user_id))
    assert ids(listed) == [record["id"]]


@pytest.mark.parametrize("entity", ENTITIES)
async def test_owner_of_another_tenant_is_refused(
    client: httpx.AsyncClient, tenant_a: TenantUser, tenant_b: TenantUser, entity: Entity
) -> None:
    record = await create(client, tenant_a, entity, entity.body("Not yours to give"))
    response = await client.patch(
        f"{entity.url}/{record['id']}",
        json={"owner_id": str(tenant_b.user_id)},
        headers={**tenant_a.headers, "If-Match": '"1"'},
    )
    assert_problem(response, 422, "unknown_reference")
    assert response.json()["field"] == "owner_id"
    assert await get_record(client, tenant_a, entity, record["id"]) == record


@pytest.mark.parametrize(
    ("entity", "field", "value"),
    [
        pytest.param(ACCOUNTS, "industry", "Shipping", id="accounts-industry"),
        pytest.param(ACCOUNTS, "website", "https://example.com/", id="accounts-website"),
        pytest.param(CONTACTS, "email", "ada@example.com", id="contacts-email"),
        pytest.param(CONTACTS, "first_name", "Ada", id="contacts-first_name"),
        pytest.param(CONTACTS, "country", "GB", id="contacts-country"),
    ],
)
async def test_clearing_a_nullable_field_with_null(
    client: httpx.AsyncClient, tenant_a: TenantUser, entity: Entity, field: str, value: str
) -> None:
    record = await create(client, tenant_a, entity, entity.body("Clearable", **{field: value}))
    assert record[field] == value
    cleared = await patch(client, tenant_a, entity, record, {field: None})
    assert cleared[field] is None
    assert cleared[entity.name_field] == "Clearable"
    assert (await get_record(client, tenant_a, entity, record["id"]))[field] is None


@pytest.mark.parametrize("entity", ENTITIES)
async def test_tags_are_deduplicated_and_trimmed(
    client: httpx.AsyncClient, tenant_a: TenantUser, entity: Entity
) -> None:
    record = await create(
        client, tenant_a, entity, entity.body("Tagged", tags=["vip", "b2b", "vip", " b2b ", "eu"])
    )
    assert record["tags"] == ["vip", "b2b", "eu"]
    updated = await patch(client, tenant_a, entity, record, {"tags": ["x", "x", "y"]})
    assert updated["tags"] == ["x", "y"]
    cleared = await patch(client, tenant_a, entity, updated, {"tags": None})
    assert cleared["tags"] == []


@pytest.mark.parametrize("entity", ENTITIES)
async def test_patch_changes_only_the_fields_sent(
    client: httpx.AsyncClient, tenant_a: TenantUser, entity: Entity
) -> None:
    record = await create(
        client, tenant_a, entity, entity.body("Partial", city="Lisbon", tags=["keep"])
    )
    updated = await patch(client, tenant_a, entity, record, {"region": "Lisboa"})
    assert updated["city"] == "Lisbon"
    assert updated["tags"] == ["keep"]
    assert updated["region"] == "Lisboa"
    assert updated[entity.name_field] == "Partial"


async def test_contact_account_must_exist_in_the_tenant(
    client: httpx.AsyncClient, tenant_a: TenantUser, tenant_b: TenantUser
) -> None:
    foreign = await create(client, tenant_b, ACCOUNTS, {"name": "Other tenant's"})
    for account_id in (foreign["id"], str(uuid.uuid4())):
        response = await client.post(
            CONTACTS.url,
            json={"last_name": "Linked", "account_id": account_id},
            headers=tenant_a.headers,
        )
        assert_problem(response, 422, "unknown_reference")
        assert response.json()["field"] == "account_id"
