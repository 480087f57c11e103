"""Knowledge articles over REST: write, read, edit with If-Match (each version kept), delete;
who may read drafts and write which audience (policies/roles.toml); other tenants' articles
are the same 404 as missing ones."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.api.knowledge_helpers import write_article
from tests.conftest import TenantUser, new_tenant
from tests.security.policy_helpers import assert_problem, create_role, user_with_roles

ARTICLES = "/api/v1/knowledge/articles"


@pytest.fixture(scope="module")
async def admin(services: Services, client: httpx.AsyncClient) -> TenantUser:
    return await new_tenant(services, client, "kb")


async def _edit(
    client: httpx.AsyncClient, user: TenantUser, article: dict[str, Any], **fields: Any
) -> httpx.Response:
    return await client.patch(
        f"{ARTICLES}/{article['id']}",
        json=fields,
        headers={**user.headers, "If-Match": f'"{article["version"]}"'},
    )


async def test_every_edit_keeps_the_previous_version(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    markdown = "# Steps\n\n1. Open *Settings*\n2. <script>alert(1)</script> stays text"
    first = await write_article(client, admin, title="Printer offline", body=markdown)
    assert first["version"] == 1 and first["body"] == markdown  # stored as sent, not rendered
    assert first["status"] == "published" and first["tags"] == []
    edited = await _edit(client, admin, first, title="Printer shows offline", tags=["Printer"])
    assert edited.status_code == 200, edited.text
    second = edited.json()
    assert (second["version"], second["tags"], edited.headers["etag"]) == (2, ["printer"], '"2"')
    third = (await _edit(client, admin, second, status="draft")).json()
    got = await client.get(f"{ARTICLES}/{first['id']}/versions", headers=admin.headers)
    assert got.status_code == 200, got.text
    kept = got.json()["items"]
    assert [(v["version"], v["title"], v["status"]) for v in kept] == [
        (3, "Printer shows offline", "draft"),
        (2, "Printer shows offline", "published"),
        (1, "Printer offline", "published"),
    ]
    assert kept[2]["body"] == markdown and third["version"] == 3
    stale = await _edit(client, admin, first, title="Lost update")
    assert_problem(stale, 412, field="version")
    unguarded = await client.patch(
        f"{ARTICLES}/{first['id']}", json={"title": "x"}, headers=admin.headers
    )
    assert_problem(unguarded, 428, field="If-Match")


async def test_bad_fields_are_refused_by_name(client: httpx.AsyncClient, admin: TenantUser) -> None:
    for fields, field in (
        ({"title": "T", "body": "B", "language": "en", "status": "live"}, "status"),
        ({"title": "T", "body": "B", "language": "en", "audience": "all"}, "audience"),
        ({"title": "T", "body": "B", "language": "english"}, "language"),
        ({"title": " ", "body": "B", "language": "en"}, "title"),
        ({"title": "x" * 201, "body": "B", "language": "en"}, "title"),
        ({"body": "B", "language": "en"}, "title"),
    ):
        got = await client.post(ARTICLES, json=fields, headers=admin.headers)
        assert_problem(got, 422, field=field)
    listed = await client.get(ARTICLES, headers=admin.headers)
    assert all(a["title"] != "T" for a in listed.json()["items"])  # nothing half-written


async def test_roles_read_published_and_write_only_their_audiences(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "kb-roles")
    agent = await user_with_roles(services, client, admin, "agent", ["support_agent"])
    marketer = await user_with_roles(services, client, admin, "mkt", ["marketing"])
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    manager = await user_with_roles(services, client, admin, "mgr", ["sales_manager"])

    internal = await write_article(client, agent, title="Refund approval limits")
    draft = await write_article(client, agent, title="New returns policy", status="draft")
    public = await write_article(client, marketer, title="Opening hours", audience="public")
    refused = await client.post(
        ARTICLES,
        json={"title": "Internal memo", "body": "B", "language": "en", "audience": "internal"},
        headers=marketer.headers,
    )
    assert_problem(refused, 403, field="audience")
    for user in (rep, manager):
        got = await client.post(
            ARTICLES, json={"title": "T", "body": "B", "language": "en"}, headers=user.headers
        )
        assert_problem(got, 403)
        # Everyone reads published internal articles; drafts only their editors.
        assert (await client.get(f"{ARTICLES}/{internal['id']}", headers=user.headers)).is_success
        hidden = await client.get(f"{ARTICLES}/{draft['id']}", headers=user.headers)
        assert_problem(hidden, 404)
        assert_problem(await _edit(client, user, internal, title="x"), 403)
    assert (await client.get(f"{ARTICLES}/{draft['id']}", headers=agent.headers)).is_success
    # Marketing edits the public article, not the internal one, nor moves one to internal.
    assert (await _edit(client, marketer, public, title="Opening hours (winter)")).is_success
    assert_problem(await _edit(client, marketer, internal, title="x"), 403)
    moved = await client.get(f"{ARTICLES}/{public['id']}", headers=marketer.headers)
    assert_problem(await _edit(client, marketer, moved.json(), audience="internal"), 403)
    # Support agents edit both audiences; deleting is the tenant admin's.
    assert (await _edit(client, agent, moved.json(), body="Mon-Fri 8-18")).is_success
    deleted = await client.delete(f"{ARTICLES}/{draft['id']}", headers=agent.headers)
    assert_problem(deleted, 403)
    gone = await client.delete(f"{ARTICLES}/{draft['id']}", headers=admin.headers)
    assert gone.status_code == 204, gone.text
    assert_problem(await client.get(f"{ARTICLES}/{draft['id']}", headers=admin.headers), 404)


async def test_another_tenants_article_is_not_found(
    services: Services, client: httpx.AsyncClient, admin: TenantUser
) -> None:
    article = await write_article(client, admin, title="Tenant secret")
    other = await new_tenant(services, client, "kb-other")
    for path in (f"{ARTICLES}/{article['id']}", f"{ARTICLES}/{article['id']}/versions"):
        theirs = await client.get(path, headers=other.headers)
        missing = await client.get(
            path.replace(article["id"], str(uuid.uuid4())), headers=other.headers
        )
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["detail"] == missing.json()["detail"]
    assert_problem(await _edit(client, other, article, title="x"), 404)
    assert_problem(await client.get(f"{ARTICLES}/not-a-uuid", headers=other.headers), 404)
    unchanged = await client.get(f"{ARTICLES}/{article['id']}", headers=admin.headers)
    assert unchanged.json()["version"] == 1


async def test_a_custom_role_may_be_granted_article_audiences(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "kb-custom")
    await create_role(
        client,
        admin,
        "faq_writer",
        [("allow", "article", "read"), ("allow", "article.public", "*")],
    )
    writer = await user_with_roles(services, client, admin, "faq", ["faq_writer"])
    public = await write_article(client, writer, title="Shipping costs", audience="public")
    assert public["audience"] == "public"
    internal = await client.post(
        ARTICLES, json={"title": "T", "body": "B", "language": "en"}, headers=writer.headers
    )
    assert_problem(internal, 403, field="audience")
    unknown = await client.post(
        "/api/v1/roles",
        json={
            "name": "faq_bad",
            "rules": [{"effect": "allow", "object": "article.secret", "action": "read"}],
        },
        headers=admin.headers,
    )
    assert_problem(unknown, 422, code="unknown_field")
