"""Web self-service search, unauthenticated: only the published public articles of the tenant
named by the slug, and only their public fields; an unknown slug answers exactly like an
unknown path; long queries 422; per-source rate limit 429 with Retry-After."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import httpx
import pytest

from backend.app import create_app
from backend.knowledge.public import PUBLIC_SEARCH
from backend.runtime import Services
from tests.api.knowledge_helpers import write_article
from tests.conftest import TenantUser, new_tenant


@pytest.fixture(scope="module")
async def shop(services: Services, client: httpx.AsyncClient) -> TenantUser:
    admin = await new_tenant(services, client, "shop")
    public = {"audience": "public", "tags": ["returns"]}
    await write_article(client, admin, title="Returning a parcel", body="Send it back.", **public)
    await write_article(client, admin, title="Parcel returns draft", status="draft", **public)
    await write_article(client, admin, title="Parcel returns: fraud checks", audience="internal")
    other = await new_tenant(services, client, "othershop")
    await write_article(client, other, title="Parcel returns elsewhere", **public)
    return admin


@pytest.fixture
async def visitor(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A client at its own source address, so its searches count apart from other tests'."""
    address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    transport = httpx.ASGITransport(app=create_app(services), client=(address, 4321))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_only_published_public_articles_of_that_tenant(
    visitor: httpx.AsyncClient, shop: TenantUser
) -> None:
    got = await visitor.get(f"/public/{shop.slug}/articles", params={"q": "parcel returns"})
    assert got.status_code == 200, got.text
    items = got.json()["items"]
    assert [a["title"] for a in items] == ["Returning a parcel"]
    assert set(items[0]) == {"id", "title", "body", "tags", "language"}
    assert items[0]["tags"] == ["returns"]
    # The internal and draft ones are not found even by their exact titles.
    for title in ("Parcel returns draft", "Parcel returns: fraud checks", "elsewhere"):
        probe = await visitor.get(f"/public/{shop.slug}/articles", params={"q": title})
        assert all(a["title"] == "Returning a parcel" for a in probe.json()["items"])
    empty = await visitor.get(f"/public/{shop.slug}/articles")
    assert empty.json() == {"items": []}


async def test_an_unknown_slug_is_an_unknown_path(visitor: httpx.AsyncClient) -> None:
    slug = await visitor.get("/public/no-such-shop-4711/articles", params={"q": "parcel"})
    path = await visitor.get("/public/no-such-shop-4711/nothing-here")
    assert slug.status_code == path.status_code == 404
    assert slug.json() == path.json()
    assert slug.headers["content-type"] == path.headers["content-type"]


async def test_long_queries_are_refused(visitor: httpx.AsyncClient, shop: TenantUser) -> None:
    got = await visitor.get(f"/public/{shop.slug}/articles", params={"q": "x" * 201})
    assert got.status_code == 422, got.text
    assert got.json()["field"] == "q"
    fits = await visitor.get(f"/public/{shop.slug}/articles", params={"q": "x" * 200})
    assert fits.status_code == 200


async def test_each_source_is_rate_limited(visitor: httpx.AsyncClient, shop: TenantUser) -> None:
    url = f"/public/{shop.slug}/articles"
    for _ in range(PUBLIC_SEARCH.free_failures):
        assert (await visitor.get(url, params={"q": "parcel"})).status_code == 200
    limited = await visitor.get(url, params={"q": "parcel"})
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["retry-after"]) >= 1
    # Unknown slugs are throttled the same way (no probing for tenants past the limit).
    assert (await visitor.get("/public/no-such-shop/articles")).status_code == 429
