"""A leaked file is traced to its export: `caravan export trace FILE` finds the watermark in a
CSV re-saved by the csv module and in an XLSX re-saved by openpyxl, verifies it and names the
export and its requester; a forged watermark names no one. Also `export list` and `sweep`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import openpyxl

from backend.runtime import Services
from tests.cli.test_cli import _env, run
from tests.conftest import Cluster, new_tenant
from tests.exports.helpers import add_contacts, download, request_export
from tests.security.audit_helpers import as_owner
from tests.security.policy_helpers import assert_problem, user_with_roles


def _caravan(cluster: Cluster, *args: str) -> tuple[int, Any]:
    result = run(["export", *args], _env(cluster))
    assert "Traceback" not in result.stderr, result.stderr
    try:
        return result.returncode, json.loads(result.stdout)
    except json.JSONDecodeError:
        return result.returncode, result.stdout


async def test_a_leaked_csv_and_xlsx_are_traced_after_re_saving(
    services: Services, client: httpx.AsyncClient, cluster: Cluster, tmp_path: Path
) -> None:
    admin = await new_tenant(services, client, "exp-trace")
    manager = await user_with_roles(services, client, admin, "leaver", ["sales_manager"])
    await add_contacts(client, manager, 5)

    made = await request_export(client, manager, format="csv", fields=["last_name", "email"])
    csv_export = made.json()
    leaked = await download(client, manager, csv_export["id"])
    assert leaked.status_code == 200, leaked.text
    assert leaked.headers["content-type"].startswith("text/csv")
    assert leaked.headers["cache-control"] == "no-store"
    assert (
        f'filename="contact-export-{csv_export["id"]}.csv"' in leaked.headers["content-disposition"]
    )
    # The leaver opens it, drops the first and last rows, and saves it again.
    rows = list(csv.reader(io.StringIO(leaked.text)))
    resaved = io.StringIO()
    csv.writer(resaved, delimiter=";").writerows([rows[0], *rows[2:-1]])
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text(resaved.getvalue())

    made = await request_export(client, manager, format="xlsx", fields=["id", "last_name"])
    xlsx_export = made.json()
    leaked = await download(client, manager, xlsx_export["id"])
    assert leaked.status_code == 200
    original = tmp_path / "original.xlsx"
    original.write_bytes(leaked.content)
    book = openpyxl.load_workbook(original)
    sheet = book.active
    assert sheet is not None and sheet.max_row == 1 + 5 + 1
    sheet.title = "my customers"
    book.properties.comments = None  # strips one mark; the canary row remains
    xlsx_file = tmp_path / "customers.xlsx"
    book.save(xlsx_file)

    for path, export in ((csv_file, csv_export), (xlsx_file, xlsx_export)):
        code, report = _caravan(cluster, "trace", str(path))
        assert code == 0, report
        (found,) = report["exports"]
        assert found["export_id"] == export["id"]
        assert found["requested_by"] == str(manager.user_id)
        assert found["requester_email"] == manager.email
        assert found["tenant"] == admin.slug and found["verified"] is True

    code, listing = _caravan(cluster, "list", "--tenant", admin.slug, "--json")
    assert code == 0
    assert {e["id"] for e in listing["exports"]} == {csv_export["id"], xlsx_export["id"]}
    code, table = _caravan(cluster, "list", "--tenant", admin.slug)
    assert code == 0 and isinstance(table, str)
    lines = table.splitlines()
    assert len(lines) == 2 and all(manager.email in line for line in lines)
    assert xlsx_export["id"] in lines[0] and csv_export["id"] in lines[1]  # newest first


async def test_a_forged_watermark_names_no_one(
    services: Services, client: httpx.AsyncClient, cluster: Cluster, tmp_path: Path
) -> None:
    admin = await new_tenant(services, client, "exp-forge")
    await add_contacts(client, admin, 1)
    export = (await request_export(client, admin, fields=["id", "last_name"])).json()
    text = (await download(client, admin, export["id"])).text
    # Blame someone else: change a character inside the token, in every cell that holds it.
    start = text.index("CRVN1.")
    token = text[start : start + 92]
    forged = text.replace(token, token[:10] + ("A" if token[10] != "A" else "B") + token[11:])
    path = tmp_path / "forged.csv"
    path.write_text(forged)
    code, report = _caravan(cluster, "trace", str(path))
    assert code == 1
    assert report["exports"] == [] and report["forged_or_damaged"] >= 1
    plain = tmp_path / "plain.csv"
    plain.write_text("id,last_name\n1,Nobody\n")
    assert _caravan(cluster, "trace", str(plain))[0] == 1


async def test_expired_links_and_files_are_refused(
    services: Services, client: httpx.AsyncClient, cluster: Cluster
) -> None:
    admin = await new_tenant(services, client, "exp-expire")
    await add_contacts(client, admin, 1)
    export = (await request_export(client, admin)).json()
    link = (await client.post(f"/api/v1/exports/{export['id']}/link", headers=admin.headers)).json()
    # Time passes (the owner moves the clock of this link back rather than the test sleeping).
    async with as_owner(cluster, admin.tenant_id, disable_triggers=False) as owner:
        await owner.execute(
            "update exports set link_expires_at = now() - interval '1 second' where id = $1",
            export["id"],
        )
    assert_problem(await client.get(link["url"]), 410, "link_expired")
    # The file's own expiry: the sweeper deletes it and the export says so.
    async with as_owner(cluster, admin.tenant_id, disable_triggers=False) as owner:
        await owner.execute(
            "update exports set expires_at = now() - interval '1 second' where id = $1",
            export["id"],
        )
    early = await client.post(f"/api/v1/exports/{export['id']}/link", headers=admin.headers)
    assert_problem(early, 409, "export_expired")  # refused even before the sweeper ran
    code, swept = _caravan(cluster, "sweep", "--tenant", admin.slug)
    assert code == 0 and swept["expired"] == {admin.slug: 1}
    files = list((cluster.data_dir / "exports" / str(admin.tenant_id)).glob("*.bin"))
    assert files == []
    seen = await client.get(f"/api/v1/exports/{export['id']}", headers=admin.headers)
    assert seen.json()["status"] == "expired"
    relink = await client.post(f"/api/v1/exports/{export['id']}/link", headers=admin.headers)
    assert_problem(relink, 409, "export_expired")
