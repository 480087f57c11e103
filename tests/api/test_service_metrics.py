"""Service metrics against hand-computed values: six cases of two agents in two months, with
CSAT and NPS answers, set times and SLA outcomes; grouped by agent, queue and month, over a
date range, in the caller's scope only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text

from backend.app import create_app
from backend.runtime import Services
from backend.tenants.service import create_user
from tests.api.cases_helpers import new_case, new_queue
from tests.api.selfservice_helpers import visitor_at
from tests.conftest import PASSWORD, TenantUser, new_tenant, new_user, sign_in

Json = dict[str, Any]
JAN = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
FEB = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)


def at(start: datetime, seconds: int | None) -> datetime | None:
    return None if seconds is None else start + timedelta(seconds=seconds)


async def shape(
    services: Services,
    tenant: TenantUser,
    case: Json,
    start: datetime,
    *,
    response: int | None,
    resolved: int | None,
    first_due: int | None = None,
    resolution_due: int | None = None,
    breached: int | None = None,
    queue_id: str | None = None,
) -> None:
    """Set the case's times (seconds after `start`) as the tenant, as if it had lived them."""
    async with services.db.tenant_transaction(tenant.tenant_id) as conn:
        await conn.execute(
            text(
                "UPDATE cases SET created_at = :c, first_response_at = :r, resolved_at = :d,"
                " first_response_due_at = :fd, resolution_due_at = :rd, sla_breached_at = :b,"
                " queue_id = :q WHERE id = :id"
            ),
            {
                "c": start,
                "r": at(start, response),
                "d": at(start, resolved),
                "fd": at(start, first_due),
                "rd": at(start, resolution_due),
                "b": at(start, breached),
                "q": queue_id,
                "id": case["id"],
            },
        )


async def rated(
    client: httpx.AsyncClient,
    visitor: httpx.AsyncClient,
    admin: TenantUser,
    agent: TenantUser,
    kind: str,
    score: int,
) -> Json:
    """A case of `agent`, resolved and rated `score` on a `kind` survey."""
    case = await new_case(client, admin, assignee_id=str(agent.user_id))
    got = await client.get(f"/api/v1/cases/{case['id']}", headers=admin.headers)
    done = await client.patch(
        f"/api/v1/cases/{case['id']}",
        json={"status": "resolved"},
        headers={**admin.headers, "If-Match": got.headers["etag"]},
    )
    assert done.status_code == 200, done.text
    link = await client.get(
        f"/api/v1/cases/{case['id']}/survey", params={"kind": kind}, headers=admin.headers
    )
    answer = await visitor.post(link.json()["survey_url"], json={"score": score})
    assert answer.status_code == 200, answer.text
    return case


@pytest.fixture(scope="module")
async def world(services: Services, client: httpx.AsyncClient) -> tuple[TenantUser, Json]:
    admin = await new_tenant(services, client, "metrics")
    bea = await new_user(services, client, admin, "bea")
    queue = await new_queue(client, admin, "Front line", [admin, bea])
    q = queue["id"]
    app: Litestar = create_app(services)
    async with visitor_at(app) as visitor:
        one = await rated(client, visitor, admin, admin, "csat", 5)
        two = await rated(client, visitor, admin, admin, "csat", 2)
        three = await rated(client, visitor, admin, bea, "nps", 10)
        five = await rated(client, visitor, admin, bea, "nps", 6)
        six = await rated(client, visitor, admin, bea, "nps", 9)
    four = await new_case(client, admin, assignee_id=str(bea.user_id))  # open, not yet due
    await shape(services, admin, one, JAN, response=600, resolved=3600, first_due=3600,
                resolution_due=7200, queue_id=q)  # fmt: skip
    await shape(services, admin, two, JAN, response=1200, resolved=10800, first_due=3600,
                resolution_due=7200, breached=7200)  # fmt: skip
    await shape(services, admin, three, FEB, response=300, resolved=1800, first_due=600,
                resolution_due=7200, queue_id=q)  # fmt: skip
    await shape(services, admin, four, FEB, response=None, resolved=None, first_due=10**8,
                resolution_due=10**8)  # fmt: skip
    await shape(services, admin, five, FEB, response=900, resolved=3600)
    await shape(services, admin, six, FEB, response=60, resolved=600)
    return admin, {"admin": str(admin.user_id), "bea": str(bea.user_id), "queue": q}


async def metrics(client: httpx.AsyncClient, user: TenantUser, **params: str) -> httpx.Response:
    return await client.get("/api/v1/service/metrics", params=params, headers=user.headers)


JANUARY = {
    "cases": 2,
    "csat_avg": 3.5,  # (5 + 2) / 2
    "nps": None,
    "first_response_seconds_avg": 900.0,  # (600 + 1200) / 2
    "resolution_seconds_avg": 7200.0,  # (3600 + 10800) / 2
    "sla_attainment": 0.5,  # one met, one breached
}
FEBRUARY = {
    "cases": 4,
    "csat_avg": None,
    "nps": 33.3,  # promoters 10, 9; detractor 6: (2 - 1) / 3
    "first_response_seconds_avg": 420.0,  # (300 + 900 + 60) / 3; the open one has none
    "resolution_seconds_avg": 2000.0,  # (1800 + 3600 + 600) / 3
    "sla_attainment": 1.0,  # only case three has a known outcome (met)
}


async def test_by_agent_and_month(
    client: httpx.AsyncClient, world: tuple[TenantUser, Json]
) -> None:
    admin, ids = world
    by_agent = await metrics(client, admin, group_by="agent")
    assert by_agent.status_code == 200, by_agent.text
    rows = {r["key"]: {k: v for k, v in r.items() if k != "key"} for r in by_agent.json()["items"]}
    assert rows == {ids["admin"]: JANUARY, ids["bea"]: FEBRUARY}
    by_month = await metrics(client, admin, group_by="month")
    assert by_month.json()["items"] == [
        {"key": "2026-01", **JANUARY},
        {"key": "2026-02", **FEBRUARY},
    ]
    feb = await metrics(
        client, admin, group_by="agent", **{"from": "2026-02-01", "to": "2026-02-28"}
    )
    assert feb.json()["items"] == [{"key": ids["bea"], **FEBRUARY}]
    jan_only = await metrics(client, admin, **{"from": "2026-01-15", "to": "2026-01-15"})
    assert jan_only.json()["items"] == [{"key": ids["admin"], **JANUARY}]


async def test_by_queue(client: httpx.AsyncClient, world: tuple[TenantUser, Json]) -> None:
    admin, ids = world
    got = await metrics(client, admin, group_by="queue")
    assert got.status_code == 200, got.text
    assert got.json()["items"][0] == {
        "key": ids["queue"],
        "cases": 2,
        "csat_avg": 5.0,
        "nps": 100.0,
        "first_response_seconds_avg": 450.0,  # (600 + 300) / 2
        "resolution_seconds_avg": 2700.0,  # (3600 + 1800) / 2
        "sla_attainment": 1.0,
    }
    assert got.json()["items"][1]["key"] is None and got.json()["items"][1]["cases"] == 4


async def test_scope_and_bad_input(
    services: Services, client: httpx.AsyncClient, world: tuple[TenantUser, Json]
) -> None:
    admin, _ = world
    # A salesperson reads only their own cases (none here): no rows, not the tenant's.
    rep = await new_user(services, client, admin, "rep")
    assert (await metrics(client, rep)).json()["items"] == []
    # Marketing may not read cases at all.
    email = f"mkt@{admin.slug}.example"
    await create_user(
        services.db, tenant_slug=admin.slug, email=email, password=PASSWORD, roles=["marketing"]
    )
    token = (await sign_in(client, admin.slug, email, PASSWORD))["access_token"]
    refused = await client.get(
        "/api/v1/service/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status_code == 403, refused.text
    # Another tenant sees its own (no) cases.
    other = await new_tenant(services, client, "metricsother")
    assert (await metrics(client, other)).json()["items"] == []
    for params, field in (
        ({"group_by": "weekday"}, "group_by"),
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "to"),
    ):
        bad = await metrics(client, admin, **params)
        assert bad.status_code == 422, bad.text
        assert bad.json()["field"] == field
