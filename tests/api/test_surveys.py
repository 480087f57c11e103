"""Satisfaction surveys: a case that becomes resolved gets one survey; its link is shown to an
agent once; the customer answers once (410 after), within 30 days (410 after), within the
survey's scale (422 outside); a low score records `case.low_satisfaction` naming the case and
the agent; other tenants' slugs and cases see nothing."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text

from backend.app import create_app
from backend.runtime import Services
from tests.api.cases_helpers import new_case
from tests.api.selfservice_helpers import count_rows, visitor_at
from tests.conftest import TenantUser, new_tenant, new_user

Json = dict[str, Any]


@pytest.fixture(scope="module")
def app(services: Services) -> Litestar:
    return create_app(services)


@pytest.fixture
async def visitor(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with visitor_at(app) as http:
        yield http


async def resolve(client: httpx.AsyncClient, user: TenantUser, case: Json) -> Json:
    got = await client.get(f"/api/v1/cases/{case['id']}", headers=user.headers)
    headers = {**user.headers, "If-Match": got.headers["etag"]}
    done = await client.patch(
        f"/api/v1/cases/{case['id']}", json={"status": "resolved"}, headers=headers
    )
    assert done.status_code == 200, done.text
    record: Json = done.json()
    return record


async def survey_of(
    client: httpx.AsyncClient, user: TenantUser, case: Json, **params: str
) -> httpx.Response:
    return await client.get(
        f"/api/v1/cases/{case['id']}/survey", params=params, headers=user.headers
    )


async def resolved_with_link(
    client: httpx.AsyncClient, admin: TenantUser, **params: str
) -> tuple[Json, str]:
    contact = await client.post(
        "/api/v1/contacts", json={"last_name": "Rater"}, headers=admin.headers
    )
    case = await new_case(
        client, admin, assignee_id=str(admin.user_id), contact_id=contact.json()["id"]
    )
    await resolve(client, admin, case)
    first = await survey_of(client, admin, case, **params)
    assert first.status_code == 200, first.text
    url: str = first.json()["survey_url"]
    return case, url


async def test_survey_once_per_token(
    services: Services, client: httpx.AsyncClient, visitor: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "rated")
    case = await new_case(client, admin, assignee_id=str(admin.user_id))
    missing = await survey_of(client, admin, case)
    assert missing.status_code == 404  # not resolved: no survey yet
    await resolve(client, admin, case)
    first = await survey_of(client, admin, case)
    assert first.status_code == 200, first.text
    link = first.json()
    assert link["kind"] == "csat" and link["agent_id"] == str(admin.user_id)
    assert link["survey_url"].startswith(f"/public/{admin.slug}/surveys/")
    token = link["survey_url"].rsplit("/", 1)[-1]
    # Shown once: later reads show the survey without its link; only its hash is stored.
    again = (await survey_of(client, admin, case)).json()
    assert "survey_url" not in again and again["link_issued_at"] is not None
    async with services.db.tenant_transaction(admin.tenant_id) as conn:
        stored = (await conn.execute(text("SELECT token_hash FROM case_surveys"))).scalar_one()
    assert token not in stored and len(stored) == 64

    for bad in (6, 0, "5", True, None, 4.5):
        refused = await visitor.post(link["survey_url"], json={"score": bad})
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["field"] == "score"
    answered = await visitor.post(link["survey_url"], json={"score": 5, "comment": "<b>Great</b>"})
    assert answered.status_code == 200, answered.text
    twice = await visitor.post(link["survey_url"], json={"score": 1})
    assert twice.status_code == 410, twice.text
    shown = (await survey_of(client, admin, case)).json()
    assert (shown["score"], shown["comment"]) == (5, "<b>Great</b>")
    assert shown["answered_at"] is not None
    # Resolving again (after reopening) keeps the one survey.
    got = await client.get(f"/api/v1/cases/{case['id']}", headers=admin.headers)
    reopened = await client.patch(
        f"/api/v1/cases/{case['id']}",
        json={"status": "open"},
        headers={**admin.headers, "If-Match": got.headers["etag"]},
    )
    assert reopened.status_code == 200
    await resolve(client, admin, case)
    assert await count_rows(services, admin, "case_surveys") == 1
    assert (await survey_of(client, admin, case)).json()["score"] == 5


async def test_nps_scale_and_expiry(
    services: Services, client: httpx.AsyncClient, visitor: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "nps")
    case, url = await resolved_with_link(client, admin, kind="nps")
    assert (await visitor.post(url, json={"score": 11})).status_code == 422
    assert (await visitor.post(url, json={"score": 10, "extra": 1})).status_code == 422
    assert (await visitor.post(url, json={"score": 10})).status_code == 200
    assert (await survey_of(client, admin, case)).json()["kind"] == "nps"
    assert (await survey_of(client, admin, case, kind="bogus")).status_code == 422

    late, late_url = await resolved_with_link(client, admin)
    async with services.db.tenant_transaction(admin.tenant_id) as conn:
        await conn.execute(
            text(
                "UPDATE case_surveys SET expires_at = now() - interval '1 second'"
                " WHERE case_id = :c"
            ),
            {"c": late["id"]},
        )
    expired = await visitor.post(late_url, json={"score": 4})
    assert expired.status_code == 410, expired.text
    assert (await survey_of(client, admin, late)).json()["answered_at"] is None


async def test_a_low_score_raises_an_alert(
    services: Services, client: httpx.AsyncClient, visitor: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "lowscore")
    _fine, fine_url = await resolved_with_link(client, admin)
    assert (await visitor.post(fine_url, json={"score": 3})).status_code == 200
    poor, poor_url = await resolved_with_link(client, admin)
    assert (await visitor.post(poor_url, json={"score": 2, "comment": "slow"})).status_code == 200
    events = await client.get(
        "/api/v1/audit-events?type=case.low_satisfaction", headers=admin.headers
    )
    assert events.status_code == 200, events.text
    details = [e["details"] for e in events.json()["items"]]
    assert details == [
        {"case_id": poor["id"], "agent_id": str(admin.user_id), "kind": "csat", "score": 2}
    ]


async def test_other_tenants_and_guesses_see_nothing(
    services: Services, client: httpx.AsyncClient, visitor: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "surva")
    other = await new_tenant(services, client, "survb")
    case, url = await resolved_with_link(client, admin)
    token = url.rsplit("/", 1)[-1]
    unknown = await visitor.post("/public/no-such-shop-4711/nothing-here", json={"score": 1})
    for path in (
        f"/public/{other.slug}/surveys/{token}",
        f"/public/no-such-shop-4711/surveys/{token}",
        f"/public/{admin.slug}/surveys/{secrets.token_urlsafe(32)}",
        f"/public/{admin.slug}/surveys/{'x' * 300}",
    ):
        got = await visitor.post(path, json={"score": 1})
        assert got.status_code == 404, got.text
        assert got.json() == unknown.json()
    assert (await survey_of(client, admin, case)).json()["answered_at"] is None
    # Another tenant's agent cannot read (or mint) the survey of this tenant's case.
    assert (await survey_of(client, other, case)).status_code == 404
    # A user who may only read cases gets no link (a link lets its holder answer).
    reader = await new_user(services, client, admin, "reader")
    assert (await survey_of(client, reader, case)).status_code in (403, 404)
    assert (await visitor.post(url, json={"score": 1})).status_code == 200
