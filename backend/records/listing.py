"""List queries: filters, sort order and opaque keyset cursors."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backend.errors import BadRequest
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
    # The entity's own filters (EntitySpec.list_filters): name -> raw value.
    entity_filters: dict[str, str] = field(default_factory=dict)

    @property
    def sort_column(self) -> str:
        return self.sort.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")


def _bad(field_name: str, code: str, message: str) -> BadRequest:
    return BadRequest(f"{field_name}: {message}", field=field_name, code=code)


def encode_cursor(sort: str, value: Any, last_id: uuid.UUID) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort, value, str(last_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_for(query: ListQuery, record: dict[str, Any]) -> str:
    """The cursor that resumes a list right after `record`."""
    value = None if query.sort_column == "id" else record[query.sort_column]
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
    return ListQuery(
        limit=limit,
        after=decode_cursor(after, sort) if after else None,
        search=search or None,
        filters=parsed_filters,
        custom_filters=parsed_custom,
        updated_since=since,
        sort=sort,
        entity_filters=own,
    )
