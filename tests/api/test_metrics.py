"""/metrics: Prometheus text, by route template, loopback-only without a token, token-only with
one, and nobody behind a trusted proxy without a token."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from backend.app import create_app
from backend.runtime import Services
from tests.conftest import TenantUser, new_tenant


@asynccontextmanager
async def _client(
    services: Services,
    address: str = "127.0.0.1",
    metrics_token: str | None = None,
    trust_proxy: bool = False,
) -> AsyncIterator[httpx.AsyncClient]:
    settings = dataclasses.replace(
        services.settings, metrics_token=metrics_token, trust_proxy=trust_proxy
    )
    app = create_app(dataclasses.replace(services, settings=settings))
    transport = httpx.ASGITransport(app=app, client=(address, 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _read_a_contact(client: httpx.AsyncClient, admin: TenantUser) -> str:
    made = await client.post(
        "/api/v1/contacts", headers=admin.headers, json={"last_name": "Metric"}
    )
    assert made.status_code == 201, made.text
    record_id: str = made.json()["id"]
    got = await client.get(f"/api/v1/contacts/{record_id}", headers=admin.headers)
    assert got.status_code == 200
    return record_id


async def test_requests_are_counted_by_route_template_never_by_raw_path(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "metrics")
    record_id = await _read_a_contact(client, admin)
    scraped = await client.get("/metrics")
    assert scraped.status_code == 200, scraped.text
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert record_id not in text, "a raw path (with an id) became a label"
    count = re.search(
        r'caravan_requests_total\{[^}]*method="GET",path="/api/v1/contacts/\{[^"]+\}"'
        r'[^}]*status_code="200"[^}]*\} ([0-9.]+)',
        text,
    )
    assert count is not None and float(count.group(1)) >= 1, text[:2000]
    assert "caravan_request_duration_seconds_bucket" in text
    assert re.search(r"^caravan_db_pool_connections_open [0-9.]+", text, re.M)
    assert "process_resident_memory_bytes" in text


async def test_without_a_token_only_loopback_callers_may_scrape(services: Services) -> None:
    async with _client(services, address="203.0.113.7") as remote:
        refused = await remote.get("/metrics")
    assert refused.status_code == 403
    assert refused.json()["code"] == "metrics_forbidden"
    async with _client(services, address="::1") as local:
        assert (await local.get("/metrics")).status_code == 200


async def test_with_a_token_every_caller_needs_it(services: Services) -> None:
    async with _client(services, metrics_token="scrape-secret-1") as local:
        assert (await local.get("/metrics")).status_code == 401
        wrong = await local.get("/metrics", headers={"authorization": "Bearer scrape-secret-2"})
        assert wrong.status_code == 401 and wrong.json()["code"] == "metrics_token"
        right = await local.get("/metrics", headers={"authorization": "Bearer scrape-secret-1"})
        assert right.status_code == 200 and "caravan_requests_total" in right.text


async def test_behind_a_trusted_proxy_a_token_is_required(services: Services) -> None:
    async with _client(services, trust_proxy=True) as proxied:
        refused = await proxied.get("/metrics")
    assert refused.status_code == 403 and refused.json()["code"] == "metrics_forbidden"
