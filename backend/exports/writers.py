"""File formats, written row by row into a binary sink (the encrypting writer): CSV, XLSX
(xlsxwriter in constant_memory mode) and JSON Lines. Memory stays flat however many rows.

Cells that a spreadsheet would run as a formula (=, +, -, @ first) are written as text: a
CSV prefixed with an apostrophe, XLSX as string cells. An export is data, never code.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import xlsxwriter  # type: ignore[import-untyped]

FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "jsonl": ("application/x-ndjson", "jsonl"),
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FLUSH_ROWS = 500


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...


class RowWriter(Protocol):
    def row(self, values: Sequence[Any]) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _json(value: Any) -> Any:
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class CsvWriter:
    def __init__(self, sink: Sink, fields: Sequence[str]) -> None:
        self._sink = sink
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer)
        self._pending = 0
        self._csv.writerow(fields)

    def row(self, values: Sequence[Any]) -> None:
        cells = []
        for value in values:
            text = _text(value)
            cells.append("'" + text if text.startswith(_FORMULA_START) else text)
        self._csv.writerow(cells)
        self._pending += 1
        if self._pending >= _FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        self._sink.write(self._buffer.getvalue().encode())
        self._buffer.seek(0)
        self._buffer.truncate()
        self._pending = 0

    def close(self) -> None:
        self._flush()

    def abort(self) -> None:
        """Nothing of its own to clean up: the sink removes the file."""


class JsonLinesWriter:
    def __init__(self, sink: Sink, fields: Sequence[str]) -> None:
        self._sink = sink
        self._fields = list(fields)
        self._lines: list[str] = []

    def row(self, values: Sequence[Any]) -> None:
        record = {f: _json(v) for f, v in zip(self._fields, values, strict=True)}
        self._lines.append(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
        if len(self._lines) >= _FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._lines:
            self._sink.write(("\n".join(self._lines) + "\n").encode())
            self._lines = []

    def close(self) -> None:
        self._flush()

    def abort(self) -> None:
        """Nothing of its own to clean up: the sink removes the file."""


class XlsxWriter:
    """xlsxwriter needs a file: it writes one (constant_memory: row by row, flushed) in a
    private temporary directory, then copies it into the sink and removes it."""

    def __init__(self, sink: Sink, fields: Sequence[str], properties: dict[str, str]) -> None:
        self._sink = sink
        self._dir = tempfile.TemporaryDirectory(prefix="caravan-export-")
        self._path = Path(self._dir.name) / "export.xlsx"
        self._book = xlsxwriter.Workbook(
            str(self._path), {"constant_memory": True, "tmpdir": self._dir.name}
        )
        self._book.set_properties(
            {"title": properties.get("title", ""), "comments": properties.get("mark", "")}
        )
        for name, value in properties.items():
            self._book.set_custom_property(f"caravan_{name}", value)
        self._sheet = self._book.add_worksheet("export")
        self._row = 0
        self.row(list(fields))

    def row(self, values: Sequence[Any]) -> None:
        for col, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, bool):
                self._sheet.write_boolean(self._row, col, value)
            elif isinstance(value, int | float | Decimal):
                self._sheet.write_number(self._row, col, float(value))
            else:
                self._sheet.write_string(self._row, col, _text(value))
        self._row += 1

    def close(self) -> None:
        try:
            self._book.close()
            with open(self._path, "rb") as handle:
                while chunk := handle.read(256 * 1024):
                    self._sink.write(chunk)
        finally:
            self._dir.cleanup()

    def abort(self) -> None:
        self._dir.cleanup()  # the plaintext workbook never outlives a failed export


def open_writer(
    fmt: str, sink: Sink, fields: Sequence[str], properties: dict[str, str]
) -> RowWriter:
    if fmt == "csv":
        return CsvWriter(sink, fields)
    if fmt == "jsonl":
        return JsonLinesWriter(sink, fields)
    return XlsxWriter(sink, fields, properties)
