"""List queries: filters, sort order and opaque keyset cursors."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, Numeric, Table, func, literal

from backend.errors import BadRequest, ValidationFailed
from backend.records.spec import EntitySpec

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_SEARCH_LENGTH = 200
MAX_CUSTOM_FILTERS = 10
MAX_FILTER_VALUE = 2048
_CUSTOM_NAME = re.compile(r"^custom\.[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class Cursor:
    sort: str
    value: Any  # the sort column's value of the last row (None when sorting by id)
    last_id: uuid.UUID


@dataclass(frozen=True)
class ListQuery:
    limit: int = DEFAULT_LIMIT
    after: Cursor | None = None
    search: str | None = None
    filters: dict[str, uuid.UUID] = field(default_factory=dict)
    # `custom.<key>=value` filters: key -> the raw value (typed by the record service, which
    # knows the tenant's definitions).
    custom_filters: dict[str, str] = field(default_factory=dict)
    updated_since: datetime | None = None
    sort: str = "id"
    # Inclusive ranges on the spec's range columns: column -> (lowest, highest), either None.
    ranges: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    # Equality filters on choice fields (`?stage=proposal`): column -> value.
    choices: dict[str, str] = field(default_factory=dict)
    # `?status=open|done` on entities with a `completed_at` (activities): open is not completed.
    status: str | None = None
    # Sorting by a nullable numeric column: the key nulls take (above every value).
    null_sort_value: Decimal | None = None
    # The entity's own filters (EntitySpec.list_filters): name -> raw value.
    entity_filters: dict[str, str] = field(default_factory=dict)

    @property
    def sort_column(self) -> str:
        return self.sort.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    @property
    def filtered_fields(self) -> set[str]:
        """The fields the range, choice and status filters read (the caller must may read)."""
        status = {STATUS_COLUMN} if self.status is not None else set()
        return set(self.ranges) | set(self.choices) | status

    def conditions(self, table: Table) -> list[ColumnElement[bool]]:
        """The range, choice and status filters as SQL conditions."""
        found: list[ColumnElement[bool]] = []
        for name, (low, high) in self.ranges.items():
            if low is not None:
                found.append(table.c[name] >= low)
            if high is not None:
                found.append(table.c[name] <= high)
        found.extend(table.c[name] == value for name, value in self.choices.items())
        if self.status is not None:
            done = table.c[STATUS_COLUMN]
            found.append(done.is_(None) if self.status == "open" else done.is_not(None))
        return found

    def sort_expression(self, table: Table) -> ColumnElement[Any]:
        """The built-in sort column, or for a nullable numeric one a key with nulls last."""
        column = table.c[self.sort_column]
        if self.null_sort_value is None:
            return column
        # An unconstrained numeric: the key is beyond the column's own precision.
        return func.coalesce(column, literal(self.null_sort_value, Numeric()))


STATUS_COLUMN = "completed_at"
STATUSES = ("open", "done")
# Range parameter suffixes by field kind: numbers `_min`/`_max`, dates and times `_from`/`_to`.
_RANGE_SUFFIXES = {
    "decimal": ("_min", "_max"),
    "integer": ("_min", "_max"),
    "date": ("_from", "_to"),
    "datetime": ("_from", "_to"),
}


def _bad(field_name: str, code: str, message: str) -> BadRequest:
    return BadRequest(f"{field_name}: {message}", field=field_name, code=code)


def range_params(spec: EntitySpec) -> dict[str, tuple[str, int, str]]:
    """The list parameters of the spec's range columns: name -> (column, 0 low / 1 high, kind)."""
    params: dict[str, tuple[str, int, str]] = {}
    for column in spec.range_columns:
        kind = spec.fields[column].kind
        for bound, suffix in enumerate(_RANGE_SUFFIXES[kind]):
            params[f"{column}{suffix}"] = (column, bound, kind)
    return params


def choice_filters(spec: EntitySpec) -> dict[str, tuple[str, ...]]:
    """Equality filters: every choice field (name -> its choices), and `status` (open / done)
    where the entity has a `completed_at` and no field of that name."""
    found = {f.name: f.choices for f in spec.fields.values() if f.kind == "choice"}
    if STATUS_COLUMN in spec.table.c and "status" not in spec.fields:
        found["status"] = STATUSES
    return found


def _invalid(param: str, code: str, message: str) -> ValidationFailed:
    return ValidationFailed.one(param, code, message)


def _range_value(param: str, kind: str, raw: Any) -> Any:
    if kind in ("decimal", "integer"):
        try:
            number = raw if isinstance(raw, Decimal | int) else Decimal(str(raw).strip())
        except InvalidOperation:
            raise _invalid(param, "invalid_number", "must be a number") from None
        if isinstance(raw, bool) or not Decimal(number).is_finite():
            raise _invalid(param, "invalid_number", "must be a finite number")
        if abs(Decimal(number)) >= Decimal(10) ** 15:
            raise _invalid(param, "out_of_range", "is out of range")
        return number
    if kind == "date":
        if isinstance(raw, date) and not isinstance(raw, datetime):
            return raw
        try:
            if not isinstance(raw, str) or len(raw) != 10:
                raise ValueError(raw)
            return date.fromisoformat(raw)
        except ValueError:
            raise _invalid(param, "invalid_date", "must be a date, YYYY-MM-DD") from None
    if isinstance(raw, datetime):
        return in_utc(param, raw)
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError:
        raise _invalid(param, "invalid_datetime", "must be an ISO 8601 date-time") from None
    return in_utc(param, value)


def _parse_ranges(spec: EntitySpec, raw: Mapping[str, Any] | None) -> dict[str, tuple[Any, Any]]:
    params = range_params(spec)
    bounds: dict[str, list[Any]] = {}
    for param, value in (raw or {}).items():
        if value is None:
            continue
        if param not in params:
            raise _invalid(param, "unknown_filter", "is not a filter of this list")
        column, bound, kind = params[param]
        bounds.setdefault(column, [None, None])[bound] = _range_value(param, kind, value)
    for column, (low, high) in bounds.items():
        if low is not None and high is not None and low > high:
            param = next(p for p, (c, b, _) in params.items() if c == column and b == 0)
            raise _invalid(param, "empty_range", "must not be above the range's upper end")
    return {column: (low, high) for column, (low, high) in bounds.items()}


def _parse_choices(
    spec: EntitySpec, raw: Mapping[str, str | None] | None
) -> tuple[dict[str, str], str | None]:
    allowed = choice_filters(spec)
    found: dict[str, str] = {}
    for name, value in (raw or {}).items():
        if value is None:
            continue
        if name not in allowed:
            raise _invalid(name, "unknown_filter", "is not a filter of this list")
        if value not in allowed[name]:
            raise _invalid(name, "invalid_choice", f"must be one of {', '.join(allowed[name])}")
        found[name] = value
    status = found.pop("status", None) if "status" not in spec.fields else None
    return found, status


def _null_sort_value(spec: EntitySpec, column: str) -> Decimal | None:
    """Nulls of a nullable decimal sort column sort as 10^(precision - scale): above them all."""
    col = spec.table.c.get(column)
    if col is None or not col.nullable:
        return None
    precision: int | None = getattr(col.type, "precision", None)
    scale: int = getattr(col.type, "scale", None) or 0
    if precision is None:
        raise ValueError(f"{spec.name}: sort column {column} is nullable and not a decimal")
    return Decimal(10) ** (precision - scale)


def _typed_cursor(spec: EntitySpec, cursor: Cursor) -> Cursor:
    """A cursor's value as the sort column's type (dates and decimals travel as strings)."""
    column = cursor.sort.removeprefix("-")
    kind = spec.fields[column].kind if column in spec.fields else None
    try:
        if kind == "date":
            return replace(cursor, value=date.fromisoformat(cursor.value))
        if kind in ("decimal", "integer"):
            value = Decimal(cursor.value)
            if not value.is_finite():
                raise ValueError(cursor.value)
            return replace(cursor, value=value)
    except (ValueError, InvalidOperation):
        raise _bad("after", "invalid_cursor", "is not a cursor this list returned") from None
    return cursor


def encode_cursor(sort: str, value: Any, last_id: uuid.UUID) -> str:
    if isinstance(value, date | Decimal):  # a datetime is a date too
        value = value.isoformat() if isinstance(value, date) else str(value)
    raw = json.dumps([sort, value, str(last_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_for(query: ListQuery, record: dict[str, Any]) -> str:
    """The cursor that resumes a list right after `record`."""
    value = None if query.sort_column == "id" else record[query.sort_column]
    if value is None and query.null_sort_value is not None:
        value = query.null_sort_value
    return encode_cursor(query.sort, value, record["id"])


def decode_cursor(token: str, sort: str) -> Cursor:
    try:
        padded = token + "=" * (-len(token) % 4)
        sort_in, value, last_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if sort_in != sort:
            raise ValueError("cursor belongs to another sort order")
        column = sort.removeprefix("-")
        if column.endswith("_at") and not column.startswith("custom."):
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError("cursor times carry a time zone")
            value = value.astimezone(UTC)  # OverflowError when out of range
        elif column == "id":
            value = None
        elif not isinstance(value, str) or "\x00" in value:  # PostgreSQL text cannot hold NUL
            raise ValueError("bad value")
        if not isinstance(last_id, str):
            raise ValueError("bad id")
        return Cursor(sort=sort, value=value, last_id=uuid.UUID(last_id))
    except (
        ValueError,
        TypeError,
        OverflowError,
        binascii.Error,
        UnicodeDecodeError,
        json.JSONDecodeError,
    ):
        raise _bad("after", "invalid_cursor", "is not a cursor this list returned") from None


def parse_datetime(field_name: str, raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise _bad(field_name, "invalid_datetime", "must be an ISO 8601 date-time") from None
    return in_utc(field_name, value)


def in_utc(field_name: str, value: datetime) -> datetime:
    """An aware UTC time (naive means UTC); refused when UTC cannot represent it."""
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise _bad(field_name, "invalid_datetime", "is out of range") from None


def parse_uuid(field_name: str, raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise _bad(field_name, "invalid_uuid", "must be a UUID") from None


def build_list_query(
    spec: EntitySpec,
    *,
    limit: int | None = None,
    after: str | None = None,
    search: str | None = None,
    filters: dict[str, str | uuid.UUID | None] | None = None,
    updated_since: str | datetime | None = None,
    sort: str | None = None,
    custom_filters: dict[str, str] | None = None,
    ranges: Mapping[str, Any] | None = None,
    choices: Mapping[str, str | None] | None = None,
    entity_filters: dict[str, str | None] | None = None,
) -> ListQuery:
    """Validate raw list parameters (from either skin) into a ListQuery."""
    if limit is None:
        limit = DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise _bad("limit", "out_of_range", f"must be between 1 and {MAX_LIMIT}")
    sort = sort or "id"
    column = sort.removeprefix("-")
    # `custom.<key>`: whether the tenant defined it is checked by the record service.
    if column not in spec.sort_columns and not _CUSTOM_NAME.match(column):
        allowed = ", ".join(spec.sort_columns)
        raise _bad("sort", "invalid_sort", f"must be one of {allowed}, optionally with '-'")
    if search is not None and len(search) > MAX_SEARCH_LENGTH:
        raise _bad("q", "too_long", f"must be at most {MAX_SEARCH_LENGTH} characters")
    if search is not None and "\x00" in search:
        raise _bad("q", "invalid_characters", "contains control characters")
    parsed_filters: dict[str, uuid.UUID] = {}
    for name, raw in (filters or {}).items():
        if name not in spec.filter_columns:
            raise _bad(name, "unknown_filter", "is not a filter of this list")
        if raw is not None:
            parsed_filters[name] = raw if isinstance(raw, uuid.UUID) else parse_uuid(name, raw)
    parsed_custom: dict[str, str] = {}
    if len(custom_filters or {}) > MAX_CUSTOM_FILTERS:
        raise _bad("custom", "too_many_filters", f"at most {MAX_CUSTOM_FILTERS} custom filters")
    for name, raw in (custom_filters or {}).items():
        if not _CUSTOM_NAME.match(name):
            raise _bad(name, "unknown_filter", "is not a filter of this list")
        if len(raw) > MAX_FILTER_VALUE or "\x00" in raw:
            raise _bad(name, "invalid_filter", f"at most {MAX_FILTER_VALUE} printable characters")
        parsed_custom[name.removeprefix("custom.")] = raw
    own: dict[str, str] = {}
    for name, raw in (entity_filters or {}).items():
        if name not in spec.list_filters:
            raise _bad(name, "unknown_filter", "is not a filter of this list")
        if raw is not None:
            if len(raw) > MAX_FILTER_VALUE or "\x00" in raw:
                raise _bad(name, "invalid_filter", f"at most {MAX_FILTER_VALUE} characters")
            spec.list_filters[name].condition(raw)  # refuse a bad value before any query
            own[name] = raw
    since = updated_since
    if isinstance(since, str):
        since = parse_datetime("updated_since", since)
    elif since is not None:
        since = in_utc("updated_since", since)
    parsed_ranges = _parse_ranges(spec, ranges)
    parsed_choices, status = _parse_choices(spec, choices)
    cursor = _typed_cursor(spec, decode_cursor(after, sort)) if after else None
    return ListQuery(
        limit=limit,
        after=cursor,
        ranges=parsed_ranges,
        choices=parsed_choices,
        status=status,
        null_sort_value=_null_sort_value(spec, column),
        search=search or None,
        filters=parsed_filters,
        custom_filters=parsed_custom,
        updated_since=since,
        sort=sort,
        entity_filters=own,
    )
