"""`caravan demo` run twice, and `caravan demo --reset`, as a user runs them (subprocesses)."""

from __future__ import annotations

import uuid

import httpx

from tests.cli.test_cli import _env, run
from tests.conftest import PASSWORD, Cluster

DEMO_EMAIL = "admin@demo.example"


async def _signs_in(client: httpx.AsyncClient, slug: str, email: str, password: str) -> int:
    response = await client.post(
        "/auth/sign-in", json={"tenant": slug, "email": email, "password": password}
    )
    return response.status_code


async def _contacts(client: httpx.AsyncClient, slug: str, password: str) -> int:
    signed_in = await client.post(
        "/auth/sign-in", json={"tenant": slug, "email": DEMO_EMAIL, "password": password}
    )
    token = signed_in.json()["access_token"]
    page = await client.get(
        "/api/v1/contacts?limit=200", headers={"Authorization": f"Bearer {token}"}
    )
    assert page.status_code == 200, page.text
    return len(page.json()["items"])


async def test_demo_twice_keeps_the_tenant_and_reset_starts_over(
    cluster: Cluster, client: httpx.AsyncClient
) -> None:
    slug = f"demo-{uuid.uuid4().hex[:8]}"
    demo = ["demo", "--slug", slug, "--accounts", "2"]
    public = _env(cluster, CARAVAN_PUBLIC_URL="https://crm.example.test")
    first = run([*demo, "--password", "first password 1"], public)
    assert first.returncode == 0, first.stderr
    assert f"Demo tenant '{slug}': 2 accounts" in first.stdout
    # The sign-in hint names the configured public URL.
    assert "curl -s -X POST https://crm.example.test/auth/sign-in" in first.stdout
    seeded = await _contacts(client, slug, "first password 1")
    assert seeded >= 2

    again = run([*demo, "--password", "second password 2"], _env(cluster))
    assert again.returncode == 0, again.stderr
    assert f"The demo tenant '{slug}' exists already" in again.stdout
    assert f"caravan demo --reset --slug {slug}" in again.stdout
    assert "duplicate" not in again.stdout + again.stderr
    # Nothing changed: the first password still signs in, the second does not.
    assert await _signs_in(client, slug, DEMO_EMAIL, "first password 1") == 200
    assert await _signs_in(client, slug, DEMO_EMAIL, "second password 2") == 401

    reset = run([*demo, "--password", "second password 2", "--reset"], _env(cluster))
    assert reset.returncode == 0, reset.stderr
    assert f"Demo tenant '{slug}': 2 accounts" in reset.stdout
    assert await _signs_in(client, slug, DEMO_EMAIL, "first password 1") == 401
    # A fresh tenant: the same seeded data once, not the old rows plus new ones.
    assert await _contacts(client, slug, "second password 2") == seeded


async def test_reset_of_a_new_slug_just_seeds(cluster: Cluster, client: httpx.AsyncClient) -> None:
    slug = f"demo-{uuid.uuid4().hex[:8]}"
    made = run(
        ["demo", "--slug", slug, "--accounts", "1", "--password", PASSWORD, "--reset"],
        _env(cluster, CARAVAN_PORT="8123"),
    )
    assert made.returncode == 0, made.stderr
    # No public URL configured: where `caravan serve` listens with the same settings.
    assert "curl -s -X POST http://127.0.0.1:8123/auth/sign-in" in made.stdout
    assert await _signs_in(client, slug, DEMO_EMAIL, PASSWORD) == 200


async def test_reset_never_drops_a_tenant_that_is_not_the_demo(
    cluster: Cluster, client: httpx.AsyncClient
) -> None:
    slug = f"real-{uuid.uuid4().hex[:8]}"
    email = f"admin@{slug}.example"
    made = run(
        [
            "tenant",
            "create",
            "--name",
            "Real Customer GmbH",
            "--slug",
            slug,
            "--admin-email",
            email,
            "--admin-password",
            PASSWORD,
            "--no-admin-mfa",
        ],
        _env(cluster),
    )
    assert made.returncode == 0, made.stderr
    for extra in ([], ["--reset"]):
        refused = run(["demo", "--slug", slug, "--accounts", "1", *extra], _env(cluster))
        assert refused.returncode == 2, refused.stdout
        assert "not_a_demo_tenant (slug)" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert await _signs_in(client, slug, email, PASSWORD) == 200
