"""Web self-service cases, unauthenticated: a submitted case is written as the server (channel
web, status new, routed, numbered), its status link shows only that case and its public
replies; wrong tokens, other tenants' slugs and unknown slugs answer exactly like an unknown
path; oversize and over-rate submissions write nothing."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.app import create_app
from backend.crm.cases.public_access import SUBMIT_PER_SOURCE, SUBMIT_PER_TENANT
from backend.runtime import Services
from tests.api.selfservice_helpers import (
    case_by_number,
    count_rows,
    random_address,
    submission,
    submit,
    visitor_at,
)
from tests.conftest import new_tenant

Json = dict[str, Any]


@pytest.fixture(scope="module")
def app(services: Services) -> Litestar:
    return create_app(services)


@pytest.fixture
async def visitor(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with visitor_at(app) as http:
        yield http


async def unknown_path(visitor: httpx.AsyncClient, method: str = "GET") -> httpx.Response:
    return await visitor.request(method, "/public/no-such-shop-4711/nothing-here")


def assert_like_unknown_path(got: httpx.Response, unknown: httpx.Response) -> None:
    assert got.status_code == unknown.status_code == 404, got.text
    assert got.json() == unknown.json()
    assert got.headers["content-type"] == unknown.headers["content-type"]


async def test_submit_follow_and_reply(
    services: Services, client: httpx.AsyncClient, visitor: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "helpdesk")
    contact = await client.post(
        "/api/v1/contacts",
        json={"last_name": "Customer", "email": "Dana@Customer.example"},
        headers=admin.headers,
    )
    assert contact.status_code == 201, contact.text
    html = "<script>alert('x')</script> <b>bold</b>"
    made = await submit(visitor, admin.slug, subject=f"Jams {html}", description=html)
    assert set(made) == {"case_number", "status_url"}
    prefix = f"/public/{admin.slug}/cases/status/"
    assert made["status_url"].startswith(prefix)
    token = made["status_url"][len(prefix) :]
    assert len(token) == 43
    case = await case_by_number(client, admin, made["case_number"])
    assert (case["channel"], case["status"]) == ("web", "new")
    assert case["contact_id"] == contact.json()["id"]  # linked by the email, any case
    assert case["owner_id"] == str(admin.user_id)  # no routing: the tenant's first admin
    assert case["subject"] == f"Jams {html}"  # stored as sent, never rendered
    # Only the hash of the token is stored.
    async with services.db.tenant_transaction(admin.tenant_id) as conn:
        from sqlalchemy import text

        stored = (await conn.execute(text("SELECT token_hash FROM case_status_links"))).all()
    assert len(stored) == 1 and token not in stored[0][0] and len(stored[0][0]) == 64

    status = await visitor.get(made["status_url"])
    assert status.status_code == 200, status.text
    assert status.headers["content-type"].startswith("application/json")
    body = status.json()
    assert set(body) == {"case_number", "subject", "status", "created_at", "replies"}
    assert (body["case_number"], body["status"], body["replies"]) == (
        made["case_number"],
        "new",
        [],
    )

    mine = await visitor.post(f"{made['status_url']}/replies", json={"body": "Any news? <i>"})
    assert mine.status_code == 201, mine.text
    url = f"/api/v1/cases/{case['id']}/replies"
    public = await client.post(
        url, json={"body": "Try tray 2.", "public": True}, headers=admin.headers
    )
    assert public.status_code == 201, public.text
    internal = await client.post(url, json={"body": "Known firmware bug"}, headers=admin.headers)
    assert internal.status_code == 201 and internal.json()["public"] is False
    shown = (await visitor.get(made["status_url"])).json()["replies"]
    assert [(r["from"], r["body"]) for r in shown] == [
        ("customer", "Any news? <i>"),
        ("agent", "Try tray 2."),
    ]
    assert "Known firmware bug" not in (await visitor.get(made["status_url"])).text
    # The agents see everything, and who submitted it; the first public reply is the response.
    seen = await client.get(url, headers=admin.headers)
    assert [r["body"] for r in seen.json()["items"]] == [
        "Any news? <i>",
        "Try tray 2.",
        "Known firmware bug",
    ]
    assert seen.json()["submitter"] == {"name": "Dana Customer", "email": "dana@customer.example"}
    refreshed = await client.get(f"/api/v1/cases/{case['id']}", headers=admin.headers)
    assert refreshed.json()["first_response_at"] is not None


async def test_the_answer_does_not_say_whether_a_contact_matched(
    services: Services, client: httpx.AsyncClient, visitor: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "quiet")
    stranger = await visitor.post(
        f"/public/{admin.slug}/cases", json=submission(email="nobody@else.example")
    )
    assert stranger.status_code == 201
    case = await case_by_number(client, admin, stranger.json()["case_number"])
    assert case["contact_id"] is None
    assert set(stranger.json()) == {"case_number", "status_url"}


async def test_tokens_slugs_and_guesses_answer_like_unknown_paths(
    services: Services, client: httpx.AsyncClient, visitor: httpx.AsyncClient
) -> None:
    shop = await new_tenant(services, client, "tokshop")
    other = await new_tenant(services, client, "tokother")
    first = await submit(visitor, shop.slug, subject="First case")
    second = await submit(visitor, shop.slug, subject="Second case")
    theirs = await submit(visitor, other.slug, subject="Other tenant's case")
    # Each link shows its own case, nothing of the other.
    one = await visitor.get(first["status_url"])
    assert one.json()["subject"] == "First case" and "Second case" not in one.text
    two = await visitor.get(second["status_url"])
    assert two.json()["subject"] == "Second case" and "First case" not in two.text
    unknown = await unknown_path(visitor)
    token = first["status_url"].rsplit("/", 1)[-1]
    probes = [
        f"/public/{other.slug}/cases/status/{token}",  # a valid token under another slug
        f"/public/no-such-shop-4711/cases/status/{token}",  # an unknown slug
        f"/public/{shop.slug}/cases/status/{secrets.token_urlsafe(32)}",  # a guess
        f"/public/{shop.slug}/cases/status/{token[:-1]}",  # one character short
        f"/public/{shop.slug}/cases/status/{'A' * 500}",
        f"/public/{shop.slug}/cases/status/{theirs['status_url'].rsplit('/', 1)[-1]}",
    ]
    for path in probes:
        assert_like_unknown_path(await visitor.get(path), unknown)
    replies_before = await count_rows(services, shop, "case_replies")
    unknown_post = await unknown_path(visitor, "POST")
    for path in probes:
        got = await visitor.post(f"{path}/replies", json={"body": "let me in"})
        assert got.status_code == 404, got.text
        assert got.json() == unknown_post.json()
    assert await count_rows(services, shop, "case_replies") == replies_before
    assert await count_rows(services, other, "case_replies") == 0
    # Submitting to an unknown slug: the same 404, nothing written anywhere visible.
    assert_like_unknown_path(
        await visitor.post("/public/no-such-shop-4711/cases", json=submission()), unknown_post
    )


async def test_size_limits_write_nothing(
    services: Services, client: httpx.AsyncClient, visitor: httpx.AsyncClient, app: Litestar
) -> None:
    admin = await new_tenant(services, client, "sizes")
    url = f"/public/{admin.slug}/cases"
    cases: list[tuple[Json, int, str]] = [
        (submission(subject="s" * 201), 422, "subject"),
        (submission(description="d" * 10_001), 422, "description"),
        (submission(description="x" * 17_000), 413, "body"),
        (submission(email="not an address"), 422, "email"),
        (submission(subject="a\x00b"), 422, "subject"),
        (submission(phone="+1 555"), 422, "phone"),
        ({"name": "No subject", "email": "a@b.example", "description": "x"}, 422, "subject"),
    ]
    for body, status, field in cases:
        got = await visitor.post(url, json=body)
        assert got.status_code == status, got.text
        assert got.json()["field"] == field, got.text
    listed = await visitor.post(url, json=["not", "an", "object"])
    assert listed.status_code in (400, 422)
    assert await count_rows(services, admin, "cases") == 0
    assert await count_rows(services, admin, "case_status_links") == 0
    # Refused submissions count against the source too (no free probing): a fresh one.
    async with visitor_at(app) as fresh:
        fits = await fresh.post(url, json=submission(subject="s" * 200, description="d" * 10_000))
        assert fits.status_code == 201, fits.text
    made = fits.json()
    too_long = await visitor.post(f"{made['status_url']}/replies", json={"body": "r" * 10_001})
    assert too_long.status_code == 422 and too_long.json()["field"] == "body"
    assert await count_rows(services, admin, "case_replies") == 0


async def test_each_source_is_rate_limited(
    services: Services, client: httpx.AsyncClient, visitor: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "srclimit")
    for _ in range(SUBMIT_PER_SOURCE.free_failures):
        await submit(visitor, admin.slug)
    written = await count_rows(services, admin, "cases")
    limited = await visitor.post(f"/public/{admin.slug}/cases", json=submission())
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["retry-after"]) >= 1
    assert await count_rows(services, admin, "cases") == written == SUBMIT_PER_SOURCE.free_failures
    # Other slugs, even unknown ones, are throttled the same from that source.
    elsewhere = await visitor.post("/public/no-such-shop-4711/cases", json=submission())
    assert elsewhere.status_code == 429


async def test_each_tenant_is_rate_limited(
    services: Services, client: httpx.AsyncClient, app: Litestar
) -> None:
    admin = await new_tenant(services, client, "flood")
    per_source = SUBMIT_PER_SOURCE.free_failures
    sent = 0
    while sent < SUBMIT_PER_TENANT.free_failures:
        async with visitor_at(app, random_address()) as visitor:
            for _ in range(min(per_source, SUBMIT_PER_TENANT.free_failures - sent)):
                await submit(visitor, admin.slug)
                sent += 1
    assert await count_rows(services, admin, "cases") == SUBMIT_PER_TENANT.free_failures
    async with visitor_at(app, random_address()) as fresh:
        limited = await fresh.post(f"/public/{admin.slug}/cases", json=submission())
        assert limited.status_code == 429, limited.text
        assert int(limited.headers["retry-after"]) >= 1
    assert await count_rows(services, admin, "cases") == SUBMIT_PER_TENANT.free_failures
    # Another tenant is not held back by this one's flood.
    calm = await new_tenant(services, client, "calm")
    async with visitor_at(app, random_address()) as fresh:
        await submit(fresh, calm.slug)
