"""HTTP hygiene on every answer (backend/api/hygiene.py, backend/api/rest/swagger.py,
backend/api/rest/problems.py): no caching of authenticated answers, nosniff, no referrer,
HSTS over HTTPS, a CSP that allows only 'self' on HTML pages, a Swagger page that loads
nothing from elsewhere, and RFC 6750 challenges on 401 and 403."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import httpx
import pytest

from backend.app import create_app
from backend.runtime import Services, build_services
from tests.conftest import Cluster, TenantUser, make_settings, new_user

CONTACTS = "/api/v1/contacts"


def assert_always(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "server" not in response.headers


def assert_not_stored(response: httpx.Response) -> None:
    assert "no-store" in response.headers["cache-control"]
    vary = [v.strip().lower() for v in response.headers["vary"].split(",")]
    assert "authorization" in vary


# -- every answer ---------------------------------------------------------------------------------
async def test_an_authenticated_answer_is_not_stored(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    response = await client.get(CONTACTS, headers=tenant_a.headers)
    assert response.status_code == 200
    assert_always(response)
    assert_not_stored(response)
    assert response.headers["etag"]  # a client may still revalidate what it kept itself
    again = await client.get(
        CONTACTS, headers={**tenant_a.headers, "If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304
    assert_not_stored(again)


async def test_a_compressed_authenticated_answer_keeps_both_varies(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    response = await client.get(
        "/schema/openapi.json", headers={**tenant_a.headers, "Accept-Encoding": "gzip"}
    )
    assert response.headers["content-encoding"] == "gzip"
    vary = {v.strip().lower() for v in response.headers["vary"].split(",")}
    assert {"accept-encoding", "authorization"} <= vary
    assert_not_stored(response)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", CONTACTS), ("GET", "/api/v1/audit-events"), ("GET", "/api/v1/me/sessions")],
)
async def test_every_authenticated_route_says_no_store(
    client: httpx.AsyncClient, tenant_a: TenantUser, method: str, path: str
) -> None:
    body = {"last_name": "Headers"} if method == "POST" else None
    response = await client.request(method, path, json=body, headers=tenant_a.headers)
    assert response.status_code < 300, response.text
    assert_always(response)
    assert_not_stored(response)


async def test_refusals_get_the_headers_too(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    missing = await client.get("/api/v1/no-such-things", headers=tenant_a.headers)
    assert missing.status_code == 404
    assert_always(missing)
    assert_not_stored(missing)
    unauthenticated = await client.get(CONTACTS, headers={"Authorization": "Bearer nope"})
    assert unauthenticated.status_code == 401
    assert_always(unauthenticated)
    assert_not_stored(unauthenticated)
    refused = await client.get(CONTACTS, params={"q": "\x00"}, headers=tenant_a.headers)
    assert refused.status_code == 400
    assert_always(refused)
    assert_not_stored(refused)


async def test_public_answers_get_the_headers_that_apply_to_all(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/health", "/.well-known/jwks.json", "/.well-known/openid-configuration"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert_always(response)
        assert "vary" not in response.headers or "authorization" not in response.headers["vary"]
    jwks = await client.get("/.well-known/jwks.json")
    assert jwks.headers["cache-control"] == "max-age=60"  # public keys may be cached


async def test_no_hsts_over_plain_http(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in response.headers


async def test_hsts_over_https(services: Services) -> None:
    transport = httpx.ASGITransport(app=create_app(services))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        response = await http.get("/health")
    assert response.headers["strict-transport-security"].startswith("max-age=")
    assert int(response.headers["strict-transport-security"].split("=")[1]) >= 15_552_000


@pytest.fixture
async def behind_proxy(cluster: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    built = build_services(make_settings(cluster, trust_proxy=True), cluster.urls.app_url)
    transport = httpx.ASGITransport(app=create_app(built))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    await built.db.dispose()


async def test_hsts_behind_a_trusted_proxy_that_says_https(
    behind_proxy: httpx.AsyncClient,
) -> None:
    said = await behind_proxy.get("/health", headers={"X-Forwarded-Proto": "https, http"})
    assert said.headers["strict-transport-security"].startswith("max-age=")
    plain = await behind_proxy.get("/health", headers={"X-Forwarded-Proto": "http"})
    assert "strict-transport-security" not in plain.headers
    silent = await behind_proxy.get("/health")
    assert "strict-transport-security" not in silent.headers


# -- HTML pages -----------------------------------------------------------------------------------
def csp(response: httpx.Response) -> dict[str, str]:
    directives = {}
    for part in response.headers["content-security-policy"].split(";"):
        name, _, value = part.strip().partition(" ")
        directives[name] = value
    return directives


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.inline_styles = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            if values.get("src"):
                self.urls.append(str(values["src"]))
            else:
                self.inline_scripts += 1
        elif tag == "link" and values.get("href"):
            self.urls.append(str(values["href"]))
        elif tag == "style":
            self.inline_styles += 1
        if "style" in values:
            self.inline_styles += 1


@pytest.mark.parametrize("path", ["/schema", "/schema/swagger"])
async def test_the_swagger_page_loads_only_its_own_assets(
    client: httpx.AsyncClient, path: str
) -> None:
    page = await client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert_always(page)
    policy = csp(page)
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert "unsafe" not in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assets = _Assets()
    assets.feed(page.text)
    assert (assets.inline_scripts, assets.inline_styles) == (0, 0)
    assert len(assets.urls) >= 4
    expected = {
        ".js": "text/javascript",
        ".css": "text/css",
        ".png": "image/png",
    }
    for url in assets.urls:
        assert url.startswith("/schema/"), url  # same origin: no CDN, no other host
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = re.search(r"\.[a-z]+$", url)
        assert suffix is not None
        assert asset.headers["content-type"].startswith(expected[suffix.group()]), url
        assert_always(asset)
    assert "cdn" not in page.text and "http" not in page.text
    # The page's document comes from this server too.
    spec_url = re.search(r'data-url="([^"]+)"', page.text)
    assert spec_url is not None and spec_url.group(1) == "/schema/openapi.json"
    assert (await client.get(spec_url.group(1))).status_code == 200


async def test_swagger_serves_only_its_own_files(client: httpx.AsyncClient) -> None:
    for name in ("..%2F..%2F__init__.py", "index.html", "swagger-ui.js.map", "nope.js"):
        response = await client.get(f"/schema/swagger-ui/{name}")
        assert response.status_code == 404, name


async def test_the_swagger_oauth_redirect_page_has_no_inline_script(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/schema/oauth2-redirect.html")
    assert page.status_code == 200
    assets = _Assets()
    assets.feed(page.text)
    assert assets.inline_scripts == 0
    [script] = assets.urls
    assert (await client.get(f"/schema/{script}")).status_code == 200
    assert csp(page)["script-src"] == "'self'"


async def test_the_oauth_pages_keep_their_own_strict_policy(client: httpx.AsyncClient) -> None:
    page = await client.get("/oauth/authorize")
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert_always(page)
    policy = csp(page)
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"


# -- RFC 6750 challenges --------------------------------------------------------------------------
async def test_401_without_a_token_is_a_bare_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get(CONTACTS)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("token", ["not-a-token", "a.b.c"])
async def test_401_with_a_refused_token_says_invalid_token(
    client: httpx.AsyncClient, token: str
) -> None:
    response = await client.get(CONTACTS, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_403_says_insufficient_scope(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    rep = await new_user(services, client, tenant_a, f"headers-{uuid.uuid4().hex[:6]}")
    response = await client.get("/api/v1/audit-events", headers=rep.headers)
    assert response.status_code == 403, response.text
    assert response.headers["www-authenticate"] == 'Bearer error="insufficient_scope"'
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_failed_sign_in_is_not_a_token_error(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    response = await client.post(
        "/auth/sign-in",
        json={"tenant": tenant_a.slug, "email": tenant_a.email, "password": "wrong one"},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
