"""Done-when for mobile sync: a simulated phone syncs, goes offline, edits several records while
the server changes some of them too, comes back, pushes and pulls, and ends with exactly the
server's data, every conflict reported, and nothing lost."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, new_tenant
from tests.security.policy_helpers import create_record, user_with_roles
from tests.sync.helpers import patch
from tests.sync.phone import Offline, Phone


async def _server_view(client: httpx.AsyncClient, user: TenantUser) -> dict[Any, Any]:
    """Everything the user may see, as REST lists show it."""
    view: dict[Any, Any] = {}
    for plural in ("accounts", "contacts", "opportunities"):
        listed = await client.get(f"/api/v1/{plural}?limit=200", headers=user.headers)
        assert listed.status_code == 200, listed.text
        view.update({(plural, r["id"]): r for r in listed.json()["items"]})
    return view


async def _get(client: httpx.AsyncClient, user: TenantUser, id_: str) -> Any:
    response = await client.get(f"/api/v1/contacts/{id_}", headers=user.headers)
    return response.json() if response.status_code == 200 else response.status_code


async def test_a_phone_goes_offline_edits_comes_back_and_converges(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "phone")
    rep = await user_with_roles(services, client, admin, "rep", ["salesperson"])
    c = [
        await create_record(client, rep, "contacts", {"last_name": f"Contact {i}"})
        for i in range(7)
    ]
    account = await create_record(client, rep, "accounts", {"name": "Acme"})
    deal = await create_record(
        client,
        rep,
        "opportunities",
        {"name": "Deal", "stage": "proposal", "close_date": "2026-12-31", "amount": "100"},
    )
    phone = Phone(client, rep, "rep-phone")
    await phone.sync()
    assert phone.records == await _server_view(client, rep)

    phone.online = False
    with pytest.raises(Offline):
        await phone.sync()
    ids = [r["id"] for r in c]
    untouched = phone.edit("contacts", ids[0], title="Edited offline")
    both = phone.edit("contacts", ids[1], title="Phone title", notes="Met on the train")
    phone.edit("contacts", ids[1], email="train@example.com")  # a second edit, one change
    disjoint = phone.edit("contacts", ids[2], email="new@example.com")
    deleted = phone.delete("contacts", ids[3])
    gone_on_server = phone.edit("contacts", ids[4], title="Too late")
    moved_away = phone.edit("contacts", ids[5], title="No longer mine")
    created = phone.create("contacts", last_name="Made offline", tags=["train"])
    invalid = phone.create("contacts", first_name="No last name")
    money = phone.edit("opportunities", deal["id"], amount="150.5", stage="negotiation")
    account_edit = phone.edit("accounts", account["id"], name="Acme Ltd")

    # Meanwhile, on the server:
    await patch(client, rep, "contacts", c[1], title="Server title")
    await patch(client, rep, "contacts", c[2], phone="+1 415 555 0100")
    assert (
        await client.delete(f"/api/v1/contacts/{ids[4]}", headers=rep.headers)
    ).status_code == 204
    await patch(client, admin, "contacts", c[5], owner_id=str(admin.user_id))
    await patch(client, rep, "opportunities", deal, stage="qualification")
    from_laptop = await create_record(client, rep, "contacts", {"last_name": "From laptop"})

    phone.online = True
    await phone.sync(resolution="server_wins")

    # Nothing lost: every offline change has an answer, and the outbox is empty.
    assert phone.outbox == {}
    statuses = {k: (r["status"], r["code"]) for k, r in phone.results.items()}
    assert statuses == {
        untouched: ("applied", None),
        both: ("merged", None),
        disjoint: ("merged", None),
        deleted: ("applied", None),
        gone_on_server: ("refused", "not_found"),
        moved_away: ("refused", "not_found"),
        created: ("applied", None),
        invalid: ("refused", "required"),
        money: ("merged", None),
        account_edit: ("applied", None),
    }
    # Every conflict is reported, with both values and how it was resolved.
    conflicts = {
        k: [
            (x["field"], x["client_value"], x["server_value"], x["resolved"])
            for x in r["conflicts"]
        ]
        for k, r in phone.results.items()
        if r["conflicts"]
    }
    assert conflicts == {
        both: [("title", "Phone title", "Server title", "server")],
        money: [("stage", "negotiation", "qualification", "server")],
    }

    # The phone holds exactly the server's data, and the phone's edits are in it.
    server = await _server_view(client, rep)
    assert phone.records == server
    assert server[("contacts", ids[0])]["title"] == "Edited offline"
    assert server[("contacts", ids[1])]["title"] == "Server title"
    assert server[("contacts", ids[1])]["notes"] == "Met on the train"
    assert server[("contacts", ids[1])]["email"] == "train@example.com"
    assert server[("contacts", ids[2])]["email"] == "new@example.com"
    assert server[("contacts", ids[2])]["phone"] == "+1 415 555 0100"
    assert ("contacts", ids[3]) not in server and ("contacts", ids[4]) not in server
    assert ("contacts", ids[5]) not in server  # moved to the admin: a tombstone removed it
    assert ("contacts", from_laptop["id"]) in server
    made = server[("contacts", phone.results[created]["id"])]
    assert (made["last_name"], made["tags"]) == ("Made offline", ["train"])
    assert server[("opportunities", deal["id"])]["amount"] == "150.50"
    assert server[("accounts", account["id"])]["name"] == "Acme Ltd"
    # The admin still has the moved record, untouched by the phone.
    assert (await _get(client, admin, ids[5]))["title"] is None

    # A second sync changes nothing on either side.
    before = dict(phone.records)
    await phone.sync()
    assert phone.records == before == await _server_view(client, rep)


async def test_client_wins_takes_the_phones_values(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "phone-cw")
    contact = await create_record(client, admin, "contacts", {"last_name": "Shared"})
    phone = Phone(client, admin, "admin-phone")
    await phone.sync()
    phone.online = False
    edit = phone.edit("contacts", contact["id"], title="Phone", last_name="Phone name")
    await patch(client, admin, "contacts", contact, title="Server")
    phone.online = True
    await phone.sync(resolution="client_wins")
    result = phone.results[edit]
    assert result["status"] == "merged"
    assert [(x["field"], x["resolved"]) for x in result["conflicts"]] == [("title", "client")]
    server = await _server_view(client, admin)
    assert phone.records == server
    assert server[("contacts", contact["id"])]["title"] == "Phone"
