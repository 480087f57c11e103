"""Reading an uploaded CSV file and its column mapping, and turning cells into field values.

Everything here runs before anything is written: a file that is too large, not UTF-8 or not
CSV, or a mapping naming an unknown column or field, is refused as a whole."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.api.boundary import unstorable
from backend.errors import CaravanError, ValidationFailed
from backend.records.spec import EntitySpec

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
CUSTOM_PREFIX = "custom."
# Cells of list fields (tags, custom multi_choice) hold their items separated by this.
LIST_SEPARATOR = ";"
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


class FileTooLarge(CaravanError):
    status = 413
    code = "file_too_large"
    title = "Payload too large"


@dataclass(frozen=True)
class CsvFile:
    header: list[str]
    # (row number, cells) of every non-blank record; row 1 is the first record after the
    # header, and blank records keep their number (it is the one the caller's sheet shows).
    rows: list[tuple[int, list[str]]]


def read_csv(raw: bytes) -> CsvFile:
    if len(raw) > MAX_FILE_BYTES:
        raise FileTooLarge(f"the file is over {MAX_FILE_BYTES} bytes", field="file")
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (Excel's UTF-8 export) is dropped
    except UnicodeDecodeError:
        raise ValidationFailed.one("file", "encoding", "the file must be UTF-8 text") from None
    if "\x00" in text:
        raise ValidationFailed.one("file", "invalid_characters", "the file contains NUL bytes")
    try:
        lines = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ValidationFailed.one("file", "malformed_csv", f"not valid CSV: {exc}") from None
    if not lines or not any(cell.strip() for cell in lines[0]):
        raise ValidationFailed.one("file", "empty", "the file has no header row")
    header = [cell.strip() for cell in lines[0]]
    rows = [(n, line) for n, line in enumerate(lines[1:], 1) if any(c.strip() for c in line)]
    if len(rows) > MAX_ROWS:
        raise ValidationFailed.one("file", "too_many_rows", f"at most {MAX_ROWS} rows per import")
    return CsvFile(header, rows)


def parse_mapping(raw: str | None) -> dict[str, str]:
    if not raw:
        raise ValidationFailed.one("mapping", "required", "a JSON object: CSV column -> field")
    try:
        mapping = json.loads(raw)
    except ValueError:
        raise ValidationFailed.one("mapping", "invalid_json", "must be a JSON object") from None
    if (
        not isinstance(mapping, dict)
        or not mapping
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())
    ):
        raise ValidationFailed.one(
            "mapping", "invalid_type", "must be a non-empty JSON object of column -> field name"
        )
    if any(unstorable(name) for pair in mapping.items() for name in pair):
        raise ValidationFailed.one(
            "mapping", "invalid_characters", "contains NUL or a lone surrogate"
        )
    targets = list(mapping.values())
    for target in targets:
        if targets.count(target) > 1:
            raise ValidationFailed.one(target, "mapped_twice", f"{target!r} is mapped twice")
    return mapping


def check_mapping(
    mapping: Mapping[str, str], header: list[str], spec: EntitySpec, custom_types: Mapping[str, str]
) -> dict[int, str]:
    """CSV column index -> field name. Every column must be in the header and every field
    writable on create (a built-in field, or `custom.<key>` of a live custom field)."""
    columns: dict[int, str] = {}
    for column, field in mapping.items():
        if column not in header:
            raise ValidationFailed.one(column, "unknown_column", f"no column {column!r} in file")
        if field.startswith(CUSTOM_PREFIX):
            if field[len(CUSTOM_PREFIX) :] not in custom_types:
                raise ValidationFailed.one(
                    field, "unknown_field", f"{field!r} is not a field of {spec.label}"
                )
        elif field not in spec.fields:
            raise ValidationFailed.one(
                field, "unknown_field", f"{field!r} is not a field of {spec.label}"
            )
        elif not spec.fields[field].on_create:
            raise ValidationFailed.one(field, "read_only", f"{field!r} cannot be imported")
        columns[header.index(column)] = field
    return columns


def _cell(kind: str, raw: str) -> Any:
    """A cell as the value the API would take (a string, but numbers and lists as such); a
    cell that does not convert is handed on as text, for validation to name the problem."""
    if kind in ("tags", "multi_choice"):
        return [item.strip() for item in raw.split(LIST_SEPARATOR) if item.strip()]
    if kind in ("integer", "number"):
        try:
            return int(raw)
        except ValueError:
            return raw
    if kind == "boolean" and raw.lower() in _TRUE | _FALSE:
        return raw.lower() in _TRUE
    return raw


def row_values(
    row: list[str], columns: Mapping[int, str], spec: EntitySpec, custom_types: Mapping[str, str]
) -> dict[str, Any]:
    """One CSV row as a record body: empty cells are left out (never clear a stored value)."""
    data: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for index, field in columns.items():
        raw = row[index].strip() if index < len(row) else ""
        if not raw:
            continue
        if field.startswith(CUSTOM_PREFIX):
            key = field[len(CUSTOM_PREFIX) :]
            custom[key] = _cell(custom_types[key], raw)
        else:
            data[field] = _cell(spec.fields[field].kind, raw)
    if custom:
        data["custom"] = custom
    return data
