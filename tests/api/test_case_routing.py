"""Queues and routing: the first matching assignment rule picks a new case's queue, round-robin
picks its least-loaded member; assignment only to members of the case's queue (a user of
another tenant, or outside the queue: the same 422 as a missing user); escalation."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from backend.runtime import Services
from tests.api.cases_helpers import get_case, new_case, new_policy, new_queue, new_rule
from tests.conftest import TenantUser, new_tenant, new_user


async def _agents(
    services: Services, client: httpx.AsyncClient, admin: TenantUser, n: int
) -> list[TenantUser]:
    return list(
        await asyncio.gather(*(new_user(services, client, admin, f"agent{i}") for i in range(n)))
    )


async def test_rules_route_by_type_priority_and_channel_in_order(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "route")
    complaints = await new_queue(client, admin, "Complaints", [])
    urgent_phone = await new_queue(client, admin, "Hotline", [])
    general = await new_queue(client, admin, "General", [])
    await new_rule(
        client,
        admin,
        conditions={"priority": ["urgent"], "channel": ["phone"]},
        queue_id=urgent_phone["id"],
    )
    await new_rule(
        client, admin, conditions={"type": ["complaint", "return"]}, queue_id=complaints["id"]
    )
    await new_rule(client, admin, queue_id=general["id"])  # no conditions: everything else
    listed = await client.get("/api/v1/case-assignment-rules", headers=admin.headers)
    assert [r["position"] for r in listed.json()["items"]] == [0, 1, 2]
    cases = {
        "hotline": await new_case(
            client, admin, priority="urgent", channel="phone", type="complaint"
        ),
        "urgent_email": await new_case(
            client, admin, priority="urgent", channel="email", type="complaint"
        ),
        "return": await new_case(client, admin, type="return"),
        "question": await new_case(client, admin, type="question"),
    }
    assert {k: c["queue_id"] for k, c in cases.items()} == {
        "hotline": urgent_phone["id"],
        "urgent_email": complaints["id"],
        "return": complaints["id"],
        "question": general["id"],
    }
    assert all(c["assignee_id"] is None for c in cases.values())  # no round-robin asked
    # A queue given on create wins over the rules.
    given = await new_case(client, admin, type="return", queue_id=general["id"])
    assert given["queue_id"] == general["id"]


async def test_round_robin_goes_to_the_least_loaded_member(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "rr")
    a, b, c = await _agents(services, client, admin, 3)
    team = await new_queue(client, admin, "Support", [a, b, c])
    await new_rule(client, admin, queue_id=team["id"], round_robin=True)
    # b already holds two open cases and c one; a resolved case does not count.
    for who in (b, b, c):
        await new_case(client, admin, queue_id=team["id"], assignee_id=str(who.user_id))
    done = await new_case(
        client, admin, queue_id=team["id"], assignee_id=str(a.user_id), status="resolved"
    )
    assert done["resolved_at"] is not None
    routed = [await new_case(client, admin) for _ in range(3)]
    picked = [r["assignee_id"] for r in routed]
    # a (0 open) first; then a and c have 1 each -> the lower id; then the remaining one.
    first_tie = min(str(a.user_id), str(c.user_id))
    second = str(c.user_id) if first_tie == str(a.user_id) else str(a.user_id)
    assert picked == [str(a.user_id), first_tie, second]
    assert all(r["queue_id"] == team["id"] for r in routed)


async def test_round_robin_under_concurrent_creates_spreads_evenly(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "rr-conc")
    agents = await _agents(services, client, admin, 2)
    team = await new_queue(client, admin, "Support", agents)
    await new_rule(client, admin, queue_id=team["id"], round_robin=True)
    made = await asyncio.gather(*(new_case(client, admin) for _ in range(6)))
    loads = {str(a.user_id): 0 for a in agents}
    for case in made:
        loads[case["assignee_id"]] += 1
    assert sorted(loads.values()) == [3, 3]


async def test_assign_only_to_members_of_the_queue(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin, other = await asyncio.gather(
        new_tenant(services, client, "assign"), new_tenant(services, client, "assign-b")
    )
    member, outsider = await _agents(services, client, admin, 2)
    stranger = await new_user(services, client, other, "stranger")
    team = await new_queue(client, admin, "Support", [member])
    case = await new_case(client, admin)
    url = f"/api/v1/cases/{case['id']}/assign"

    async def assign(**body: object) -> httpx.Response:
        return await client.post(url, json=body, headers=admin.headers)

    moved = await assign(queue_id=team["id"], assignee_id=str(member.user_id))
    assert moved.status_code == 200, moved.text
    assert (moved.json()["queue_id"], moved.json()["assignee_id"]) == (
        team["id"],
        str(member.user_id),
    )
    answers = {
        "outside the queue": await assign(assignee_id=str(outsider.user_id)),
        "another tenant": await assign(assignee_id=str(stranger.user_id)),
        "missing": await assign(assignee_id=str(uuid.uuid4())),
    }
    shapes = {k: (r.status_code, r.json()["field"], r.json()["code"]) for k, r in answers.items()}
    assert set(shapes.values()) == {(422, "assignee_id", "unknown_reference")}, shapes
    # Nothing changed by the refusals.
    assert (await get_case(client, admin, case["id"]))["assignee_id"] == str(member.user_id)
    # Another tenant's queue is missing too; a queue member of another tenant cannot be added.
    foreign = await new_queue(client, other, "Theirs", [stranger])
    assert (await assign(queue_id=foreign["id"])).status_code == 422
    bad_queue = await client.post(
        "/api/v1/queues",
        json={"name": "Mixed", "member_ids": [str(stranger.user_id)]},
        headers=admin.headers,
    )
    assert bad_queue.status_code == 422 and bad_queue.json()["field"] == "member_ids"
    # Without a queue any user of the tenant may be assigned; the other tenant's may not.
    loose = await new_case(client, admin)
    ok = await client.post(
        f"/api/v1/cases/{loose['id']}/assign",
        json={"assignee_id": str(outsider.user_id)},
        headers=admin.headers,
    )
    assert ok.status_code == 200, ok.text
    foreign_user = await client.post(
        f"/api/v1/cases/{loose['id']}/assign",
        json={"assignee_id": str(stranger.user_id)},
        headers=admin.headers,
    )
    assert (foreign_user.status_code, foreign_user.json()["field"]) == (422, "assignee_id")
    # Another tenant cannot assign this tenant's case: not found.
    theirs = await client.post(url, json={"assignee_id": None}, headers=other.headers)
    assert theirs.status_code == 404


async def test_escalate_raises_priority_and_moves_to_the_escalation_queue(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "esc")
    (lead,) = await _agents(services, client, admin, 1)
    escalations = await new_queue(client, admin, "Escalations", [lead])
    await new_policy(client, admin, priority="high", escalation_queue_id=escalations["id"])
    case = await new_case(client, admin, priority="high")
    escalated = await client.post(f"/api/v1/cases/{case['id']}/escalate", headers=admin.headers)
    assert escalated.status_code == 200, escalated.text
    body = escalated.json()
    assert (body["priority"], body["queue_id"]) == ("urgent", escalations["id"])
    history = await client.get(f"/api/v1/cases/{case['id']}/history", headers=admin.headers)
    fields = {e.get("field") for e in history.json()["items"]}
    assert {"priority", "queue_id"} <= fields
    # No policy for urgent: escalating again changes nothing more than it can.
    again = await client.post(f"/api/v1/cases/{case['id']}/escalate", headers=admin.headers)
    assert again.json()["priority"] == "urgent"


async def test_only_admins_change_the_routing_set_up(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "setup")
    (agent,) = await _agents(services, client, admin, 1)
    refused = await client.post("/api/v1/queues", json={"name": "Mine"}, headers=agent.headers)
    assert refused.status_code == 403
    listed = await client.get("/api/v1/queues", headers=admin.headers)
    assert listed.json()["items"] == []


async def test_another_tenants_set_up_is_invisible_and_untouchable(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin, other = await asyncio.gather(
        new_tenant(services, client, "setup-a"), new_tenant(services, client, "setup-b")
    )
    queue = await new_queue(client, admin, "Mine", [])
    rule = await new_rule(client, admin, queue_id=queue["id"])
    policy = await new_policy(client, admin, priority="low")
    for path in ("queues", "case-assignment-rules", "sla-policies"):
        listed = await client.get(f"/api/v1/{path}", headers=other.headers)
        assert listed.json()["items"] == [], path
    renamed = await client.patch(
        f"/api/v1/queues/{queue['id']}", json={"name": "Theirs"}, headers=other.headers
    )
    replaced = await client.put(
        f"/api/v1/sla-policies/{policy['id']}",
        json={**policy, "id": None, "version": None},
        headers=other.headers,
    )
    deleted = [
        await client.delete(f"/api/v1/{path}/{rid}", headers=other.headers)
        for path, rid in (
            ("queues", queue["id"]),
            ("case-assignment-rules", rule["id"]),
            ("sla-policies", policy["id"]),
        )
    ]
    assert [r.status_code for r in (renamed, replaced, *deleted)] == [404] * 5
    # Their rule may not route to my queue either.
    borrowed = await client.post(
        "/api/v1/case-assignment-rules", json={"queue_id": queue["id"]}, headers=other.headers
    )
    assert (borrowed.status_code, borrowed.json()["field"]) == (422, "queue_id")
    mine = await client.get("/api/v1/queues", headers=admin.headers)
    assert [q["name"] for q in mine.json()["items"]] == ["Mine"]
