"""Two real `caravan serve` processes, A and B, on one database behave as one service.

Each check changes something through A (or another process) and, as soon as that answer is
back, asks B: B must already act on the change. Policy versions and revocations reach B by
LISTEN/NOTIFY (with polling behind them); signing keys are reloaded on the first token naming
an unknown key; everything else (persisted queries, sign-in throttle, read budget,
idempotency keys) lives in PostgreSQL. The whole module runs twice: A and B connected
directly, and both through PgBouncer in transaction mode.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest

from backend.api.gql.persisted import sha256_hex
from backend.context import Principal
from backend.runtime import Services
from tests.bench.servers import Server, wait_ready
from tests.conftest import PASSWORD, Cluster, TenantUser, new_tenant
from tests.exports.helpers import set_rules
from tests.reliability import pgbouncer, processes
from tests.reliability.processes import superuser
from tests.security.policy_helpers import create_role, role_ids, user_with_roles

pytestmark = pytest.mark.slow


@dataclass
class Pair:
    a: httpx.AsyncClient
    b: httpx.AsyncClient


@pytest.fixture(scope="module", params=["direct", "pgbouncer"])
async def pair(request: pytest.FixtureRequest, cluster: Cluster) -> AsyncIterator[Pair]:
    """A and B on the database directly, or both through PgBouncer in transaction mode
    (listening on a direct connection, as an operator would set them up)."""
    with ExitStack() as stack:
        url, env = cluster.urls.app_url, {}
        if request.param == "pgbouncer":
            url = stack.enter_context(pgbouncer.bouncer(cluster))
            env = {"CARAVAN_DB_PGBOUNCER": "1", "CARAVAN_LISTEN_DATABASE_URL": cluster.urls.app_url}
        started: list[Server] = []
        try:
            for name in ("two-a", "two-b"):
                started.append(processes.launch(name, url, cluster.data_dir, env))
            servers = [wait_ready(server, "/health") for server in started]
            async with processes.client(servers[0]) as a, processes.client(servers[1]) as b:
                yield Pair(a, b)
        finally:
            for server in started:
                server.stop()


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


async def _email_seen(http: httpx.AsyncClient, user: TenantUser, contact: str) -> object:
    response = await http.get(f"/api/v1/contacts/{contact}", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json().get("email")


async def _rep_with_contact(
    services: Services, client: httpx.AsyncClient, pair: Pair, label: str
) -> tuple[TenantUser, TenantUser, str]:
    admin = await new_tenant(services, client, label)
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    made = await pair.b.post(
        "/api/v1/contacts",
        json={"last_name": "Lovelace", "email": "ada@two.example"},
        headers=rep.headers,
    )
    assert made.status_code == 201, made.text
    contact = str(made.json()["id"])
    # B has this tenant's policy cached (and its version remembered) before the change.
    assert await _email_seen(pair.b, rep, contact) == "ada@two.example"
    return admin, rep, contact


async def test_a_rule_added_on_a_is_enforced_on_b_at_once(
    services: Services, client: httpx.AsyncClient, pair: Pair
) -> None:
    admin, rep, contact = await _rep_with_contact(services, client, pair, "two-rule")
    salesperson = (await role_ids(pair.a, admin))["salesperson"]
    denied = await pair.a.post(
        f"/api/v1/roles/{salesperson}/rules",
        json={"effect": "deny", "object": "contact.email", "action": "read"},
        headers=admin.headers,
    )
    assert denied.status_code in (200, 201), denied.text
    assert await _email_seen(pair.b, rep, contact) is None


async def test_a_role_given_on_a_is_enforced_on_b_at_once(
    services: Services, client: httpx.AsyncClient, pair: Pair
) -> None:
    admin, rep, contact = await _rep_with_contact(services, client, pair, "two-role")
    hide = await create_role(pair.a, admin, "hide_email", [("deny", "contact.email", "read")])
    salesperson = (await role_ids(pair.a, admin))["salesperson"]
    given = await pair.a.put(
        f"/api/v1/users/{rep.user_id}/roles",
        json={"role_ids": [salesperson, hide]},
        headers=admin.headers,
    )
    assert given.status_code == 200, given.text
    assert await _email_seen(pair.b, rep, contact) is None
    # And taken away again: the field is back on B at once.
    back = await pair.a.put(
        f"/api/v1/users/{rep.user_id}/roles",
        json={"role_ids": [salesperson]},
        headers=admin.headers,
    )
    assert back.status_code == 200, back.text
    assert await _email_seen(pair.b, rep, contact) == "ada@two.example"


async def test_a_token_signed_by_a_key_rotated_elsewhere_verifies_on_b(
    services: Services, client: httpx.AsyncClient, pair: Pair
) -> None:
    me = await new_tenant(services, client, "two-keys")
    assert (await pair.b.get("/api/v1/contacts", headers=me.headers)).status_code == 200
    # This test process is a third one: it rotates at once (as `caravan keys rotate --now`).
    new_key, _ = await services.keys.rotate(now=True)
    token = services.tokens.issue(Principal(user_id=me.user_id, tenant_id=me.tenant_id))
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"] == new_key.kid
    headers = {"Authorization": f"Bearer {token}"}
    assert (await pair.b.get("/api/v1/contacts", headers=headers)).status_code == 200
    # A too; after which its JWKS publishes the key (until then it may lag by the cache life).
    assert (await pair.a.get("/api/v1/contacts", headers=headers)).status_code == 200
    jwks = (await pair.a.get("/.well-known/jwks.json")).json()["keys"]
    assert new_key.kid in {k["kid"] for k in jwks}
    # A forged kid is still refused.
    forged = token.replace(token.split(".")[2], token.split(".")[2][::-1])
    bad = await pair.b.get("/api/v1/contacts", headers={"Authorization": f"Bearer {forged}"})
    assert bad.status_code == 401


async def test_a_session_signed_out_on_a_is_refused_on_b(
    services: Services, client: httpx.AsyncClient, pair: Pair
) -> None:
    me = await new_tenant(services, client, "two-out")
    assert (await pair.b.get("/api/v1/contacts", headers=me.headers)).status_code == 200
    sid = _claims(me.token)["sid"]
    out = await pair.a.delete(f"/api/v1/me/sessions/{sid}", headers=me.headers)
    assert out.status_code == 204, out.text
    assert (await pair.b.get("/api/v1/contacts", headers=me.headers)).status_code == 401


async def test_a_user_deactivated_on_a_is_refused_on_b(
    services: Services, client: httpx.AsyncClient, pair: Pair
) -> None:
    admin = await new_tenant(services, client, "two-off")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    assert (await pair.b.get("/api/v1/contacts", headers=rep.headers)).status_code == 200
    off = await pair.a.post(f"/api/v1/users/{rep.user_id}/deactivate", headers=admin.headers)
    assert off.status_code == 200, off.text
    assert (await pair.b.get("/api/v1/contacts", headers=rep.headers)).status_code == 401
    again = await pair.b.post(
        "/auth/sign-in", json={"tenant": rep.slug, "email": rep.email, "password": PASSWORD}
    )
    assert again.status_code in (401, 403), again.text


async def test_a_query_persisted_through_a_runs_by_hash_on_b(
    services: Services, client: httpx.AsyncClient, pair: Pair
) -> None:
    me = await new_tenant(services, client, "two-apq")
    other = await new_tenant(services, client, "two-apq-other")
    document = (
        f"query Two{uuid.uuid4().hex[:8]} {{ contacts(first: 1) {{ edges {{ node {{ id }} }} }} }}"
    )
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(document)}}
    by_hash = {"extensions": extensions}
    unknown = await pair.b.post("/graphql", json=by_hash, headers=me.headers)
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = await pair.a.post(
        "/graphql", json={"query": document, "extensions": extensions}, headers=me.headers
    )
    assert "errors" not in registered.json(), registered.text
    ran = await pair.b.post("/graphql", json=by_hash, headers=me.headers)
    assert ran.json() == {"data": {"contacts": {"edges": []}}}, ran.text
    # Still per tenant: another tenant does not know the hash, on either server.
    for http in (pair.a, pair.b):
        theirs = await http.post("/graphql", json=by_hash, headers=other.headers)
        assert theirs.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_sign_in_failures_on_a_count_on_b(
    services: Services, client: httpx.AsyncClient, pair: Pair
) -> None:
    me = await new_tenant(services, client, "two-guess")
    wrong = {"tenant": me.slug, "email": me.email, "password": "not the password"}
    for _ in range(5):  # the account's free failures, all on A
        assert (await pair.a.post("/auth/sign-in", json=wrong)).status_code == 401
    sixth = await pair.a.post("/auth/sign-in", json=wrong)
    assert sixth.status_code == 401
    # B already blocks the account, before looking at the (right) password.
    right = {**wrong, "password": PASSWORD}
    blocked = await pair.b.post("/auth/sign-in", json=right)
    assert blocked.status_code == 429, blocked.text
    assert int(blocked.headers["Retry-After"]) >= 1


async def test_a_read_budget_spent_on_a_throttles_on_b(
    services: Services, client: httpx.AsyncClient, pair: Pair
) -> None:
    admin = await new_tenant(services, client, "two-budget")
    await set_rules(
        client, admin, bulk_read={"rows": 10, "cells": 1_000_000, "window_seconds": 3600}
    )
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    for n in range(12):
        made = await pair.a.post(
            "/api/v1/contacts", json={"last_name": f"Budget{n}"}, headers=rep.headers
        )
        assert made.status_code == 201, made.text
    page = await pair.a.get("/api/v1/contacts", params={"limit": 10}, headers=rep.headers)
    assert page.status_code == 200, page.text
    assert len(page.json()["items"]) == 10
    refused = await pair.b.get("/api/v1/contacts", params={"limit": 10}, headers=rep.headers)
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "BULK_READ_THROTTLED"


async def test_an_idempotency_key_used_on_a_replays_on_b(
    cluster: Cluster, services: Services, client: httpx.AsyncClient, pair: Pair
) -> None:
    me = await new_tenant(services, client, "two-idem")
    key = f"two-{uuid.uuid4().hex}"
    marker = f"Idem{uuid.uuid4().hex[:8]}"
    headers = {**me.headers, "Idempotency-Key": key}
    first = await pair.a.post("/api/v1/contacts", json={"last_name": marker}, headers=headers)
    assert first.status_code == 201, first.text
    second = await pair.b.post("/api/v1/contacts", json={"last_name": marker}, headers=headers)
    assert second.status_code == 201, second.text
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert second.json() == first.json()
    # Both at once, on both servers: still one record.
    key2 = {**me.headers, "Idempotency-Key": f"two-{uuid.uuid4().hex}"}
    body = {"last_name": f"{marker}-race"}
    answers = await asyncio.gather(
        pair.a.post("/api/v1/contacts", json=body, headers=key2),
        pair.b.post("/api/v1/contacts", json=body, headers=key2),
    )
    assert {r.status_code for r in answers} <= {201, 409}, [r.text for r in answers]
    async with superuser(cluster) as db:
        rows = await db.fetch(
            "SELECT last_name FROM contacts WHERE tenant_id = $1 AND last_name LIKE $2",
            me.tenant_id,
            f"{marker}%",
        )
    assert sorted(r["last_name"] for r in rows) == sorted([marker, f"{marker}-race"])
