"""SLA policies: impossible values refused naming the field; due times in business time in the
tenant's zone (weekends and holidays skipped); the breach check marks, escalates and audits;
the `sla` and `sla_due_within` list filters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from backend.crm.cases.business_time import add_business_minutes, parse_hours
from backend.crm.cases.commands import sla_check
from backend.runtime import Services
from tests.api.cases_helpers import ALL_WEEK, get_case, new_case, new_policy, new_queue
from tests.conftest import gql, new_tenant, new_user

WEEKDAYS_9_TO_5 = {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
GOOD = {
    "priority": "high",
    "first_response_minutes": 30,
    "resolution_minutes": 240,
    "business_hours": WEEKDAYS_9_TO_5,
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"first_response_minutes": -5}, "first_response_minutes"),
        ({"first_response_minutes": 0}, "first_response_minutes"),
        ({"resolution_minutes": "lots"}, "resolution_minutes"),
        ({"resolution_minutes": 10}, "resolution_minutes"),  # less than the first response
        ({"business_hours": {"mon": ["25:00", "26:00"]}}, "business_hours.mon"),
        ({"business_hours": {"tue": ["17:00", "09:00"]}}, "business_hours.tue"),
        ({"business_hours": {"someday": ["09:00", "17:00"]}}, "business_hours.someday"),
        ({"business_hours": {}}, "business_hours"),
        ({"holidays": ["2027-02-30"]}, "holidays"),
        ({"priority": "eventually"}, "priority"),
        ({"escalation_queue_id": "0190e0e0-0000-7000-8000-000000000000"}, "escalation_queue_id"),
    ],
)
async def test_impossible_policies_are_refused_naming_the_field(
    services: Services, client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    admin = await new_tenant(services, client, "sla-bad")
    refused = await client.post(
        "/api/v1/sla-policies", json={**GOOD, **change}, headers=admin.headers
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == field
    listed = await client.get("/api/v1/sla-policies", headers=admin.headers)
    assert listed.json()["items"] == []


async def test_one_policy_per_priority(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "sla-dup")
    await new_policy(client, admin, **GOOD)
    again = await client.post("/api/v1/sla-policies", json=GOOD, headers=admin.headers)
    assert again.status_code == 409


async def test_due_times_count_business_hours_in_the_tenant_zone(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "sla-due")
    zoned = await client.patch(
        "/api/v1/tenant/settings", json={"time_zone": "Europe/Berlin"}, headers=admin.headers
    )
    assert zoned.status_code == 200 and zoned.json()["time_zone"] == "Europe/Berlin"
    bad_zone = await client.patch(
        "/api/v1/tenant/settings", json={"time_zone": "Mars/Olympus"}, headers=admin.headers
    )
    assert (bad_zone.status_code, bad_zone.json()["field"]) == (422, "time_zone")
    berlin = ZoneInfo("Europe/Berlin")
    today = datetime.now(berlin).date()
    # The next three days are holidays: whatever today is, the deadline skips them.
    holidays = [today + timedelta(days=i) for i in range(1, 4)]
    await new_policy(
        client,
        admin,
        **{**GOOD, "holidays": [d.isoformat() for d in holidays]},
    )
    case = await new_case(client, admin, priority="high")
    created = datetime.fromisoformat(case["created_at"])
    hours = parse_hours(WEEKDAYS_9_TO_5)
    expected_first = add_business_minutes(created, 30, hours, set(holidays), berlin)
    expected_resolution = add_business_minutes(created, 240, hours, set(holidays), berlin)
    first = datetime.fromisoformat(case["first_response_due_at"])
    resolution = datetime.fromisoformat(case["resolution_due_at"])
    # Computed from the server's clock a moment before created_at was stamped.
    assert abs(first - expected_first) < timedelta(seconds=5)
    assert abs(resolution - expected_resolution) < timedelta(seconds=5)
    assert resolution.astimezone(berlin).date() not in holidays
    assert resolution.astimezone(berlin).weekday() < 5
    # A priority without a policy has no due times; changing to one with a policy sets them.
    loose = await new_case(client, admin, priority="low")
    assert loose["first_response_due_at"] is None and loose["resolution_due_at"] is None
    raised = await client.patch(
        f"/api/v1/cases/{loose['id']}",
        json={"priority": "high"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert raised.json()["resolution_due_at"] is not None
    start = datetime.fromisoformat(loose["created_at"])
    assert abs(
        datetime.fromisoformat(raised.json()["resolution_due_at"])
        - add_business_minutes(start, 240, hours, set(holidays), berlin)
    ) < timedelta(seconds=5)


async def test_breach_check_marks_escalates_and_audits(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin, other = await asyncio.gather(
        new_tenant(services, client, "sla-breach"), new_tenant(services, client, "sla-breach-b")
    )
    lead = await new_user(services, client, admin, "lead")
    escalations = await new_queue(client, admin, "Escalations", [lead])
    await new_policy(
        client,
        admin,
        priority="normal",
        first_response_minutes=60,
        resolution_minutes=120,
        business_hours=ALL_WEEK,
        escalation_queue_id=escalations["id"],
    )
    late = await new_case(client, admin, subject="Nobody answered")
    answered = await new_case(
        client, admin, subject="Answered in time", first_response_at=datetime.now(UTC).isoformat()
    )
    theirs = await new_case(client, other, subject="Other tenant")
    # All due within 3 hours, none breached yet.
    soon = await client.get("/api/v1/cases?sla_due_within=PT3H", headers=admin.headers)
    assert {c["id"] for c in soon.json()["items"]} == {late["id"], answered["id"]}
    later = await client.get("/api/v1/cases?sla_due_within=PT1M", headers=admin.headers)
    assert later.json()["items"] == []
    # 90 minutes on: the first response of `late` is overdue; `answered` is not yet overdue.
    moment = datetime.fromisoformat(late["created_at"]) + timedelta(minutes=90)
    report = await sla_check(services.db, admin.slug, now=moment)
    assert [e["case_id"] for e in report["breached"][admin.slug]] == [late["id"]]
    marked = await get_case(client, admin, late["id"])
    assert datetime.fromisoformat(marked["sla_breached_at"]) == moment
    assert (marked["priority"], marked["queue_id"]) == ("high", escalations["id"])
    breached = await client.get("/api/v1/cases?sla=breached", headers=admin.headers)
    assert [c["id"] for c in breached.json()["items"]] == [late["id"]]
    over_graphql = await gql(
        client,
        admin,
        '{ cases(filter: {sla: "breached"}) { edges { node { id number slaBreachedAt } } } }',
    )
    assert [e["node"]["id"] for e in over_graphql["data"]["cases"]["edges"]] == [late["id"]]
    # Once marked, a case is not marked again; the other tenant's checks are its own.
    again = await sla_check(services.db, admin.slug, now=moment + timedelta(minutes=1))
    assert again["breached"] == {}
    assert (await get_case(client, other, theirs["id"]))["sla_breached_at"] is None
    # The resolution of `answered` is overdue 3 hours on (every tenant checked: the CLI way).
    await sla_check(services.db, None, now=moment + timedelta(hours=2))
    assert (await get_case(client, admin, answered["id"]))["sla_breached_at"] is not None
    events = await client.get("/api/v1/audit-events?type=case.sla_breached", headers=admin.headers)
    assert events.status_code == 200, events.text
    assert {e["details"]["case_id"] for e in events.json()["items"]} == {
        late["id"],
        answered["id"],
    }
    history = await client.get(f"/api/v1/cases/{late['id']}/history", headers=admin.headers)
    system = [e for e in history.json()["items"] if e.get("field") == "sla_breached_at"]
    assert len(system) == 1 and system[0]["channel"] == "system"


async def test_sla_filters_refuse_bad_values(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "sla-filter")
    for query, field in (
        ("sla=late", "sla"),
        ("sla_due_within=1H", "sla_due_within"),
        ("sla_due_within=PT", "sla_due_within"),
        ("sla_due_within=P1Y", "sla_due_within"),
    ):
        refused = await client.get(f"/api/v1/cases?{query}", headers=admin.headers)
        assert refused.status_code == 400, (query, refused.text)
        assert refused.json()["field"] == field
