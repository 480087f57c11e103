"""Races: the same one-time thing attempted several times at the same moment.

Each scenario releases its requests together (asyncio.gather) for several rounds, over the
real app and database, and counts what got through more often than it may. (The last-admin
race is in the admin tests; lead conversion does not exist yet.)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx

from backend.runtime import Services
from tests.conftest import PASSWORD, TenantUser, new_tenant, sign_in
from tests.exports.helpers import add_contacts, audit_events, request_export, set_rules
from tests.security.figures import count
from tests.security.oauth_helpers import Pkce, authorize_as, exchange, register
from tests.security.policy_helpers import user_with_roles

ROUNDS = 3
AT_ONCE = 6


def _statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def _record(violations: int) -> None:
    count("races_run")
    count("race_violations", violations)


async def test_one_refresh_token_presented_at_once_yields_at_most_one_pair(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    for _ in range(ROUNDS):
        pair = await sign_in(client, tenant_a.slug, tenant_a.email, PASSWORD)
        answers = await asyncio.gather(
            *(
                client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
                for _ in range(AT_ONCE)
            )
        )
        wins = [r.json() for r in answers if r.status_code == 200]
        _record(max(0, len(wins) - 1))
        assert len(wins) <= 1, _statuses(answers)
        assert set(_statuses(answers)) <= {200, 401}, [r.text for r in answers]
        # The losers were reuse: the family is revoked, the winner's new token included.
        if wins and len(wins) < AT_ONCE:
            again = await client.post(
                "/auth/refresh", json={"refresh_token": wins[0]["refresh_token"]}
            )
            assert again.status_code == 401, again.text


async def test_one_authorization_code_redeemed_at_once_yields_at_most_one_token(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "race-code")
    app = await register(client, admin)
    for _ in range(ROUNDS):
        pkce = Pkce.new()
        done = await authorize_as(client, app, admin, pkce)
        answers = await asyncio.gather(
            *(exchange(client, app, done.code, pkce.verifier) for _ in range(AT_ONCE))
        )
        wins = sum(1 for r in answers if r.status_code == 200)
        _record(max(0, wins - 1))
        assert wins == 1, [r.text for r in answers]
        assert set(_statuses(answers)) <= {200, 400}, [r.text for r in answers]


async def _ready_export(client: httpx.AsyncClient, user: TenantUser) -> str:
    made = await request_export(client, user, format="csv", fields=["id", "last_name"])
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "ready", made.text
    return str(made.json()["id"])


async def test_a_single_use_download_link_fetched_at_once_is_served_once(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "race-link")
    await add_contacts(client, admin, 2)
    for _ in range(ROUNDS):
        export_id = await _ready_export(client, admin)
        link = await client.post(f"/api/v1/exports/{export_id}/link", headers=admin.headers)
        assert link.status_code == 200, link.text
        url = link.json()["url"]
        answers = await asyncio.gather(*(client.get(url) for _ in range(AT_ONCE)))
        served = sum(1 for r in answers if r.status_code == 200)
        _record(max(0, served - 1))
        assert served == 1, _statuses(answers)
        assert set(_statuses(answers)) <= {200, 410}, [r.text for r in answers]


async def test_two_admins_deciding_one_export_at_once_make_exactly_one_decision(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "race-approve")
    approvers = [
        await user_with_roles(services, client, admin, f"adm{n}", ["tenant_admin"])
        for n in range(AT_ONCE)
    ]
    manager = await user_with_roles(services, client, admin, "mgr", ["sales_manager"])
    await set_rules(
        client,
        admin,
        roles={"sales_manager": {"max_rows": 50, "approval_threshold": 1, "daily_rows": 1000}},
    )
    await add_contacts(client, manager, 2)
    for round_ in range(ROUNDS):
        made = await request_export(client, manager, format="csv", fields=["id", "last_name"])
        assert made.status_code == 201 and made.json()["status"] == "pending", made.text
        export_id = made.json()["id"]
        # Half approve, half deny, all at once (the first round: all approve).
        verbs = ["approve" if round_ == 0 or n % 2 == 0 else "deny" for n in range(AT_ONCE)]
        answers = await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/exports/{export_id}/{verb}",
                    json={"reason": "race"} if verb == "deny" else None,
                    headers=who.headers,
                )
                for verb, who in zip(verbs, approvers, strict=True)
            )
        )
        decided = [(v, r) for v, r in zip(verbs, answers, strict=True) if r.status_code == 200]
        _record(max(0, len(decided) - 1))
        assert len(decided) == 1, [r.text for r in answers]
        assert set(_statuses(answers)) <= {200, 409}, [r.text for r in answers]
        final = await client.get(f"/api/v1/exports/{export_id}", headers=manager.headers)
        expected = "ready" if decided[0][0] == "approve" else "denied"
        assert final.json()["status"] == expected, final.text
    events = await audit_events(client, admin, "export.approved")
    events += await audit_events(client, admin, "export.denied")
    assert len(events) == ROUNDS, events


async def test_patches_with_the_same_if_match_at_once_have_exactly_one_winner(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    for _ in range(ROUNDS):
        made = await client.post(
            "/api/v1/contacts", json={"last_name": "Race"}, headers=tenant_a.headers
        )
        assert made.status_code == 201, made.text
        record = made.json()
        answers = await asyncio.gather(
            *(
                client.patch(
                    f"/api/v1/contacts/{record['id']}",
                    json={"first_name": f"writer{n}"},
                    headers={**tenant_a.headers, "If-Match": '"1"'},
                )
                for n in range(AT_ONCE)
            )
        )
        statuses = _statuses(answers)
        _record(max(0, statuses[200] - 1))
        assert statuses == Counter({200: 1, 412: AT_ONCE - 1}), [r.text for r in answers]
        winner = next(r.json() for r in answers if r.status_code == 200)
        now = await client.get(f"/api/v1/contacts/{record['id']}", headers=tenant_a.headers)
        assert now.json()["version"] == 2 and now.json()["first_name"] == winner["first_name"]


async def _contacts_named(client: httpx.AsyncClient, user: TenantUser, name: str) -> list[Any]:
    listed = await client.get("/api/v1/contacts?limit=200", headers=user.headers)
    assert listed.status_code == 200, listed.text
    return [c for c in listed.json()["items"] if c["last_name"] == name]


async def test_the_same_sync_batch_pushed_at_once_is_applied_once(
    services: Services, client: httpx.AsyncClient
) -> None:
    rep = await new_tenant(services, client, "race-sync")
    base = await client.post("/api/v1/contacts", json={"last_name": "Base"}, headers=rep.headers)
    assert base.status_code == 201, base.text
    base_id = base.json()["id"]
    version = 1
    for round_ in range(ROUNDS):
        batch = {
            "device_id": "race-phone",
            "changes": [
                {
                    "client_id": f"new-{round_}",
                    "entity": "contacts",
                    "op": "create",
                    "fields": {"last_name": f"Synced{round_}"},
                },
                {
                    "client_id": f"upd-{round_}",
                    "entity": "contacts",
                    "op": "update",
                    "id": base_id,
                    "base_version": version,
                    "fields": {"title": f"t{round_}"},
                },
            ],
        }
        answers = await asyncio.gather(
            *(client.post("/api/v1/sync", json=batch, headers=rep.headers) for _ in range(AT_ONCE))
        )
        assert set(_statuses(answers)) <= {200, 409}, [r.text for r in answers]
        assert any(r.status_code == 200 for r in answers)
        made = await _contacts_named(client, rep, f"Synced{round_}")
        now = await client.get(f"/api/v1/contacts/{base_id}", headers=rep.headers)
        bumps = now.json()["version"] - version
        _record(max(0, len(made) - 1) + max(0, bumps - 1))
        assert len(made) == 1, made
        assert bumps == 1, now.json()
        # Every answer that says what happened agrees on the one created record.
        created = {
            r["id"]
            for a in answers
            if a.status_code == 200
            for r in a.json()["results"]
            if r["client_id"] == f"new-{round_}" and r.get("id")
        }
        assert created == {made[0]["id"]}, created
        version += 1
