"""GET /api/v1/agenda and GraphQL `agenda`: the caller's own meetings, calls and tasks in a
window of their day (their time zone decides what "today" is), plus their open tasks that
fell due before it; other users' activities never, and masked fields stay masked."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from backend.agenda.service import MAX_OVERDUE
from backend.runtime import Services
from tests.api.agenda_helpers import activity, assign_role, set_zone
from tests.conftest import TenantUser, gql, new_tenant, new_user
from tests.security.policy_helpers import assert_problem, create_role, gql_codes, gql_data

AUCKLAND, LOS_ANGELES = "Pacific/Auckland", "America/Los_Angeles"
MINUTE = timedelta(minutes=1)


async def _agenda(client: httpx.AsyncClient, user: TenantUser, **params: str) -> dict[str, Any]:
    got = await client.get("/api/v1/agenda", params=params, headers=user.headers)
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


def _subjects(body: dict[str, Any]) -> list[str]:
    return [item["activity"]["subject"] for item in body["items"]]


def _today(zone: str) -> tuple[datetime, datetime]:
    tz = ZoneInfo(zone)
    day = datetime.now(tz).date()
    start = datetime.combine(day, time(0), tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


async def test_today_is_read_in_each_users_time_zone(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "agendatz")
    kiwi = await new_user(services, client, admin, "kiwi")
    angeleno = await new_user(services, client, admin, "angeleno")
    await set_zone(client, kiwi, AUCKLAND)
    await set_zone(client, angeleno, LOS_ANGELES)
    (a0, a1), (l0, l1) = _today(AUCKLAND), _today(LOS_ANGELES)
    # An instant in Auckland's today only, and one in Los Angeles' today only.
    only_auckland = a0 + MINUTE if a0 < l0 else a1 - MINUTE
    only_la = l1 - MINUTE if a0 < l0 else l0 + MINUTE
    assert not l0 <= only_auckland < l1 and not a0 <= only_la < a1
    for user in (kiwi, angeleno):  # both have the same two meetings
        await activity(client, user, kind="meeting", subject="auckland", starts_at=only_auckland)
        await activity(client, user, kind="meeting", subject="los angeles", starts_at=only_la)
    kiwi_day = await _agenda(client, kiwi)
    la_day = await _agenda(client, angeleno)
    assert _subjects(kiwi_day) == ["auckland"]
    assert _subjects(la_day) == ["los angeles"]
    assert kiwi_day["time_zone"] == AUCKLAND and la_day["time_zone"] == LOS_ANGELES
    assert datetime.fromisoformat(kiwi_day["from"]) == a0
    assert datetime.fromisoformat(kiwi_day["to"]) == a1
    assert datetime.fromisoformat(la_day["from"]) == l0


async def test_a_date_is_that_local_day(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "agendadate")
    kiwi = await new_user(services, client, admin, "kiwi")
    angeleno = await new_user(services, client, admin, "angeleno")
    await set_zone(client, kiwi, AUCKLAND)
    await set_zone(client, angeleno, LOS_ANGELES)
    # 2027-01-14T20:00Z is 09:00 on the 15th in Auckland, noon on the 14th in Los Angeles.
    for user in (kiwi, angeleno):
        await activity(client, user, kind="call", subject="early", starts_at="2027-01-14T20:00:00Z")
        await activity(client, user, kind="task", subject="late", due_at="2027-01-15T20:00:00Z")
    day = {"from": "2027-01-15", "to": "2027-01-15"}
    kiwi_day = await _agenda(client, kiwi, **day)
    la_day = await _agenda(client, angeleno, **day)
    assert _subjects(kiwi_day) == ["early"]
    assert kiwi_day["from"] == "2027-01-15T00:00:00+13:00"
    assert kiwi_day["to"] == "2027-01-16T00:00:00+13:00"
    # "late" falls on the 16th in Auckland; for the Angeleno "early" was the 14th, and as a
    # call (not a task) it is not overdue.
    assert _subjects(la_day) == ["late"]
    assert la_day["items"][0]["kind"] == "task" and la_day["items"][0]["overdue"] is False
    assert la_day["from"] == "2027-01-15T00:00:00-08:00"
    # A date-time with an offset is that instant, whatever the zone.
    both = await _agenda(
        client, kiwi, **{"from": "2027-01-14T19:00:00Z", "to": "2027-01-15T21:00:00+00:00"}
    )
    assert _subjects(both) == ["early", "late"]
    assert [i["at"] for i in both["items"]] == ["2027-01-14T20:00:00Z", "2027-01-15T20:00:00Z"]


async def test_overdue_open_tasks_are_included_and_others_are_not(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "agendadue")
    rep = await new_user(services, client, admin, "rep")
    other = await new_user(services, client, admin, "other")
    week = {"from": "2027-03-08", "to": "2027-03-14"}
    base = datetime(2027, 3, 10, 15, tzinfo=UTC)
    await activity(client, rep, kind="task", subject="long overdue", due_at=base - timedelta(60))
    await activity(client, rep, kind="task", subject="overdue", due_at=base - timedelta(5))
    await activity(
        client,
        rep,
        kind="task",
        subject="done late",
        due_at=base - timedelta(5),
        completed_at=base - timedelta(1),
    )
    await activity(
        client, rep, kind="meeting", subject="past meeting", starts_at=base - timedelta(5)
    )
    await activity(client, rep, kind="task", subject="no date")
    await activity(client, rep, kind="email", subject="an email", starts_at=base)
    await activity(client, rep, kind="note", subject="a note", due_at=base)
    await activity(
        client,
        rep,
        kind="meeting",
        subject="this week",
        starts_at=base,
        ends_at=base + timedelta(hours=1),
    )
    await activity(
        client, rep, kind="task", subject="done this week", due_at=base, completed_at=base
    )
    await activity(client, rep, kind="call", subject="next week", starts_at=base + timedelta(7))
    # Not the rep's: another rep's, and the admin's (who may read the rep's, but it is theirs).
    await activity(
        client, other, kind="task", subject="other's overdue", due_at=base - timedelta(5)
    )
    await activity(client, admin, kind="meeting", subject="admin's meeting", starts_at=base)
    body = await _agenda(client, rep, **week)
    assert [(i["activity"]["subject"], i["overdue"]) for i in body["items"]] == [
        ("long overdue", True),
        ("overdue", True),
        ("this week", False),
        ("done this week", False),
    ]
    assert [i["kind"] for i in body["items"]] == ["task", "task", "meeting", "task"]
    assert all(i["activity"]["owner_id"] == str(rep.user_id) for i in body["items"])
    assert _subjects(await _agenda(client, admin, **week)) == ["admin's meeting"]
    assert _subjects(await _agenda(client, other, **week)) == ["other's overdue"]


async def test_masked_fields_stay_masked_and_hidden_times_hide_the_item(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "agendamask")
    rep = await new_user(services, client, admin, "rep")
    day = {"from": "2027-05-03", "to": "2027-05-03"}
    await activity(
        client,
        rep,
        kind="meeting",
        subject="visit",
        notes="the secret price",
        starts_at="2027-05-03T10:00:00Z",
    )
    await activity(client, rep, kind="task", subject="call back", due_at="2027-05-03T11:00:00Z")
    assert _subjects(await _agenda(client, rep, **day)) == ["visit", "call back"]
    no_notes = await create_role(
        client,
        admin,
        "no_notes",
        [("allow", "*", "read"), ("deny", "activity.notes", "read")],
        scopes={"*": "own"},
    )
    await assign_role(client, admin, rep, no_notes)
    got = await client.get("/api/v1/agenda", params=day, headers=rep.headers)
    assert "the secret price" not in got.text
    first = got.json()["items"][0]["activity"]
    assert "notes" not in first and "notes" in first["withheld_fields"]
    # A caller who may not read when a task is due does not learn it from the agenda.
    no_due = await create_role(
        client,
        admin,
        "no_due",
        [("allow", "*", "read"), ("deny", "activity.due_at", "read")],
        scopes={"*": "own"},
    )
    await assign_role(client, admin, rep, no_due)
    assert _subjects(await _agenda(client, rep, **day)) == ["visit"]
    # One who may not read activities at all is refused.
    no_activities = await create_role(
        client, admin, "no_activities", [("allow", "contact", "read")], scopes={"*": "own"}
    )
    await assign_role(client, admin, rep, no_activities)
    refused = await client.get("/api/v1/agenda", params=day, headers=rep.headers)
    assert refused.status_code == 403, refused.text


async def test_other_tenants_activities_are_never_on_the_agenda(
    services: Services, client: httpx.AsyncClient, tenant_b: TenantUser
) -> None:
    admin = await new_tenant(services, client, "agendaiso")
    await activity(client, admin, kind="meeting", subject="alpha", starts_at="2027-06-01T09:00:00Z")
    await activity(
        client, tenant_b, kind="meeting", subject="bravo", starts_at="2027-06-01T09:00:00Z"
    )
    day = {"from": "2027-06-01", "to": "2027-06-01"}
    assert _subjects(await _agenda(client, admin, **day)) == ["alpha"]
    assert "alpha" not in _subjects(await _agenda(client, tenant_b, **day))


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"from": "yesterday"}, "from", "invalid_datetime"),
        ({"to": "2027-13-01"}, "to", "invalid_datetime"),
        ({"from": "2027-01-01T25:00"}, "from", "invalid_datetime"),
        ({"from": "0001-01-01"}, "from", "invalid_datetime"),
        ({"from": "9" * 500}, "from", "invalid_datetime"),
        ({"from": "2027-01-02", "to": "2027-01-01"}, "to", "window_reversed"),
        ({"from": "2027-01-01T10:00Z", "to": "2027-01-01T10:00Z"}, "to", "window_reversed"),
        ({"from": "2027-01-01", "to": "2027-04-03"}, "to", "window_too_long"),
    ],
)
async def test_bad_windows_are_422_naming_the_parameter(
    client: httpx.AsyncClient,
    tenant_a: TenantUser,
    params: dict[str, str],
    field: str,
    code: str,
) -> None:
    bad = await client.get("/api/v1/agenda", params=params, headers=tenant_a.headers)
    assert_problem(bad, 422, code, field=field)


async def test_the_longest_window_is_92_days(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    body = await _agenda(client, tenant_a, **{"from": "2027-01-01", "to": "2027-04-02"})
    assert date.fromisoformat(body["to"][:10]) - date.fromisoformat(body["from"][:10]) == (
        timedelta(days=92)  # 2027-01-01 00:00 to 2027-04-03 00:00
    )
    assert (await client.get("/api/v1/agenda")).status_code == 401


AGENDA = """
query Agenda($from: String, $to: String) {
  agenda(from: $from, to: $to) {
    from to timeZone truncated
    items { kind at overdue activity { id subject notes withheldFields } }
  }
}
"""


async def test_graphql_agenda_matches_rest(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "agendagql")
    await set_zone(client, admin, AUCKLAND)
    made = await activity(
        client, admin, kind="meeting", subject="gql", starts_at="2027-01-14T20:00:00Z"
    )
    result = await gql(client, admin, AGENDA, {"from": "2027-01-15", "to": "2027-01-15"})
    agenda = gql_data(result)["agenda"]
    assert agenda["timeZone"] == AUCKLAND and agenda["truncated"] is False
    assert agenda["from"] == "2027-01-15T00:00:00+13:00"
    (item,) = agenda["items"]
    assert item["activity"]["id"] == made["id"] and item["kind"] == "meeting"
    assert item["overdue"] is False
    bad = await gql(client, admin, AGENDA, {"from": "2027-02-01", "to": "2027-01-01"})
    assert gql_codes(bad) == ["BAD_USER_INPUT"]
    assert bad["errors"][0]["extensions"]["field"] == "to"
    unknown = await gql(client, admin, AGENDA, {"from": "soon"})
    assert unknown["errors"][0]["extensions"]["field"] == "from"


async def test_old_overdue_tasks_do_not_crowd_out_the_window(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "agendacap")
    base = datetime(2027, 2, 1, 9, tzinfo=UTC)
    for days in range(1, MAX_OVERDUE + 2):  # one more overdue task than an answer carries
        await activity(
            client, admin, kind="task", subject=f"old {days}", due_at=base - timedelta(days)
        )
    await activity(client, admin, kind="meeting", subject="today", starts_at=base)
    body = await _agenda(client, admin, **{"from": "2027-02-01", "to": "2027-02-01"})
    subjects = _subjects(body)
    assert body["truncated"] is True
    assert len(subjects) == MAX_OVERDUE + 1 and subjects[-1] == "today"
    # The oldest is the one left out; the rest come oldest first.
    assert f"old {MAX_OVERDUE + 1}" not in subjects and subjects[0] == f"old {MAX_OVERDUE}"
