"""Delta sync, reading: exactly the changes since the cursor, whole and masked, tombstones for
records deleted or moved out of the caller's scope, nothing of another tenant, paging, and a
bad cursor refused."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx

from backend.context import RequestContext
from backend.crm.contacts.service import contacts
from backend.history.retention import Retention, set_retention
from backend.runtime import Services
from backend.sync import cursor as cursors
from tests.conftest import TenantUser, new_tenant
from tests.security.policy_helpers import (
    assert_problem,
    create_record,
    create_role,
    role_ids,
    user_with_roles,
)
from tests.sync.helpers import ops, patch, pull, pull_all

DEAL = {"name": "Fleet", "stage": "proposal", "close_date": "2026-12-31", "cost": "10.00"}


async def test_first_sync_is_the_working_set_then_only_changes(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "sync-ws")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    mine = [
        await create_record(client, rep, "contacts", {"last_name": f"Mine {i}"}) for i in range(3)
    ]
    theirs = await create_record(client, admin, "contacts", {"last_name": "Not mine"})
    account = await create_record(client, rep, "accounts", {"name": "Acme"})

    changes, cursor = await pull_all(client, rep, limit=2)
    assert ops(changes) == {r["id"]: "upsert" for r in [*mine, account]}
    assert theirs["id"] not in ops(changes)
    assert {c["entity"] for c in changes} == {"contacts", "accounts"}

    # Nothing changed: nothing comes.
    again, cursor = await pull_all(client, rep, cursor)
    assert again == []

    created = await create_record(client, rep, "contacts", {"last_name": "New"})
    updated = await patch(client, rep, "contacts", mine[0], title="CEO")
    deleted = await client.delete(f"/api/v1/contacts/{mine[1]['id']}", headers=rep.headers)
    assert deleted.status_code == 204
    await patch(client, admin, "contacts", theirs, title="Not for the rep")

    changes, cursor = await pull_all(client, rep, cursor)
    assert ops(changes) == {
        created["id"]: "upsert",
        updated["id"]: "upsert",
        mine[1]["id"]: "delete",
    }
    by_id = {c["id"]: c for c in changes}
    assert by_id[updated["id"]]["record"]["title"] == "CEO"
    assert by_id[updated["id"]]["version"] == updated["version"]
    assert by_id[mine[1]["id"]]["record"] is None
    assert (await pull_all(client, rep, cursor))[0] == []


async def test_moving_a_record_to_someone_else_is_a_tombstone_for_the_old_owner(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "sync-move")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    other = await user_with_roles(services, client, admin, "other", ["salesperson"])
    record = await create_record(client, rep, "contacts", {"last_name": "Moving"})
    _, rep_cursor = await pull_all(client, rep)
    _, other_cursor = await pull_all(client, other)

    await patch(client, admin, "contacts", record, owner_id=str(other.user_id))

    rep_changes, _ = await pull_all(client, rep, rep_cursor)
    assert rep_changes == [
        {"entity": "contacts", "id": record["id"], "op": "delete", "version": None, "record": None}
    ]
    other_changes, _ = await pull_all(client, other, other_cursor)
    assert ops(other_changes) == {record["id"]: "upsert"}
    assert other_changes[0]["record"]["owner_id"] == str(other.user_id)


async def test_changes_never_seen_give_no_tombstones(
    services: Services, client: httpx.AsyncClient
) -> None:
    """A record that was never in the rep's scope is not announced, not even by id."""
    admin = await new_tenant(services, client, "sync-oracle")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    _, cursor = await pull_all(client, rep)
    hidden = await create_record(client, admin, "contacts", {"last_name": "Hidden"})
    await patch(client, admin, "contacts", hidden, title="Still hidden")
    gone = await client.delete(f"/api/v1/contacts/{hidden['id']}", headers=admin.headers)
    assert gone.status_code == 204
    changes, _ = await pull_all(client, rep, cursor)
    assert changes == []


async def test_masking_applies_in_sync(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "sync-mask")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    _, cursor = await pull_all(client, rep)
    deal = await create_record(
        client, rep, "opportunities", {k: v for k, v in DEAL.items() if k != "cost"}
    )
    await patch(client, admin, "opportunities", deal, cost="99.00")

    for changes in ((await pull_all(client, rep))[0], (await pull_all(client, rep, cursor))[0]):
        (change,) = [c for c in changes if c["id"] == deal["id"]]
        assert "cost" not in change["record"]
        assert "cost" in change["record"]["withheld_fields"]
    admin_changes, _ = await pull_all(client, admin)
    (seen,) = [c for c in admin_changes if c["id"] == deal["id"]]
    assert seen["record"]["cost"] == "99.00"


async def test_another_tenants_changes_never_appear(
    services: Services, client: httpx.AsyncClient
) -> None:
    one = await new_tenant(services, client, "sync-one")
    two = await new_tenant(services, client, "sync-two")
    _, cursor = await pull_all(client, one)
    theirs = await create_record(client, two, "contacts", {"last_name": "Other tenant"})
    await patch(client, two, "contacts", theirs, title="x")
    ours = await create_record(client, one, "contacts", {"last_name": "Ours"})
    changes, _ = await pull_all(client, one, cursor)
    assert ops(changes) == {ours["id"]: "upsert"}
    first, _ = await pull_all(client, one)
    assert theirs["id"] not in ops(first)


async def test_entities_filter_and_paging(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "sync-page")
    _, cursor = await pull_all(client, admin)
    contacts = [
        await create_record(client, admin, "contacts", {"last_name": f"C{i}"}) for i in range(5)
    ]
    account = await create_record(client, admin, "accounts", {"name": "A"})
    page = await pull(client, admin, cursor, entities="contacts", limit=2)
    assert page["has_more"] is True and len(page["changes"]) == 2
    rest, _ = await pull_all(client, admin, page["cursor"], entities="contacts", limit=2)
    assert [c["id"] for c in page["changes"] + rest] == [c["id"] for c in contacts]
    everything, _ = await pull_all(client, admin, cursor, limit=4)
    assert set(ops(everything)) == {*(c["id"] for c in contacts), account["id"]}


async def test_bad_cursor_entities_and_limit_are_refused(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "sync-bad")
    for cursor in ("nonsense", "s1.bm9wZQ", "s1." + "A" * 600, "s1.WzEsMCxudWxsLG51bGwsbnVsbF0"):
        response = await client.get(
            "/api/v1/sync", params={"cursor": cursor}, headers=admin.headers
        )
        assert_problem(response, 400, "invalid_cursor", "cursor")
    response = await client.get("/api/v1/sync?entities=contacts,secrets", headers=admin.headers)
    assert_problem(response, 400, "unknown_entity", "entities")
    response = await client.get("/api/v1/sync?limit=0", headers=admin.headers)
    assert_problem(response, 400, "invalid_limit", "limit")
    response = await client.get("/api/v1/sync")
    assert_problem(response, 401)


async def test_an_entity_the_role_may_not_read_is_refused_when_named(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "sync-deny")
    await create_role(
        client, admin, "contacts_only", [("allow", "contact", "read")], {"*": "tenant"}
    )
    reader = await user_with_roles(services, client, admin, "reader", ["contacts_only"])
    await create_record(client, admin, "accounts", {"name": "Secret account"})
    contact = await create_record(client, admin, "contacts", {"last_name": "Visible"})
    changes, _ = await pull_all(client, reader)
    assert {c["entity"] for c in changes} == {"contacts"}
    assert contact["id"] in ops(changes)
    response = await client.get("/api/v1/sync?entities=accounts", headers=reader.headers)
    assert_problem(response, 403)


async def test_a_change_committed_late_by_an_earlier_transaction_is_not_missed(
    services: Services, client: httpx.AsyncClient
) -> None:
    """A transaction that began before a sync and commits after it still reaches the phone on
    the next sync, although its change is older than the cursor the phone got."""
    admin = await new_tenant(services, client, "sync-late")
    _, cursor = await pull_all(client, admin)
    principal = await services.tokens.authenticate(admin.token)
    slow = RequestContext(principal=principal, db=services.db, channel="rest")
    async with slow.session.request_scope():
        late = await contacts.create(slow, {"last_name": "Late"})
        quick = await create_record(client, admin, "contacts", {"last_name": "Quick"})
        changes, cursor = await pull_all(client, admin, cursor)
        assert ops(changes) == {quick["id"]: "upsert"}
    changes, _ = await pull_all(client, admin, cursor)
    assert str(late["id"]) in ops(changes)


async def _reset_sync(
    client: httpx.AsyncClient, user: TenantUser, cursor: str
) -> tuple[bool, dict[str, dict[str, Any]], str]:
    """The next sync after a change of who-sees-what: (reset?, records by id, cursor)."""
    first = await pull(client, user, cursor)
    rest, cursor = (
        await pull_all(client, user, first["cursor"])
        if first["has_more"]
        else ([], first["cursor"])
    )
    changes = first["changes"] + rest
    return first["reset"], {c["id"]: c["record"] for c in changes}, cursor


async def test_a_role_change_restarts_the_working_set(
    services: Services, client: httpx.AsyncClient
) -> None:
    """Field rules changed without any record changing: the phone is told to start over, and
    the new working set no longer carries the field."""
    admin = await new_tenant(services, client, "sync-role")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    contact = await create_record(client, rep, "contacts", {"last_name": "E", "email": "e@x.io"})
    _, cursor = await pull_all(client, rep)
    no_email = await create_role(client, admin, "no_email", [("deny", "contact.email", "*")])
    roles = await role_ids(client, admin)
    assigned = await client.put(
        f"/api/v1/users/{rep.user_id}/roles",
        headers=admin.headers,
        json={"role_ids": [roles["salesperson"], no_email]},
    )
    assert assigned.status_code == 200, assigned.text
    reset, records, cursor = await _reset_sync(client, rep, cursor)
    assert reset is True
    assert "email" not in records[contact["id"]]
    assert "email" in records[contact["id"]]["withheld_fields"]
    # Then plain deltas again.
    again = await pull(client, rep, cursor)
    assert (again["reset"], again["changes"]) == (False, [])


async def test_a_team_change_restarts_the_working_set(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "sync-team")
    boss = await user_with_roles(services, client, admin, "boss", ["sales_manager"])
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    theirs = await create_record(client, rep, "contacts", {"last_name": "Rep's"})
    first, cursor = await pull_all(client, boss)
    assert theirs["id"] not in ops(first)
    team = await client.post("/api/v1/teams", headers=admin.headers, json={"name": "west"})
    members = f"/api/v1/teams/{team.json()['id']}/members"
    both = {"user_ids": [str(boss.user_id), str(rep.user_id)]}
    assert (await client.put(members, headers=admin.headers, json=both)).status_code == 200
    reset, records, cursor = await _reset_sync(client, boss, cursor)
    assert reset is True and theirs["id"] in records
    alone = {"user_ids": [str(boss.user_id)]}
    assert (await client.put(members, headers=admin.headers, json=alone)).status_code == 200
    reset, records, cursor = await _reset_sync(client, boss, cursor)
    assert reset is True and theirs["id"] not in records


async def test_a_cursor_older_than_the_history_retention_starts_over(
    services: Services, client: httpx.AsyncClient
) -> None:
    """History past the tenant's retention may be pruned, so a phone that last synced longer
    ago than that cannot be given the changes since: it gets a fresh working set."""
    admin = await new_tenant(services, client, "sync-old")
    contact = await create_record(client, admin, "contacts", {"last_name": "Kept"})
    _, cursor = await pull_all(client, admin)
    await set_retention(services.db, admin.tenant_id, Retention(history_days=1, audit_days=None))
    fresh = await pull(client, admin, cursor)
    assert (fresh["reset"], fresh["changes"]) == (False, [])
    # The same phone, two days later (its cursor issued two days ago).
    issued = cursors.decode(cursor)
    stale = cursors.encode(replace(issued, issued=issued.issued - 2 * 86400))
    late = await pull(client, admin, stale)
    assert late["reset"] is True
    assert contact["id"] in ops(late["changes"])


async def test_team_scope_tombstones_follow_teammates_records(
    services: Services, client: httpx.AsyncClient
) -> None:
    """A manager holds the team's records: one moved to someone outside the team leaves as a
    tombstone; an outsider's record moved between outsiders is never mentioned."""
    admin = await new_tenant(services, client, "sync-teamtomb")
    boss = await user_with_roles(services, client, admin, "boss", ["sales_manager"])
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    outsider = await user_with_roles(services, client, admin, "out", ["salesperson"])
    team = await client.post("/api/v1/teams", headers=admin.headers, json={"name": "east"})
    members = {"user_ids": [str(boss.user_id), str(rep.user_id)]}
    put = await client.put(
        f"/api/v1/teams/{team.json()['id']}/members", headers=admin.headers, json=members
    )
    assert put.status_code == 200, put.text
    teammates = await create_record(client, rep, "contacts", {"last_name": "Team's"})
    outside = await create_record(client, outsider, "contacts", {"last_name": "Outside"})
    first, cursor = await pull_all(client, boss)
    assert teammates["id"] in ops(first) and outside["id"] not in ops(first)
    await patch(client, admin, "contacts", teammates, owner_id=str(outsider.user_id))
    await patch(client, admin, "contacts", outside, owner_id=str(admin.user_id))
    changes, _ = await pull_all(client, boss, cursor)
    assert ops(changes) == {teammates["id"]: "delete"}
