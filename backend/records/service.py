"""The generic tenant record service: the one path every read and write of tenant data takes.

Every call, in order: (1) the caller's principal and tenant come from the RequestContext;
(2) the token's scope ceiling is checked; (3) inside the tenant's transaction, the caller's
compiled access for the entity decides the action, the record scope (a SQL condition: own /
team / tenant) and the fields: reads are masked, writes naming a forbidden field are refused,
filters, sorts and searches never touch a field the caller may not read; (4) writes validate
every field before touching the database and updates are guarded by the record version.
Controllers and resolvers call this and nothing below it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from asyncpg.exceptions import (
    DeadlockDetectedError,
    ForeignKeyViolationError,
    NotNullViolationError,
    UniqueViolationError,
)
from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.custom_fields import records as custom_fields
from backend.custom_fields.values import merge_custom, split_custom
from backend.db.ids import uuid7
from backend.errors import Conflict, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from backend.history.changes import (
    last_version,
    record_created,
    record_deleted,
    record_updated,
)
from backend.policy.access import SYSTEM_FIELDS, EntityAccess, entity_access
from backend.policy.engine import RECORD_SCOPES
from backend.policy.record_scope import scope_condition
from backend.policy.scopes import require_scope
from backend.records.fields import validate_changes
from backend.records.hooks import BulkRead, after_bulk_read
from backend.records.listing import ListQuery, cursor_for, encode_cursor
from backend.records.spec import EntitySpec

Record = dict[str, Any]
Records = list[Record]  # named, because RecordService.list shadows `list` in its body
WITHHELD = "withheld_fields"  # on every record: the fields the caller's roles hide
# Every entity a record service serves, by name: the targets of custom reference fields.
SPECS: dict[str, EntitySpec] = {}
# Called inside a write's transaction with the record before and after (None: created /
# deleted), so derived data (e.g. the phone-number index) commits or fails with the change.
WriteHook = Callable[
    [AsyncConnection, RequestContext, EntitySpec, Record | None, Record | None], Awaitable[None]
]
# Called inside a create or update's transaction after validation, before the write, with the
# record as it was (None: created) and the validated values, which it may add to: the values a
# server assigns (a case's number, its due times). It may raise to refuse the write.
PrepareHook = Callable[
    [AsyncConnection, RequestContext, Record | None, dict[str, Any]], Awaitable[None]
]


def write_conflict() -> Conflict:
    """Two transactions each waited for a row the other held (e.g. two contacts made to report
    to each other at once): PostgreSQL aborted this one; a retry will see the other's change."""
    return Conflict(
        "another change to the same records ran at the same time; retry", code="write_conflict"
    )


@dataclass(frozen=True)
class Page:
    items: Records
    next_cursor: str | None


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class RecordService:
    def __init__(
        self,
        spec: EntitySpec,
        hooks: Sequence[WriteHook] = (),
        prepare: Sequence[PrepareHook] = (),
    ) -> None:
        self.spec = spec
        SPECS[spec.name] = spec
        self.hooks = tuple(hooks)
        self.prepare = tuple(prepare)
        self.table = spec.table
        # Every column but tenant_id is part of a record as callers see it.
        self._columns = [c for c in self.table.c if c.name != "tenant_id"]

    # -- access --------------------------------------------------------------------------
    async def access(self, ctx: RequestContext, conn: AsyncConnection, action: str) -> EntityAccess:
        require_scope(ctx, action)  # the token's ceiling; inside the transaction, so audited
        access = await entity_access(ctx, conn, self.spec)
        access.require(action)
        return access

    def visible(
        self, ctx: RequestContext, access: EntityAccess, action: str
    ) -> ColumnElement[bool]:
        """Tenant filter plus the record scope for `action`, as one SQL condition."""
        return scope_condition(self.table, ctx, access.scopes.get(action, "own"))

    @staticmethod
    def _mask(record: Record, access: EntityAccess) -> Record:
        readable = access.readable("read")
        shown = {k: v for k, v in record.items() if k in readable}
        if "custom" in record:
            shown["custom"] = custom_fields.visible_custom(record["custom"], access, "read")
        shown[WITHHELD] = access.withheld("read")
        return shown

    # -- reads ---------------------------------------------------------------------------
    async def get(self, ctx: RequestContext, record_id: uuid.UUID | str) -> Record:
        key = self.parse_id(record_id)
        async with ctx.session.transaction() as conn:
            access = await self.access(ctx, conn, "read")
            row = await self.fetch(conn, self.visible(ctx, access, "read"), key)
        if row is None:
            raise NotFound(f"{self.spec.name} not found")
        return self._mask(row, access)

    async def get_many(
        self, ctx: RequestContext, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, Record]:
        """Batch read for DataLoaders: the records among `ids` the caller may see."""
        if not ids:
            return {}
        async with ctx.session.transaction() as conn:
            return await self.read_many(ctx, conn, ids)

    async def read_many(
        self,
        ctx: RequestContext,
        conn: AsyncConnection,
        ids: Sequence[uuid.UUID],
        how: str = "get_many",
    ) -> dict[uuid.UUID, Record]:
        """`get_many` on a transaction the caller holds (delta sync reads in one). Charged to
        the caller's read budget as `how`."""
        access = await self.access(ctx, conn, "read")
        stmt = select(*self._columns).where(
            self.visible(ctx, access, "read"), self.table.c.id.in_(list(set(ids)))
        )
        rows = (await conn.execute(stmt)).mappings().all()
        await self._after_read(ctx, conn, access, len(rows), how)
        return {row["id"]: self._mask(dict(row), access) for row in rows}

    async def read_page(
        self, ctx: RequestContext, conn: AsyncConnection, after: uuid.UUID | None, limit: int
    ) -> Records:
        """The caller's visible records by id after `after`, masked: a sync's working set
        (charged to the caller's read budget)."""
        access = await self.access(ctx, conn, "read")
        stmt = select(*self._columns).where(self.visible(ctx, access, "read"))
        if after is not None:
            stmt = stmt.where(self.table.c.id > after)
        stmt = stmt.order_by(self.table.c.id).limit(limit)
        rows = (await conn.execute(stmt)).mappings().all()
        await self._after_read(ctx, conn, access, len(rows), "sync")
        return [self._mask(dict(row), access) for row in rows]

    async def list(self, ctx: RequestContext, query: ListQuery) -> Page:
        table = self.table
        async with ctx.session.transaction() as conn:
            access = await self.access(ctx, conn, "read")
            # No side channel: a filter or sort on a field the caller cannot read is refused,
            # and a search covers only the searchable fields the caller can read.
            access.require_fields(
                "read",
                set(query.filters)
                | query.filtered_fields
                | {f for name in query.entity_filters for f in self.spec.list_filters[name].fields}
                | {query.sort_column}
                | custom_fields.sent_names(query.custom_filters),
            )
            custom_sort = query.sort_column.startswith("custom.")
            sort_col = (
                custom_fields.sort_expression(table, access, query.sort_column[7:])
                if custom_sort
                else query.sort_expression(table)
            )
            conditions = query.conditions(table) + [
                custom_fields.filter_condition(table, access, key, raw)
                for key, raw in query.custom_filters.items()
            ]
            extra = [sort_col.label("_sort")] if custom_sort else []
            stmt = select(*self._columns, *extra).where(self.visible(ctx, access, "read"))
            for name, value in query.filters.items():
                stmt = stmt.where(table.c[name] == value)
            for condition in conditions:
                stmt = stmt.where(condition)
            for name, raw in query.entity_filters.items():
                stmt = stmt.where(self.spec.list_filters[name].condition(raw))
            if query.updated_since is not None:
                stmt = stmt.where(table.c.updated_at >= query.updated_since)
            if query.search:
                stmt = stmt.where(self._search(access, query.search))
            keys = [table.c.id] if query.sort_column == "id" else [sort_col, table.c.id]
            if query.after is not None:
                bound = (
                    custom_fields.sort_bound(access, query.sort_column[7:], query.after.value)
                    if custom_sort
                    else query.after.value
                )
                values = (
                    [query.after.last_id]
                    if query.sort_column == "id"
                    else [bound, query.after.last_id]
                )
                left, right = tuple_(*keys), tuple_(*values)
                stmt = stmt.where(left < right if query.descending else left > right)
            stmt = stmt.order_by(*(k.desc() if query.descending else k.asc() for k in keys))
            stmt = stmt.limit(query.limit + 1)
            rows = [dict(r) for r in (await conn.execute(stmt)).mappings().all()]
            await self._after_read(ctx, conn, access, min(len(rows), query.limit), "list")
        next_cursor = None
        if len(rows) > query.limit:
            rows = rows[: query.limit]
            last = rows[-1]
            next_cursor = (
                encode_cursor(query.sort, str(last["_sort"]), last["id"])
                if "_sort" in last
                else cursor_for(query, last)
            )
        return Page(items=[self._mask(r, access) for r in rows], next_cursor=next_cursor)

    async def _after_read(
        self, ctx: RequestContext, conn: AsyncConnection, access: EntityAccess, rows: int, how: str
    ) -> None:
        """A bulk read runs the read hooks (the read budget among them: records/hooks.py)."""
        fields = tuple(sorted(access.readable("read")))
        read = BulkRead(self.spec.name, rows, fields, f"{ctx.channel}:{how}")
        await after_bulk_read(ctx, conn, read)

    def _search(self, access: EntityAccess, term: str) -> ColumnElement[bool]:
        readable = access.readable("read")
        columns = [c for c in self.spec.search_columns if c in readable]
        pattern = f"%{_escape_like(term)}%"
        custom = custom_fields.search_terms(self.table, access, pattern)
        if not columns and not custom:
            raise Forbidden(
                "you may not read any field this search covers", field="q", code="field_forbidden"
            )
        return or_(*(self.table.c[c].ilike(pattern, escape="\\") for c in columns), *custom)

    async def list_by(
        self, ctx: RequestContext, column: str, values: Iterable[uuid.UUID], limit: int
    ) -> dict[uuid.UUID, Records]:
        """The first `limit` records (by id) for each value of `column`, in one query: for
        DataLoaders resolving nested lists without one query per parent."""
        keys = list(set(values))
        if not keys:
            return {}
        async with ctx.session.transaction() as conn:
            access = await self.access(ctx, conn, "read")
            access.require_fields("read", {column})
            rank = (
                func.row_number()
                .over(partition_by=self.table.c[column], order_by=self.table.c.id)
                .label("_rank")
            )
            inner = (
                select(*self._columns, rank)
                .where(self.visible(ctx, access, "read"), self.table.c[column].in_(keys))
                .subquery()
            )
            stmt = (
                select(*(inner.c[c.name] for c in self._columns))
                .where(inner.c._rank <= limit)
                .order_by(inner.c[column], inner.c.id)
            )
            rows = (await conn.execute(stmt)).mappings().all()
            await self._after_read(ctx, conn, access, len(rows), "list_by")
        grouped: dict[uuid.UUID, Records] = {key: [] for key in keys}
        for row in rows:
            grouped[row[column]].append(self._mask(dict(row), access))
        return grouped

    # -- writes --------------------------------------------------------------------------
    async def derive(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        values: dict[str, Any],
        before: Record | None,
        nested: Mapping[str, Any],
    ) -> None:
        """Inside a write's transaction, once the sent fields are checked and before the row is
        written (`before`: None on create): an entity's server-computed values go into `values`
        (e.g. an order's totals), and its nested lists (`spec.nested`, e.g. order lines) are
        written. Nothing by default."""

    def _take_nested(self, builtin: dict[str, Any]) -> dict[str, Any]:
        return {n.name: builtin.pop(n.name) for n in self.spec.nested if n.name in builtin}

    async def create(self, ctx: RequestContext, data: Mapping[str, Any]) -> Record:
        async with ctx.session.transaction() as conn:
            access = await self.access(ctx, conn, "create")
            builtin, custom = split_custom(data)
            nested = self._take_nested(builtin)
            # Permission before validation: a forbidden field is refused whatever its value,
            # so the validation rules of a field the caller may not write never show.
            access.require_fields("create", set(builtin) | custom_fields.sent_names(custom))
            values = validate_changes(self.spec.fields, builtin, creating=True)
            values["custom"] = merge_custom(
                access.custom,
                custom or {},
                {},
                creating=True,
                writable=access.fields.get("create", frozenset()),
            )
            values.update(tenant_id=ctx.tenant_id, id=uuid7())
            if "owner_id" in self.table.c:
                # A new record's owner is the user who created it.
                values["owner_id"] = ctx.user_id
            for prepare in self.prepare:
                await prepare(conn, ctx, None, values)
            await self.derive(conn, ctx, values, None, nested)
            stmt = insert(self.table).values(values).returning(*self._columns)
            await self._check_references(conn, ctx, values)
            await self._check_custom_references(conn, ctx, access, custom)
            row = await self._write(conn, stmt)
            assert row is not None
            await record_created(conn, ctx, self.spec.name, row)
            await self._after_write(conn, ctx, None, row)
        return self._mask(row, access)

    async def restore(self, ctx: RequestContext, snapshot: Mapping[str, Any]) -> Record:
        """Undelete: re-create a deleted record with its id and owner, from its last snapshot
        (see backend/history/revert.py). The caller needs create on it and its fields. Its
        version continues past the highest it ever had: a version never repeats for an id,
        so an If-Match or ETag from before the delete can never match the restored record."""
        key = self.parse_id(str(snapshot.get("id")))
        data = {
            name: value
            for name, value in snapshot.items()
            if name in self.spec.fields and self.spec.fields[name].on_create
        }
        async with ctx.session.transaction() as conn:
            access = await self.access(ctx, conn, "create")
            # Custom values of fields still defined come back too (a removed field's stay gone).
            kept = snapshot.get("custom")
            custom = {
                k: v
                for k, v in (kept if isinstance(kept, Mapping) else {}).items()
                if k in access.custom
            }
            access.require_fields("create", set(data) | custom_fields.sent_names(custom))
            values = validate_changes(self.spec.fields, data, creating=True)
            values["custom"] = merge_custom(
                access.custom, custom, {}, creating=False, writable=frozenset()
            )
            previous = await last_version(conn, ctx.tenant_id, self.spec.name, key)
            values.update(tenant_id=ctx.tenant_id, id=key, version=previous + 1)
            if "owner_id" in self.table.c:
                values["owner_id"] = self.parse_id(str(snapshot.get("owner_id") or ctx.user_id))
            for prepare in self.prepare:  # server-assigned values are assigned afresh
                await prepare(conn, ctx, None, values)
            await self.derive(conn, ctx, values, None, {})
            stmt = insert(self.table).values(values).returning(*self._columns)
            await self._check_references(conn, ctx, values)
            await self._check_custom_references(conn, ctx, access, custom)
            row = await self._write(conn, stmt)
            assert row is not None
            await record_created(conn, ctx, self.spec.name, row, event="restore")
            await self._after_write(conn, ctx, None, row)
        return self._mask(row, access)

    async def update(
        self,
        ctx: RequestContext,
        record_id: uuid.UUID | str,
        data: Mapping[str, Any],
        expected_version: int,
        *,
        server_values: Mapping[str, Any] | None = None,
    ) -> Record:
        """`server_values`: fields the server itself sets (e.g. a lead's conversion links),
        never taken from a client: written without the writability and field-policy checks
        of `data`, but with the same record scope, version guard, history and hooks."""
        key = self.parse_id(record_id)
        table = self.table
        async with ctx.session.transaction() as conn:
            access = await self.access(ctx, conn, "update")
            builtin, custom = split_custom(data)
            nested = self._take_nested(builtin)
            # Before validation, as on create.
            access.require_fields("update", set(builtin) | custom_fields.sent_names(custom))
            values = validate_changes(self.spec.fields, builtin, creating=False)
            values.update(server_values or {})
            visible = self.visible(ctx, access, "update")
            # The row as it was, locked: its old values go into the change history.
            before = await self.fetch(conn, visible, key, lock=True)
            if before is None:
                raise NotFound(f"{self.spec.name} not found")
            if before["version"] != expected_version:
                raise self._stale(before["version"])
            for prepare in self.prepare:
                await prepare(conn, ctx, before, values)
            await self.derive(conn, ctx, values, before, nested)
            if custom is not None:  # merged into the stored values: `null` clears a key
                values["custom"] = merge_custom(
                    access.custom,
                    custom,
                    before.get("custom") or {},
                    creating=False,
                    writable=access.fields.get("update", frozenset()),
                )
            # Only what differs is written; an update that changes nothing writes nothing (no
            # new version, no history, so no sync change either).
            values = {k: v for k, v in values.items() if before.get(k) != v}
            row = before
            if values:
                stmt = (
                    update(table)
                    .where(visible, table.c.id == key)
                    .values(**values, version=table.c.version + 1, updated_at=func.now())
                    .returning(*self._columns)
                )
                await self._check_references(conn, ctx, values)
                await self._check_custom_references(conn, ctx, access, custom)
                written = await self._write(conn, stmt)
                assert written is not None
                row = written
                await record_updated(conn, ctx, self.spec.name, before, row)
                await self._after_write(conn, ctx, before, row)
            # Changed within the update scope, but shown only within the read scope.
            wider = access.may("read") and RECORD_SCOPES.index(
                access.scopes["update"]
            ) > RECORD_SCOPES.index(access.scopes["read"])
            if wider and await self.fetch(conn, self.visible(ctx, access, "read"), key) is None:
                hidden = {k: v for k, v in row.items() if k in SYSTEM_FIELDS}
                return {**hidden, WITHHELD: sorted(access.all_fields)}
        return self._mask(row, access)

    async def delete(
        self, ctx: RequestContext, record_id: uuid.UUID | str, expected_version: int | None
    ) -> None:
        key = self.parse_id(record_id)
        async with ctx.session.transaction() as conn:
            access = await self.access(ctx, conn, "delete")
            visible = self.visible(ctx, access, "delete")
            conditions = [visible, self.table.c.id == key]
            if expected_version is not None:
                conditions.append(self.table.c.version == expected_version)
            stmt = delete(self.table).where(and_(*conditions)).returning(*self._columns)
            deleted = (await conn.execute(stmt)).mappings().first()
            if deleted is None:
                await self._explain_missing(conn, visible, key)
            assert deleted is not None
            await record_deleted(conn, ctx, self.spec.name, dict(deleted))
            await self._after_write(conn, ctx, dict(deleted), None)

    # -- helpers -------------------------------------------------------------------------
    async def _after_write(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        before: Record | None,
        after: Record | None,
    ) -> None:
        for hook in self.hooks:
            await hook(conn, ctx, self.spec, before, after)

    def parse_id(self, record_id: uuid.UUID | str) -> uuid.UUID:
        if isinstance(record_id, uuid.UUID):
            return record_id
        try:
            return uuid.UUID(record_id)
        except (ValueError, AttributeError, TypeError):
            # A malformed id names no record: the same answer as a missing one.
            raise NotFound(f"{self.spec.name} not found") from None

    async def fetch(
        self,
        conn: AsyncConnection,
        visible: ColumnElement[bool],
        key: uuid.UUID,
        *,
        lock: bool = False,
    ) -> Record | None:
        stmt = select(*self._columns).where(visible, self.table.c.id == key)
        if lock:
            stmt = stmt.with_for_update()
        row = (await conn.execute(stmt)).mappings().first()
        return dict(row) if row is not None else None

    async def _explain_missing(
        self, conn: AsyncConnection, visible: ColumnElement[bool], key: uuid.UUID
    ) -> None:
        """A guarded write touched no row: not found (or out of scope), or the version moved."""
        current = await self.fetch(conn, visible, key)
        if current is None:
            raise NotFound(f"{self.spec.name} not found")
        raise self._stale(current["version"])

    def _stale(self, version: int) -> PreconditionFailed:
        return PreconditionFailed(
            f"{self.spec.name} is at version {version}; reload and retry", field="version"
        )

    async def _check_references(
        self, conn: AsyncConnection, ctx: RequestContext, values: Mapping[str, Any]
    ) -> None:
        """A reference must name a record of this tenant that the caller may read (in scope):
        otherwise linking would reveal, or attach to, records the caller cannot see."""
        for field_name, target in self.spec.references.items():
            ref = values.get(field_name)
            if ref is not None:
                await self._check_reference(conn, ctx, field_name, target, ref)

    async def _check_custom_references(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        access: EntityAccess,
        custom: Mapping[str, Any] | None,
    ) -> None:
        """Custom `reference` values (already validated as UUIDs) obey the same rule."""
        for key, ref in (custom or {}).items():
            definition = access.custom.get(key)
            if ref is None or definition is None or definition.type != "reference":
                continue
            target = SPECS.get(definition.target or "")
            if target is None:
                raise ValidationFailed.one(
                    definition.name, "unknown_reference", "names no such record"
                )
            await self._check_reference(conn, ctx, definition.name, target, uuid.UUID(str(ref)))

    async def _check_reference(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        field_name: str,
        target: Table | EntitySpec,
        ref: Any,
    ) -> None:
        if isinstance(target, EntitySpec):
            access = await entity_access(ctx, conn, target)
            if not access.may("read"):
                raise ValidationFailed.one(field_name, "unknown_reference", "names no such record")
            table = target.table
            condition = scope_condition(table, ctx, access.scopes["read"])
        else:
            table, condition = target, target.c.tenant_id == ctx.tenant_id
        stmt = select(table.c.id).where(condition, table.c.id == ref)
        if (await conn.execute(stmt)).first() is None:
            raise ValidationFailed.one(field_name, "unknown_reference", "names no such record")

    async def _write(self, conn: AsyncConnection, stmt: Any) -> Record | None:
        try:
            row = (await conn.execute(stmt)).mappings().first()
        except DBAPIError as exc:
            cause = getattr(exc.orig, "__cause__", None)
            if isinstance(cause, ForeignKeyViolationError):
                raise ValidationFailed.one(
                    "reference", "unknown_reference", "names no such record"
                ) from None
            if isinstance(cause, NotNullViolationError):  # e.g. owner_id: every record has one
                raise ValidationFailed.one(
                    cause.column_name or "body", "required", "must not be null"
                ) from None
            if isinstance(cause, UniqueViolationError):
                constraint = cause.constraint_name or ""
                field = next((f for f in self.spec.unique_fields if f in constraint), None)
                raise Conflict(
                    f"{self.spec.name} already exists", code="duplicate", field=field
                ) from None
            if isinstance(cause, DeadlockDetectedError):
                raise write_conflict() from None
            raise
        return dict(row) if row is not None else None
