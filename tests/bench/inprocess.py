"""The in-process product the single-purpose benchmarks share: a fresh embedded PostgreSQL,
migrated, the app over ASGI, one tenant whose admin signs in with a password, and that
tenant's read budget and export limits lifted (a benchmark reads far more than a person)."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from backend.app import create_app
from backend.db.embedded import EmbeddedPostgres, EmbeddedUrls
from backend.db.migrate import migrate
from backend.runtime import Services, build_services
from backend.settings import Settings
from backend.tenants.service import create_tenant

PASSWORD = "benchmark-password"
SLUG = "bench"
ADMIN_EMAIL = "admin@bench.example"


@dataclass(frozen=True)
class BenchApp:
    services: Services
    client: httpx.AsyncClient
    admin: dict[str, str]  # the admin's Authorization header
    tenant_id: uuid.UUID
    admin_id: uuid.UUID
    urls: EmbeddedUrls


async def sign_in(client: httpx.AsyncClient, email: str, slug: str = SLUG) -> dict[str, str]:
    signed = await client.post(
        "/auth/sign-in", json={"tenant": slug, "email": email, "password": PASSWORD}
    )
    signed.raise_for_status()
    return {"Authorization": f"Bearer {signed.json()['access_token']}"}


async def lift_read_limits(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """Through the rules API, as a tenant admin would: the defaults would (rightly) throttle a
    benchmark's bulk reads and send its exports for approval."""
    rules = (await client.get("/api/v1/export-rules", headers=admin)).json()
    rules["bulk_read"] = {"rows": 10**12, "cells": 10**15, "window_seconds": 3600}
    rules["roles"]["tenant_admin"] = {
        "max_rows": 10_000_000,
        "approval_threshold": None,
        "daily_rows": 10_000_000,
    }
    saved = await client.put("/api/v1/export-rules", headers=admin, json=rules)
    assert saved.status_code == 200, saved.text


@asynccontextmanager
async def bench_app() -> AsyncIterator[BenchApp]:
    data_dir = Path(tempfile.mkdtemp(prefix="caravan-bench-"))
    os.chmod(data_dir, 0o711)  # noqa: S103 - the server user must traverse it
    pg = EmbeddedPostgres(data_dir)
    urls = await pg.bootstrap(pg.start(), database="bench")
    try:
        await migrate(urls.owner_url, "caravan_app")
        settings = Settings(environment="test", data_dir=data_dir, database_url=urls.app_url)
        services = build_services(settings, urls.app_url)
        transport = httpx.ASGITransport(app=create_app(services))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            created = await create_tenant(
                services.db,
                name="Bench",
                slug=SLUG,
                admin_email=ADMIN_EMAIL,
                admin_password=PASSWORD,
                require_admin_mfa=False,  # the benchmark signs in with a password only
            )
            admin = await sign_in(client, ADMIN_EMAIL)
            await lift_read_limits(client, admin)
            yield BenchApp(services, client, admin, created.tenant_id, created.admin_user_id, urls)
        await services.db.dispose()
    finally:
        pg.stop()
