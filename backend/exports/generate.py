"""Which rows an export takes, and writing them: streamed from a server-side cursor inside the
tenant transaction, in the requester's scope, only the fields decided, never all in memory."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.errors import Forbidden, ValidationFailed
from backend.exports.storage import EncryptedWriter
from backend.exports.watermark import canary_position
from backend.exports.writers import open_writer
from backend.policy.access import EntityAccess
from backend.records.listing import ListQuery, build_list_query
from backend.records.service import RecordService

FETCH_ROWS = 1000
FILTER_KEYS = ("q", "updated_since")


def parse_filter(service: RecordService, raw: Mapping[str, Any]) -> ListQuery:
    """The list endpoint's filters (q, updated_since and the entity's UUID filters)."""
    spec = service.spec
    for key in raw:
        if key not in FILTER_KEYS and key not in spec.filter_columns:
            raise ValidationFailed.one(f"filter.{key}", "unknown_field", "not a filter")
    for key, value in raw.items():
        if value is not None and not isinstance(value, str):
            raise ValidationFailed.one(f"filter.{key}", "invalid_type", "must be a string")
    return build_list_query(
        spec,
        limit=1,
        search=raw.get("q"),
        filters={name: raw.get(name) for name in spec.filter_columns},
        updated_since=raw.get("updated_since"),
    )


def selection(
    service: RecordService, ctx: RequestContext, access: EntityAccess, query: ListQuery
) -> ColumnElement[bool]:
    """The rows: the caller's export scope, narrowed by the filters. A filter or search never
    touches a field the caller may not read."""
    table = service.table
    access.require_fields("read", set(query.filters))
    conditions = [service.visible(ctx, access, "export")]
    conditions += [table.c[name] == value for name, value in query.filters.items()]
    if query.updated_since is not None:
        conditions.append(table.c.updated_at >= query.updated_since)
    if query.search:
        readable = access.readable("read")
        columns = [c for c in service.spec.search_columns if c in readable]
        if not columns:
            raise Forbidden("you may not read any field this search covers", field="filter.q")
        term = query.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(or_(*(table.c[c].ilike(f"%{term}%", escape="\\") for c in columns)))
    return and_(*conditions)


async def count_rows(
    conn: AsyncConnection, service: RecordService, where: ColumnElement[bool]
) -> int:
    stmt = select(func.count()).select_from(service.table).where(where)
    return int((await conn.execute(stmt)).scalar_one())


@dataclass(frozen=True)
class Written:
    rows: int
    size: int
    key: bytes


async def write_file(
    conn: AsyncConnection,
    stmt: Select[Any],
    *,
    fmt: str,
    fields: Sequence[str],
    expected_rows: int,
    canary: str,
    properties: dict[str, str],
    sink: EncryptedWriter,
) -> Written:
    """Stream `stmt` into the encrypted file, with the watermark row in the middle."""
    writer = open_writer(fmt, sink, fields, properties)
    position = canary_position(expected_rows)
    written = 0

    def write(rows: Sequence[Sequence[Any]], last: bool) -> None:
        """One partition, in a worker thread: formatting and encrypting are CPU work (XLSX
        most of all) that must not hold up the event loop."""
        nonlocal written
        for row in rows:
            if written == position:
                writer.row([canary] * len(fields))
            writer.row(list(row))
            written += 1
        if last:
            if written <= position:  # fewer rows than counted: the mark goes last
                writer.row([canary] * len(fields))
            writer.close()
            sink.close()

    try:
        result = await conn.stream(stmt.execution_options(yield_per=FETCH_ROWS))
        async for partition in result.partitions(FETCH_ROWS):
            await asyncio.to_thread(write, partition, False)
        await asyncio.to_thread(write, [], True)
    except BaseException:
        writer.abort()
        sink.abort()
        raise
    rows = written
    return Written(rows=rows, size=sink.size, key=sink.key)


def export_statement(
    service: RecordService, fields: Sequence[str], where: ColumnElement[bool], decided_rows: int
) -> Select[Any]:
    """Never more rows than were decided on (rows added since then wait for another export)."""
    table = service.table
    # A custom field `custom.<key>` is its JSON value (choose_fields checked the caller may
    # export it: permission `export` on `<entity>.cf_<key>`).
    columns = [
        table.c.custom[f.removeprefix("custom.")].label(f)
        if f.startswith("custom.")
        else table.c[f]
        for f in fields
    ]
    stmt = select(*columns).where(where).order_by(table.c.id)
    return stmt.limit(decided_rows)
