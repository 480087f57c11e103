"""Driving the OAuth server as an app and a user would: register an app, open the authorize page,
fill in its forms (no browser: the HTML forms are parsed and posted), follow the redirect,
exchange the code."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from backend.app import create_app
from backend.runtime import Services
from tests.conftest import PASSWORD, TenantUser

Json = dict[str, Any]
NATIVE_REDIRECT = "com.example.caravan-app:/oauth/callback"
WEB_REDIRECT = "https://app.example.com/callback"


def source_client(services: Services, ip: str) -> httpx.AsyncClient:
    """An HTTP client whose requests come from `ip` (the brute-force backoff counts per source)."""
    transport = httpx.ASGITransport(app=create_app(services), client=(ip, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).decode().rstrip("="))


@dataclass(frozen=True)
class App:
    id: str
    client_id: str
    secret: str | None
    redirect_uri: str
    body: Json

    def basic(self) -> dict[str, str]:
        assert self.secret is not None
        raw = f"{self.client_id}:{self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def register(
    client: httpx.AsyncClient,
    admin: TenantUser,
    *,
    name: str = "Field App",
    client_type: str = "public",
    redirect_uris: list[str] | None = None,
    grant_types: list[str] | None = None,
    scopes: list[str] | None = None,
    role: str | None = None,
) -> App:
    body: Json = {
        "name": name,
        "client_type": client_type,
        "redirect_uris": [NATIVE_REDIRECT] if redirect_uris is None else redirect_uris,
        "grant_types": grant_types or ["authorization_code", "refresh_token"],
        "allowed_scopes": scopes or ["openid", "profile", "email", "crm.read"],
    }
    if role is not None:
        body["role"] = role
    response = await client.post("/api/v1/oauth-clients", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    uris = body["redirect_uris"]
    return App(
        id=created["id"],
        client_id=created["client_id"],
        secret=created.get("client_secret"),
        redirect_uri=uris[0] if uris else "",
        body=created,
    )


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.buttons: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((values.get("action", ""), {}))
        elif tag == "input" and self.forms and values.get("type") == "hidden":
            self.forms[-1][1][values["name"]] = values.get("value", "")
        elif tag == "button" and values.get("name"):
            self.buttons.append((values["name"], values.get("value", "")))


def form_of(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """The page's form: where it posts and its hidden fields."""
    assert response.headers["content-type"].startswith("text/html"), response.text
    parser = _Forms()
    parser.feed(response.text)
    assert len(parser.forms) == 1, response.text
    return parser.forms[0]


async def submit(
    client: httpx.AsyncClient, page: httpx.Response, fields: dict[str, str]
) -> httpx.Response:
    action, hidden = form_of(page)
    return await client.post(action, data={**hidden, **fields})


def authorize_params(app: App, pkce: Pkce | None, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": app.redirect_uri,
        "scope": "openid crm.read",
        "state": secrets.token_urlsafe(8),
    }
    if pkce is not None:
        params.update(code_challenge=pkce.challenge, code_challenge_method="S256")
    params.update(extra)
    return {k: v for k, v in params.items() if v != ""}


async def open_authorize(client: httpx.AsyncClient, params: dict[str, str]) -> httpx.Response:
    return await client.get(f"/oauth/authorize?{urlencode(params)}")


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Authorized:
    code: str
    state: str
    location: str
    pages: list[httpx.Response] = field(default_factory=list)


async def authorize_as(
    client: httpx.AsyncClient,
    app: App,
    user: TenantUser,
    pkce: Pkce,
    **extra: str,
) -> Authorized:
    """GET /oauth/authorize -> sign-in form -> consent -> redirect with a code."""
    params = authorize_params(app, pkce, **extra)
    page = await open_authorize(client, params)
    assert page.status_code == 200, page.text
    pages = [page]
    page = await submit(client, page, {"email": user.email, "password": PASSWORD})
    pages.append(page)
    assert page.status_code == 200 and "Allow access?" in page.text, page.text
    redirect = await client.post(form_of(page)[0], data={**form_of(page)[1], "decision": "allow"})
    pages.append(redirect)
    query = redirect_query(redirect)
    assert redirect.headers["location"].startswith(app.redirect_uri + "?"), redirect.headers
    assert query["state"] == params["state"]
    return Authorized(query["code"], query["state"], redirect.headers["location"], pages)


async def exchange(
    client: httpx.AsyncClient,
    app: App,
    code: str,
    verifier: str | None,
    *,
    redirect_uri: str | None = None,
    **extra: str,
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": app.redirect_uri if redirect_uri is None else redirect_uri,
        **extra,
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    headers: dict[str, str] = {}
    if app.secret is not None:
        headers = app.basic()
    else:
        data["client_id"] = app.client_id
    return await client.post("/oauth/token", data=data, headers=headers)


async def token_for(client: httpx.AsyncClient, app: App, user: TenantUser, **extra: str) -> Json:
    pkce = Pkce.new()
    done = await authorize_as(client, app, user, pkce, **extra)
    response = await exchange(client, app, done.code, pkce.verifier)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def refresh(client: httpx.AsyncClient, app: App, token: str, **extra: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token, **extra}
    headers: dict[str, str] = {}
    if app.secret is not None:
        headers = app.basic()
    else:
        data["client_id"] = app.client_id
    return await client.post("/oauth/token", data=data, headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
