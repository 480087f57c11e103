"""GET /api/v1/reminders/due, POST /api/v1/reminders/{id}/dismiss and their GraphQL twins:
reminders of the caller's own open activities whose time has come, until dismissed (a
dismissal holds until the activity is moved); nobody else's, in no other tenant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from backend.context import Principal
from backend.runtime import Services
from tests.api.agenda_helpers import activity, assign_role
from tests.conftest import TenantUser, gql, new_tenant, new_user
from tests.security.policy_helpers import assert_problem, create_role, gql_codes, gql_data


def _in(minutes: float) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


async def _due(client: httpx.AsyncClient, user: TenantUser) -> list[dict[str, Any]]:
    got = await client.get("/api/v1/reminders/due", headers=user.headers)
    assert got.status_code == 200, got.text
    items: list[dict[str, Any]] = got.json()["items"]
    return items


def _subjects(items: list[dict[str, Any]]) -> list[str]:
    return [i["activity"]["subject"] for i in items]


async def test_due_reminders_are_the_callers_open_ones_whose_time_came(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "remind")
    rep = await new_user(services, client, admin, "rep")
    soon = await activity(
        client, rep, kind="meeting", subject="soon", starts_at=_in(10), remind_minutes_before=15
    )
    await activity(
        client, rep, kind="task", subject="due task", due_at=_in(30), remind_minutes_before=60
    )
    await activity(  # a task reminds before it is due, not before it starts
        client,
        rep,
        kind="task",
        subject="starts now, due later",
        starts_at=_in(-5),
        due_at=_in(120),
        remind_minutes_before=30,
    )
    await activity(
        client, rep, kind="call", subject="later", starts_at=_in(120), remind_minutes_before=15
    )
    await activity(client, rep, kind="meeting", subject="no reminder", starts_at=_in(5))
    await activity(
        client,
        rep,
        kind="task",
        subject="done",
        due_at=_in(5),
        remind_minutes_before=30,
        completed_at=_in(-1),
    )
    await activity(  # more than a week ago: lapsed
        client,
        rep,
        kind="meeting",
        subject="lapsed",
        starts_at=_in(-8 * 24 * 60),
        remind_minutes_before=0,
    )
    await activity(  # the admin's, whose time has come too
        client, admin, kind="meeting", subject="admin's", starts_at=_in(5), remind_minutes_before=10
    )
    due = await _due(client, rep)
    assert _subjects(due) == ["due task", "soon"]  # by reminder time
    first = due[1]
    assert first["id"] == soon["id"] == first["activity"]["id"]
    remind_at = datetime.fromisoformat(first["remind_at"])
    at = datetime.fromisoformat(first["at"])
    assert at == datetime.fromisoformat(soon["starts_at"])
    assert at - remind_at == timedelta(minutes=15)
    assert _subjects(await _due(client, admin)) == ["admin's"]


async def test_dismissing_is_idempotent_and_holds_until_the_activity_moves(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "dismiss")
    meeting = await activity(
        client, admin, kind="meeting", subject="standup", starts_at=_in(5), remind_minutes_before=10
    )
    path = f"/api/v1/reminders/{meeting['id']}/dismiss"
    first = await client.post(path, headers=admin.headers)
    assert first.status_code == 200, first.text
    assert first.json()["id"] == meeting["id"]
    assert await _due(client, admin) == []
    again = await client.post(path, headers=admin.headers)
    assert again.status_code == 200
    assert again.json() == first.json()  # the first dismissal stands
    # Moved to a new time whose reminder is due: it reminds again.
    moved = await client.patch(
        f"/api/v1/activities/{meeting['id']}",
        json={"starts_at": _in(3).isoformat()},
        headers={**admin.headers, "If-Match": f'"{meeting["version"]}"'},
    )
    assert moved.status_code == 200, moved.text
    assert _subjects(await _due(client, admin)) == ["standup"]
    redismissed = await client.post(path, headers=admin.headers)
    assert redismissed.json()["remind_at"] != first.json()["remind_at"]
    assert await _due(client, admin) == []


async def test_nobody_else_may_dismiss_or_see_a_reminder(
    services: Services, client: httpx.AsyncClient, tenant_b: TenantUser
) -> None:
    admin = await new_tenant(services, client, "dismissiso")
    rep = await new_user(services, client, admin, "rep")
    reps = await activity(
        client, rep, kind="call", subject="rep's call", starts_at=_in(5), remind_minutes_before=10
    )
    plain = await activity(client, rep, kind="call", subject="no reminder", starts_at=_in(5))
    # The admin may read the rep's activity, but it is not the admin's reminder.
    for user, record_id in (
        (admin, reps["id"]),
        (tenant_b, reps["id"]),
        (rep, plain["id"]),
        (rep, str(uuid.uuid4())),
        (rep, "not-a-uuid"),
    ):
        refused = await client.post(f"/api/v1/reminders/{record_id}/dismiss", headers=user.headers)
        assert_problem(refused, 404)
    assert _subjects(await _due(client, rep)) == ["rep's call"]  # still due: nothing dismissed
    assert "rep's call" not in _subjects(await _due(client, tenant_b))
    assert (await client.get("/api/v1/reminders/due")).status_code == 401


async def test_reminders_read_through_field_policy_and_token_scopes(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "remindmask")
    rep = await new_user(services, client, admin, "rep")
    made = await activity(
        client,
        rep,
        kind="meeting",
        subject="pricing",
        notes="the secret price",
        starts_at=_in(5),
        remind_minutes_before=10,
    )
    no_notes = await create_role(
        client,
        admin,
        "no_notes",
        [("allow", "*", "read"), ("deny", "activity.notes", "read")],
        scopes={"*": "own"},
    )
    await assign_role(client, admin, rep, no_notes)
    got = await client.get("/api/v1/reminders/due", headers=rep.headers)
    assert "the secret price" not in got.text
    (item,) = got.json()["items"]
    assert "notes" not in item["activity"] and "notes" in item["activity"]["withheld_fields"]
    # An app with a read-only token may read reminders but not dismiss them.
    reader = services.tokens.issue(
        Principal(user_id=rep.user_id, tenant_id=rep.tenant_id, scopes=frozenset({"crm.read"}))
    )
    headers = {"Authorization": f"Bearer {reader}"}
    assert len((await client.get("/api/v1/reminders/due", headers=headers)).json()["items"]) == 1
    refused = await client.post(f"/api/v1/reminders/{made['id']}/dismiss", headers=headers)
    assert_problem(refused, 403, "insufficient_scope")
    # Whoever may not read when it starts is not reminded of it (the time would tell).
    no_start = await create_role(
        client,
        admin,
        "no_start",
        [("allow", "*", "read"), ("deny", "activity.starts_at", "read")],
        scopes={"*": "own"},
    )
    await assign_role(client, admin, rep, no_start)
    assert await _due(client, rep) == []
    hidden = await client.post(f"/api/v1/reminders/{made['id']}/dismiss", headers=rep.headers)
    assert_problem(hidden, 404)


DUE = "{ dueReminders { id remindAt at activity { id subject } } }"
DISMISS = """
mutation Dismiss($id: ID!) {
  dismissReminder(id: $id) { dismissal { id remindAt dismissedAt } errors { field code } }
}
"""


async def test_graphql_due_reminders_and_dismiss(
    services: Services, client: httpx.AsyncClient, tenant_b: TenantUser
) -> None:
    admin = await new_tenant(services, client, "remindgql")
    made = await activity(
        client, admin, kind="task", subject="gql task", due_at=_in(5), remind_minutes_before=10
    )
    (reminder,) = gql_data(await gql(client, admin, DUE))["dueReminders"]
    assert reminder["id"] == made["id"] and reminder["activity"]["subject"] == "gql task"
    stranger = await gql(client, tenant_b, DISMISS, {"id": made["id"]})
    assert gql_codes(stranger) == ["NOT_FOUND"]
    done = gql_data(await gql(client, admin, DISMISS, {"id": made["id"]}))["dismissReminder"]
    assert done["errors"] == [] and done["dismissal"]["id"] == made["id"]
    assert done["dismissal"]["remindAt"] == reminder["remindAt"]
    assert gql_data(await gql(client, admin, DUE))["dueReminders"] == []
    again = gql_data(await gql(client, admin, DISMISS, {"id": made["id"]}))["dismissReminder"]
    assert again == done
