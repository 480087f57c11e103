"""Call scripts: the steps are checked on write (each problem names its step), a run must
follow the graph (an answer off it is 422 naming the step), and the run is stored with its
path and end. Writing scripts follows policy; other tenants' scripts are not found."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, new_tenant
from tests.security.policy_helpers import assert_problem, user_with_roles

SCRIPTS = "/api/v1/knowledge/scripts"

COMPLAINT: list[dict[str, Any]] = [
    {
        "key": "greet",
        "prompt": "Thank you for calling. Is this about an existing order?",
        "options": [
            {"value": "yes", "label": "Yes", "next": "order"},
            {"value": "no", "label": "No", "end": "Transfer to sales"},
        ],
    },
    {
        "key": "order",
        "prompt": "What went wrong with the order?",
        "options": [
            {"value": "late", "label": "It is late", "next": "apologise"},
            {"value": "damaged", "label": "It arrived damaged", "end": "Start a return"},
            {"value": "other", "label": "Something else", "next": "order"},
        ],
    },
    {
        "key": "apologise",
        "prompt": "Apologise and offer a voucher. Does the customer accept?",
        "options": [
            {"value": "accept", "label": "Accepts", "end": "Voucher sent"},
            {"value": "refuse", "label": "Refuses", "end": "Escalate to team lead"},
        ],
    },
]


@pytest.fixture(scope="module")
async def admin(services: Services, client: httpx.AsyncClient) -> TenantUser:
    return await new_tenant(services, client, "scripts")


async def _script(client: httpx.AsyncClient, user: TenantUser, steps: Any) -> httpx.Response:
    return await client.post(
        SCRIPTS, json={"name": "Call-centre complaint", "steps": steps}, headers=user.headers
    )


async def _run(
    client: httpx.AsyncClient, user: TenantUser, script_id: str, answers: Any, **subject: Any
) -> httpx.Response:
    body = {"subject_type": "case", "subject_id": str(uuid.uuid4()), "answers": answers}
    return await client.post(
        f"{SCRIPTS}/{script_id}/runs", json=body | subject, headers=user.headers
    )


def _with(step: int, option: int, **change: Any) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = [
        {**s, "options": [dict(o) for o in s["options"]]} for s in COMPLAINT
    ]
    steps[step]["options"][option] = {
        k: v for k, v in {**steps[step]["options"][option], **change}.items() if v is not None
    }
    return steps


async def test_a_valid_script_is_stored_in_order(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    created = await _script(client, admin, COMPLAINT)
    assert created.status_code == 201, created.text
    script = created.json()
    assert [s["key"] for s in script["steps"]] == ["greet", "order", "apologise"]
    got = await client.get(f"{SCRIPTS}/{script['id']}", headers=admin.headers)
    assert got.json()["steps"] == script["steps"]


@pytest.mark.parametrize(
    ("steps", "field", "code"),
    [
        (_with(1, 0, next="refund"), "steps.order.options.late", "unknown_step"),
        (_with(1, 1, value="late"), "steps.order.options", "duplicate_option"),
        (_with(0, 1, end=None), "steps.greet.options.no", "next_or_end"),
        (_with(0, 1, next="order"), "steps.greet.options.no", "next_or_end"),
        # `order` loops to itself and `apologise` is cut off: no path from greet ends.
        (
            [
                {**COMPLAINT[0], "options": [{"value": "yes", "next": "order"}]},
                {"key": "order", "prompt": "Again?", "options": [{"value": "x", "next": "order"}]},
            ],
            "steps.greet",
            "no_end",
        ),
        ([*COMPLAINT, {**COMPLAINT[2], "key": "orphan"}], "steps.orphan", "unreachable_step"),
        ([*COMPLAINT, COMPLAINT[0]], "steps.greet", "duplicate_step"),
        ([], "steps", "invalid"),
    ],
)
async def test_bad_scripts_are_refused_naming_the_step(
    client: httpx.AsyncClient, admin: TenantUser, steps: Any, field: str, code: str
) -> None:
    assert_problem(await _script(client, admin, steps), 422, code=code, field=field)


async def test_a_run_follows_the_graph_and_is_stored(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    script = (await _script(client, admin, COMPLAINT)).json()
    answers = [
        {"step": "greet", "option": "yes"},
        {"step": "order", "option": "other"},  # a loop with an exit is fine
        {"step": "order", "option": "late"},
        {"step": "apologise", "option": "refuse"},
    ]
    case_id = str(uuid.uuid4())
    ran = await _run(client, admin, script["id"], answers, subject_id=case_id)
    assert ran.status_code == 201, ran.text
    run = ran.json()
    assert run["path"] == ["greet", "order", "order", "apologise"]
    assert run["end"] == "Escalate to team lead"
    assert (run["subject_type"], run["subject_id"]) == ("case", case_id)
    listed = await client.get(f"{SCRIPTS}/{script['id']}/runs", headers=admin.headers)
    assert [r["id"] for r in listed.json()["items"]] == [run["id"]]
    partial = await _run(client, admin, script["id"], answers[:1])
    assert partial.status_code == 201 and partial.json()["end"] is None  # the call dropped


async def test_answers_off_the_graph_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, admin: TenantUser
) -> None:
    script = (await _script(client, admin, COMPLAINT)).json()
    off = await _run(client, admin, script["id"], [{"step": "greet", "option": "maybe"}])
    body = assert_problem(off, 422, code="unknown_option", field="answers[0].option")
    assert "'greet'" in body["detail"]
    skipped = await _run(client, admin, script["id"], [{"step": "order", "option": "late"}])
    assert_problem(skipped, 422, code="off_path", field="answers[0].step")
    after_end = [{"step": "greet", "option": "no"}, {"step": "order", "option": "late"}]
    assert_problem(await _run(client, admin, script["id"], after_end), 422, code="after_end")
    bad_subject = await _run(client, admin, script["id"], [], subject_id="C-000123")
    assert_problem(bad_subject, 422, field="subject_id")
    listed = await client.get(f"{SCRIPTS}/{script['id']}/runs", headers=admin.headers)
    assert listed.json()["items"] == []


async def test_who_may_write_and_run_scripts(services: Services, client: httpx.AsyncClient) -> None:
    admin = await new_tenant(services, client, "scripts-roles")
    agent = await user_with_roles(services, client, admin, "agent", ["support_agent"])
    marketer = await user_with_roles(services, client, admin, "mkt", ["marketing"])
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    created = await _script(client, agent, COMPLAINT)
    assert created.status_code == 201, created.text
    script = created.json()
    for user in (marketer, rep):
        assert_problem(await _script(client, user, COMPLAINT), 403)
    answers = [{"step": "greet", "option": "no"}]
    assert (await _run(client, rep, script["id"], answers)).status_code == 201
    assert_problem(await _run(client, marketer, script["id"], answers), 403)
    renamed = await client.patch(
        f"{SCRIPTS}/{script['id']}",
        json={"name": "Complaint (v2)"},
        headers={**agent.headers, "If-Match": '"1"'},
    )
    assert renamed.status_code == 200 and renamed.json()["version"] == 2, renamed.text
    other = await new_tenant(services, client, "scripts-other")
    assert_problem(await client.get(f"{SCRIPTS}/{script['id']}", headers=other.headers), 404)
    assert_problem(await _run(client, other, script["id"], answers), 404)
