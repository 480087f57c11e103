"""CSV import: rows go through the record service (history channel `import`), duplicates by
email and E.164 phone are reported and handled as asked, bad rows are reported without
stopping the import, a dry run writes nothing, and bad files or mappings are refused whole."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backend.context import Principal, RequestContext
from backend.crm.contacts.service import contacts
from backend.imports.csvfile import MAX_FILE_BYTES
from backend.runtime import Services
from tests.api.imports_helpers import HEADER, count, finished, people, upload, written
from tests.api.test_custom_fields import define
from tests.conftest import TenantUser, new_tenant
from tests.exports.helpers import audit_events
from tests.security.policy_helpers import assert_problem, create_role, user_with_roles


async def test_rows_become_contacts_with_import_history_and_audit_events(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "imp")
    csv = f"{HEADER}\nAda,Lovelace,ada@example.com,+44 20 7946 0958,Countess\nAlan,Turing,,,\n"
    report = await finished(services, client, admin, await upload(client, admin, csv))
    assert report["entity"] == "contact"
    assert (report["rows_total"], report["rows_done"], report["created"]) == (2, 2, 2)
    assert (report["errors"], report["duplicates"], report["skipped"]) == ([], 0, 0)
    listed = await client.get("/api/v1/contacts", params={"q": "Lovelace"}, headers=admin.headers)
    (ada,) = listed.json()["items"]
    assert (ada["email"], ada["phone"], ada["title"]) == (
        "ada@example.com",
        "+44 20 7946 0958",
        "Countess",
    )
    history = await client.get(
        "/api/v1/history", params={"channel": "import"}, headers=admin.headers
    )
    assert history.status_code == 200, history.text
    assert {h["record_id"] for h in history.json()["items"]} >= {ada["id"]}
    started = await audit_events(client, admin, "import.started")
    done = await audit_events(client, admin, "import.finished")
    assert [e["details"]["id"] for e in started] == [report["id"]]
    assert [(e["details"]["import_id"], e["details"]["created"]) for e in done] == [
        (report["id"], 2)
    ]


async def test_duplicates_by_email_and_e164_phone_are_skipped_and_reported(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "impdup")
    existing = await client.post(
        "/api/v1/contacts",
        json={"last_name": "Old", "email": "Ann@Example.com", "phone": "+1 415 555 0100"},
        headers=admin.headers,
    )
    old_id = existing.json()["id"]
    csv = (
        f"{HEADER}\n"
        "Ann,New, ann@EXAMPLE.com ,,\n"  # row 1: the existing email, other case and spaces
        "Bo,Phone,,(415) 555-0100,\n"  # row 2: the existing phone, written another way
        "Cy,Fresh,cy@example.com,,\n"  # row 3: new
        "Cy,Again,CY@example.com,,\n"  # row 4: row 3 again, within the file
    )
    before = await written(services, admin.tenant_id)
    report = await finished(services, client, admin, await upload(client, admin, csv))
    assert (report["created"], report["skipped"], report["duplicates"]) == (1, 3, 3)
    cy = await client.get("/api/v1/contacts", params={"q": "Fresh"}, headers=admin.headers)
    cy_id = cy.json()["items"][0]["id"]
    assert report["errors"] == [
        {"row": 1, "field": "email", "code": "duplicate", "existing_id": old_id},
        {"row": 2, "field": "phone", "code": "duplicate", "existing_id": old_id},
        {"row": 4, "field": "email", "code": "duplicate", "existing_id": cy_id, "first_row": 3},
    ]
    after = await written(services, admin.tenant_id)
    assert after[0] == before[0] + 1


async def test_on_duplicate_update_changes_the_existing_record_and_create_makes_another(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "impupd")
    existing = await client.post(
        "/api/v1/contacts",
        json={"last_name": "Old", "email": "kim@example.com"},
        headers=admin.headers,
    )
    csv = f"{HEADER}\nKim,Newname,KIM@example.com,,Chief buyer\n"
    report = await finished(
        services, client, admin, await upload(client, admin, csv, on_duplicate="update")
    )
    assert (report["updated"], report["created"], report["duplicates"]) == (1, 0, 1)
    now = await client.get(f"/api/v1/contacts/{existing.json()['id']}", headers=admin.headers)
    assert (now.json()["last_name"], now.json()["title"], now.json()["version"]) == (
        "Newname",
        "Chief buyer",
        2,
    )
    report = await finished(
        services, client, admin, await upload(client, admin, csv, on_duplicate="create")
    )
    assert (report["created"], report["duplicates"]) == (1, 1)
    assert await count(services, admin.tenant_id, "select count(*) from contacts") == 2


async def test_any_registered_entity_imports_with_its_own_duplicate_keys(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "impacc")
    existing = await client.post(
        "/api/v1/accounts",
        json={"name": "Acme", "phone": "+44 20 7946 0958"},
        headers=admin.headers,
    )
    csv = "Company,Tel\nAcme Holdings,+44 20-7946-0958\nGlobex,\n"
    mapping = {"Company": "name", "Tel": "phone"}
    response = await upload(client, admin, csv, mapping, entity="accounts")
    report = await finished(services, client, admin, response)
    assert (report["entity"], report["created"], report["skipped"]) == ("account", 1, 1)
    assert report["errors"] == [
        {"row": 1, "field": "phone", "code": "duplicate", "existing_id": existing.json()["id"]}
    ]


async def test_custom_fields_tags_and_typed_cells_import(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "impcustom")
    await define(client, admin, key="seats", label="Seats", type="number")
    await define(client, admin, key="vip", label="VIP", type="boolean")
    csv = "Last,Seats,VIP,Tags\nOne,12,yes,north; key account\nTwo,many,no,\n"
    mapping = {"Last": "last_name", "Seats": "custom.seats", "VIP": "custom.vip", "Tags": "tags"}
    report = await finished(services, client, admin, await upload(client, admin, csv, mapping))
    assert report["created"] == 1
    assert report["errors"] == [{"row": 2, "field": "custom.seats", "code": "invalid_type"}]
    listed = await client.get("/api/v1/contacts", params={"q": "One"}, headers=admin.headers)
    (one,) = listed.json()["items"]
    assert (one["custom"], one["tags"]) == ({"seats": 12, "vip": True}, ["north", "key account"])
    refused = await upload(client, admin, csv, {"Last": "last_name", "Seats": "custom.nope"})
    assert_problem(refused, 422, "unknown_field", "custom.nope")


async def test_bad_rows_are_reported_and_the_rest_imported(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "impbad")
    csv = (
        f"{HEADER}\n"
        "A,Good,a@example.com,,\n"
        ",,,,\n"  # row 2: blank, passed over (but counted, as the caller's sheet counts it)
        "B,Bad,not-an-email,,\n"  # row 3: invalid email
        "C,,c@example.com,,\n"  # row 4: no last name (required)
        "D,Good,d@example.com,not a phone!,\n"  # row 5: invalid phone
        "E,Good,e@example.com,,\n"
    )
    report = await finished(services, client, admin, await upload(client, admin, csv))
    assert (report["created"], report["rows_done"], report["error_count"]) == (2, 5, 3)
    assert report["errors"] == [
        {"row": 3, "field": "email", "code": "invalid_email"},
        {"row": 4, "field": "last_name", "code": "required"},
        {"row": 5, "field": "phone", "code": "invalid_phone"},
    ]
    assert await count(services, admin.tenant_id, "select count(*) from contacts") == 2


async def test_a_dry_run_validates_everything_and_writes_no_record(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "impdry")
    await client.post(
        "/api/v1/contacts",
        json={"last_name": "Old", "email": "x@example.com"},
        headers=admin.headers,
    )
    rows = ("A,One,a@example.com,,", "B,Two,bad,,", "X,Dup,X@example.com,,", "A,2,a@example.com,,")
    csv = "\n".join((HEADER, *rows)) + "\n"
    before = await written(services, admin.tenant_id)
    for on_duplicate in ("skip", "update"):
        response = await upload(client, admin, csv, dry_run=True, on_duplicate=on_duplicate)
        report = await finished(services, client, admin, response)
        assert report["dry_run"] is True
        assert (report["created"], report["duplicates"], report["error_count"]) == (1, 2, 3)
        assert {"row": 2, "field": "email", "code": "invalid_email"} in report["errors"]
        within = [e for e in report["errors"] if e["row"] == 4]
        assert within == [
            {"row": 4, "field": "email", "code": "duplicate", "existing_id": None, "first_row": 1}
        ]
    contacts, history, imports = await written(services, admin.tenant_id)
    assert (contacts, history, imports) == (before[0], before[1], before[2] + 2)


async def test_bad_files_and_mappings_are_refused_whole(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "imprefuse")
    before = await written(services, admin.tenant_id)
    good = f"{HEADER}\nA,One,a@example.com,,\n"
    latin1 = f"{HEADER}\nJosé,Müller,,,\n".encode("latin-1")
    assert_problem(await upload(client, admin, latin1), 422, "encoding", "file")
    huge = good + "x" * (MAX_FILE_BYTES + 1)
    assert_problem(await upload(client, admin, huge), 413, "file_too_large", "file")
    huger = good + "x" * (MAX_FILE_BYTES + 200_000)  # past the form limit too: same answer
    assert_problem(await upload(client, admin, huger), 413, "file_too_large", "file")
    refused = await upload(client, admin, good, entity="spaceship")
    assert_problem(refused, 422, "unknown_entity", "entity")
    refused = await upload(client, admin, good, {"Last": "last_name", "Email": "nickname"})
    assert "nickname" in assert_problem(refused, 422, "unknown_field", "nickname")["detail"]
    refused = await upload(client, admin, good, {"Surname": "last_name"})
    assert_problem(refused, 422, "unknown_column", "Surname")
    refused = await upload(client, admin, good, on_duplicate="merge")
    assert_problem(refused, 422, "invalid_choice", "on_duplicate")
    assert await written(services, admin.tenant_id) == before


async def test_a_mapped_field_the_caller_may_not_write_is_refused_naming_it(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "impperm")
    await create_role(
        client,
        admin,
        "no_email_import",
        [
            ("allow", "*", "read"),
            ("allow", "contact", "create"),
            ("allow", "contact.*", "create"),
            ("deny", "contact.email", "create"),
        ],
        {"*": "tenant"},
    )
    clerk = await user_with_roles(services, client, admin, "clerk", ["no_email_import"])
    csv = f"{HEADER}\nA,One,a@example.com,,\n"
    before = await written(services, admin.tenant_id)
    assert_problem(await upload(client, clerk, csv), 403, "field_forbidden", "email")
    assert await written(services, admin.tenant_id) == before
    denied = await audit_events(client, admin, "access.denied", actor=clerk)
    assert [e["details"]["field"] for e in denied] == ["email"]
    # Without the email column, the same user imports.
    mapping = {"First": "first_name", "Last": "last_name"}
    report = await finished(services, client, clerk, await upload(client, clerk, csv, mapping))
    assert report["created"] == 1
    # on_duplicate=update needs update on every mapped field too: this role has no update.
    assert_problem(
        await upload(client, clerk, csv, mapping, on_duplicate="update"), 403, "action_forbidden"
    )


async def test_imports_are_the_callers_own_and_not_charged_to_the_read_budget(
    services: Services, client: httpx.AsyncClient, tenant_b: TenantUser
) -> None:
    admin = await new_tenant(services, client, "impown")
    other = await user_with_roles(services, client, admin, "other", ["sales_manager"])
    response = await upload(client, admin, f"{HEADER}\nA,One,a@example.com,,\n")
    report = await finished(services, client, admin, response)
    for stranger in (other, tenant_b):
        shown = await client.get(f"/api/v1/imports/{report['id']}", headers=stranger.headers)
        assert_problem(shown, 404, "not_found")
        listed = await client.get("/api/v1/imports", headers=stranger.headers)
        assert report["id"] not in [i["id"] for i in listed.json()["items"]]
    mine = await client.get("/api/v1/imports", headers=admin.headers)
    assert [i["id"] for i in mine.json()["items"]] == [report["id"]]
    usage = "select count(*) from bulk_read_usage where user_id = :user"
    assert await count(services, admin.tenant_id, usage, user=admin.user_id) == 0
    # The check can fail: a bulk read by the same user is charged.
    await client.get("/api/v1/contacts", headers=admin.headers)
    assert await count(services, admin.tenant_id, usage, user=admin.user_id) == 1


async def test_a_thousand_rows_run_in_the_background_with_duplicates_and_bad_rows(
    services: Services, client: httpx.AsyncClient
) -> None:
    await _measure(services, client, 1_000)


async def test_a_shutdown_interrupts_a_background_import_between_whole_batches(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "impstop")
    response = await upload(client, admin, people(3_000, tag="stop"))
    assert response.status_code == 202, response.text
    path = f"/api/v1/imports/{response.json()['id']}"
    progress = response.json()
    for _ in range(3_000):  # progress shows while it runs: wait for the first batch
        if progress["rows_done"] > 0:
            break
        await asyncio.sleep(0.1)
        progress = (await client.get(path, headers=admin.headers)).json()
    assert progress["status"] == "running", progress
    assert progress["rows_done"] in (500, 1_000, 1_500), progress
    await services.imports.stop()
    report = (await client.get(path, headers=admin.headers)).json()
    assert report["status"] == "interrupted"
    assert report["finished_at"] is not None
    # Only whole batches were written (the one in flight rolled back), as the report says.
    assert report["rows_done"] in (500, 1_000, 1_500, 2_000, 2_500)
    contacts = await count(services, admin.tenant_id, "select count(*) from contacts")
    assert contacts == report["created"] == report["rows_done"]
    done = await audit_events(client, admin, "import.finished")
    assert [e["details"]["status"] for e in done] == ["interrupted"]


async def _measure(services: Services, client: httpx.AsyncClient, n: int) -> None:
    admin = await new_tenant(services, client, f"imp{n}")
    csv = people(n, duplicates_every=50, bad_every=100)
    began = time.perf_counter()
    response = await upload(client, admin, csv)
    assert response.status_code == 202, response.text
    assert (response.json()["status"], response.json()["rows_total"]) == ("running", n)
    report = await finished(services, client, admin, response)
    seconds = time.perf_counter() - began
    print(f"\nimport of {n} contacts: {seconds:.1f} s, {n / seconds:.0f} rows/s")
    duplicates, bad = n // 50, n // 100
    assert (report["duplicates"], report["skipped"]) == (duplicates, duplicates)
    assert report["created"] == n - duplicates - bad
    assert report["error_count"] == duplicates + bad
    codes = [e["code"] for e in report["errors"]]
    assert (codes.count("duplicate"), codes.count("invalid_email")) == (duplicates, bad)
    contacts = await count(services, admin.tenant_id, "select count(*) from contacts")
    assert contacts == report["created"]


@pytest.mark.slow
async def test_ten_thousand_rows_with_two_percent_duplicates_and_one_percent_bad(
    services: Services, client: httpx.AsyncClient
) -> None:
    """The measured import (README): prints rows/s; asserts the counts, never the time."""
    await _measure(services, client, 10_000)


async def test_a_statement_failing_in_a_row_rolls_back_to_its_savepoint_only(
    services: Services, client: httpx.AsyncClient
) -> None:
    """What keeps a batch's good rows when one row's SQL fails (the transaction is aborted)."""
    admin = await new_tenant(services, client, "impsave")
    ctx = RequestContext(Principal(admin.user_id, admin.tenant_id), services.db, "import")
    async with ctx.session.request_scope():
        await contacts.create(ctx, {"last_name": "Before"})
        with pytest.raises(DBAPIError):
            async with ctx.session.savepoint():
                await contacts.create(ctx, {"last_name": "Undone"})
                async with ctx.session.transaction() as conn:  # aborts the transaction
                    await conn.execute(text("select 1 / 0"))
        await contacts.create(ctx, {"last_name": "After"})
    names = "select string_agg(last_name, ',' order by last_name) from contacts"
    async with services.db.tenant_transaction(admin.tenant_id) as conn:
        assert (await conn.execute(text(names))).scalar_one() == "After,Before"
