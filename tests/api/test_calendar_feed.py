"""The calendar feed and vCards: a secret per-user iCalendar URL that a real parser accepts
(meetings, tasks, reminders), that dies when revoked or regenerated, that reads as its user
(scope and masks), and a contact's vCard with only the fields the caller may read. Hostile
values (commas, semicolons, newlines, backslashes) stay inside their property."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import icalendar
import vobject

from backend.context import Principal
from backend.runtime import Services
from tests.conftest import TenantUser, new_tenant, new_user
from tests.security.policy_helpers import create_role, user_with_roles

HOSTILE = 'Line one\nDTSTART:19700101T000000Z\r\nEND:VEVENT; a, b \\ "c"'


async def _activity(client: httpx.AsyncClient, user: TenantUser, **fields: Any) -> dict[str, Any]:
    made = await client.post("/api/v1/activities", json=fields, headers=user.headers)
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def _feed_url(client: httpx.AsyncClient, user: TenantUser) -> str:
    issued = await client.post("/api/v1/me/calendar-feed", headers=user.headers)
    assert issued.status_code == 201, issued.text
    path = urlsplit(issued.json()["url"]).path
    assert path.startswith("/calendar/") and path.endswith(".ics")
    return str(path)


async def test_the_feed_parses_with_events_tasks_and_alarms(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "ical")
    meeting = await _activity(
        client,
        admin,
        kind="meeting",
        subject="Review; with, commas",
        notes=HOSTILE,
        starts_at="2027-01-15T09:30:00+01:00",
        ends_at="2027-01-15T10:30:00+01:00",
        remind_minutes_before=15,
    )
    task = await _activity(
        client,
        admin,
        kind="task",
        subject="Send the offer " + "é" * 80,  # folded across lines, never inside a character
        due_at="2027-01-20T17:00:00Z",
        remind_minutes_before=60,
    )
    await _activity(client, admin, kind="call", subject="Not in the calendar")
    path = await _feed_url(client, admin)
    feed = await client.get(path)  # no bearer token: the secret is the credential
    assert feed.status_code == 200, feed.text
    assert feed.headers["content-type"].startswith("text/calendar")
    assert all(len(line.encode()) <= 75 for line in feed.text.split("\r\n"))
    parsed = icalendar.Calendar.from_ical(feed.text)
    assert str(parsed["VERSION"]) == "2.0"
    (event,) = parsed.walk("VEVENT")
    assert str(event["UID"]).startswith(meeting["id"])
    assert str(event["SUMMARY"]) == "Review; with, commas"
    assert str(event["DESCRIPTION"]) == HOSTILE.replace("\r\n", "\n")
    assert event.decoded("DTSTART") == datetime(2027, 1, 15, 8, 30, tzinfo=UTC)
    assert event.decoded("DTEND") == datetime(2027, 1, 15, 9, 30, tzinfo=UTC)
    (alarm,) = event.walk("VALARM")
    assert alarm.decoded("TRIGGER") == timedelta(minutes=-15)
    (todo,) = parsed.walk("VTODO")
    assert str(todo["UID"]).startswith(task["id"])
    assert str(todo["SUMMARY"]) == task["subject"]
    assert todo.decoded("DUE") == datetime(2027, 1, 20, 17, 0, tzinfo=UTC)
    (todo_alarm,) = todo.walk("VALARM")
    assert todo_alarm.decoded("TRIGGER") == timedelta(minutes=-60)
    assert todo_alarm["TRIGGER"].params["RELATED"] == "END"
    assert len(parsed.walk("VEVENT")) + len(parsed.walk("VTODO")) == 2


async def test_revoked_and_regenerated_urls_are_404(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "icalrevoke")
    first = await _feed_url(client, admin)
    assert (await client.get(first)).status_code == 200
    second = await _feed_url(client, admin)
    assert second != first
    assert (await client.get(first)).status_code == 404
    assert (await client.get(second)).status_code == 200
    revoked = await client.delete("/api/v1/me/calendar-feed", headers=admin.headers)
    assert revoked.status_code == 204
    assert (await client.get(second)).status_code == 404
    again = await client.delete("/api/v1/me/calendar-feed", headers=admin.headers)
    assert again.status_code == 404
    # Guessed, tampered and other-tenant-prefixed tokens are all the same 404.
    token = second.removeprefix("/calendar/").removesuffix(".ics")
    for path in (
        f"/calendar/{token[:-1]}A.ics",
        f"/calendar/{token}",
        "/calendar/nothing.ics",
        f"/calendar/{'0' * 32}{token[32:]}.ics",
    ):
        assert (await client.get(path)).status_code == 404, path
    assert (await client.post("/api/v1/me/calendar-feed")).status_code == 401


async def test_the_feed_reads_as_its_user(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "icalscope")
    rep = await new_user(services, client, admin, "rep")
    await _activity(
        client,
        admin,
        kind="meeting",
        subject="Board meeting",
        starts_at="2027-03-01T09:00:00Z",
    )
    await _activity(
        client,
        rep,
        kind="meeting",
        subject="Rep visit",
        notes="Private notes",
        starts_at="2027-03-02T09:00:00Z",
    )
    path = await _feed_url(client, rep)
    parsed = icalendar.Calendar.from_ical((await client.get(path)).text)
    assert [str(e["SUMMARY"]) for e in parsed.walk("VEVENT")] == ["Rep visit"]
    # Once the rep may no longer read notes, the feed leaves them out.
    role = await client.post(
        "/api/v1/roles",
        headers=admin.headers,
        json={
            "name": "no_notes",
            "rules": [
                {"effect": "allow", "object": "*", "action": "read"},
                {"effect": "deny", "object": "activity.notes", "action": "read"},
            ],
            "scopes": {"*": "own"},
        },
    )
    assert role.status_code == 201, role.text
    assigned = await client.put(
        f"/api/v1/users/{rep.user_id}/roles",
        json={"role_ids": [role.json()["id"]]},
        headers=admin.headers,
    )
    assert assigned.status_code == 200, assigned.text
    (event,) = icalendar.Calendar.from_ical((await client.get(path)).text).walk("VEVENT")
    assert "DESCRIPTION" not in event


async def test_vcard_parses_escapes_and_leaves_out_masked_fields(
    services: Services, client: httpx.AsyncClient, tenant_b: TenantUser
) -> None:
    admin = await new_tenant(services, client, "vcard")
    made = await client.post(
        "/api/v1/contacts",
        json={
            "first_name": "Ann;e",
            "last_name": "O'Neil, Jr.",
            "email": "anne@example.com",
            "phone": "+1 415 555 0100",
            "title": "Head of Buying",
            "address_line1": "1 Main St; Suite 5",
            "city": "San Francisco",
            "country": "US",
            "notes": HOSTILE,
        },
        headers=admin.headers,
    )
    contact_id = made.json()["id"]
    got = await client.get(f"/api/v1/contacts/{contact_id}/vcard", headers=admin.headers)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/vcard")
    card = vobject.readOne(got.text)
    assert card.version.value == "4.0"
    assert card.fn.value == "Ann;e O'Neil, Jr."
    assert (card.n.value.family, card.n.value.given) == ("O'Neil, Jr.", "Ann;e")
    assert card.email.value == "anne@example.com"
    assert card.tel.value == "+1 415 555 0100"
    assert card.adr.value.street == "1 Main St; Suite 5"
    assert card.note.value == HOSTILE.replace("\r\n", "\n")
    assert got.text.count("BEGIN:") == 1  # the hostile notes opened nothing
    await create_role(
        client,
        admin,
        "no_email",
        [
            ("allow", "*", "read"),
            ("deny", "contact.email", "read"),
            ("deny", "contact.notes", "read"),
        ],
        scopes={"*": "tenant"},
    )
    viewer = await user_with_roles(services, client, admin, "viewer", ["no_email"])
    masked = await client.get(f"/api/v1/contacts/{contact_id}/vcard", headers=viewer.headers)
    assert masked.status_code == 200
    card = vobject.readOne(masked.text)
    assert card.fn.value == "Ann;e O'Neil, Jr."
    assert "email" not in card.contents and "note" not in card.contents
    assert "anne@example.com" not in masked.text
    other = await client.get(f"/api/v1/contacts/{contact_id}/vcard", headers=tenant_b.headers)
    assert other.status_code == 404


async def test_app_tokens_cannot_mint_feeds_and_deactivated_users_feeds_stop(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "icalguard")
    rep = await new_user(services, client, admin, "rep")
    # A third-party app's token (scoped) may read and write records, but a feed URL is a
    # long-lived credential only the user's own session may create or revoke.
    app_token = services.tokens.issue(
        Principal(
            user_id=rep.user_id,
            tenant_id=rep.tenant_id,
            scopes=frozenset({"crm.read", "crm.write"}),
        )
    )
    for method in ("POST", "DELETE"):
        refused = await client.request(
            method, "/api/v1/me/calendar-feed", headers={"Authorization": f"Bearer {app_token}"}
        )
        assert (refused.status_code, refused.json()["code"]) == (403, "first_party_only")
    path = await _feed_url(client, rep)
    assert (await client.get(path)).status_code == 200
    deactivated = await client.post(
        f"/api/v1/users/{rep.user_id}/deactivate", headers=admin.headers
    )
    assert deactivated.status_code in (200, 204), deactivated.text
    assert (await client.get(path)).status_code == 404
