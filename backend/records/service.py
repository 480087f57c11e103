"""The generic tenant record service: the one path every read and write of tenant data takes.

Steps, in order, for every call: (1) the caller's principal and tenant come from the
RequestContext; (2) the query is filtered by tenant in SQL (and RLS holds underneath);
(3) writes validate every field before touching the database; (4) updates are guarded by the
record version; (5) reads return plain dicts the skins shape. Access policy (issue: field-level
access) and change history plug in here, never in a controller or resolver.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from asyncpg.exceptions import ForeignKeyViolationError, UniqueViolationError
from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.db.ids import uuid7
from backend.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from backend.policy.scopes import require_scope
from backend.records.fields import validate_changes
from backend.records.listing import ListQuery, cursor_for
from backend.records.spec import EntitySpec

Record = dict[str, Any]
Records = list[Record]  # named, because RecordService.list shadows `list` in its body


@dataclass(frozen=True)
class Page:
    items: Records
    next_cursor: str | None


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class RecordService:
    def __init__(self, spec: EntitySpec) -> None:
        self.spec = spec
        self.table = spec.table
        # Every column but tenant_id is part of a record as callers see it.
        self._columns = [c for c in self.table.c if c.name != "tenant_id"]

    # -- reads ---------------------------------------------------------------------------
    def _tenant_filter(self, ctx: RequestContext) -> ColumnElement[bool]:
        return self.table.c.tenant_id == ctx.tenant_id

    async def get(self, ctx: RequestContext, record_id: uuid.UUID | str) -> Record:
        require_scope(ctx, "read")
        key = self._parse_id(record_id)
        async with ctx.session.transaction() as conn:
            row = await self._fetch(conn, ctx, key)
        if row is None:
            raise NotFound(f"{self.spec.name} not found")
        return row

    async def get_many(
        self, ctx: RequestContext, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, Record]:
        """Batch read for DataLoaders: the records among `ids` the caller may see."""
        require_scope(ctx, "read")
        if not ids:
            return {}
        stmt = select(*self._columns).where(
            self._tenant_filter(ctx), self.table.c.id.in_(list(set(ids)))
        )
        async with ctx.session.transaction() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return {row["id"]: dict(row) for row in rows}

    async def list(self, ctx: RequestContext, query: ListQuery) -> Page:
        require_scope(ctx, "read")
        table = self.table
        stmt = select(*self._columns).where(self._tenant_filter(ctx))
        for name, value in query.filters.items():
            stmt = stmt.where(table.c[name] == value)
        if query.updated_since is not None:
            stmt = stmt.where(table.c.updated_at >= query.updated_since)
        if query.search:
            pattern = f"%{_escape_like(query.search)}%"
            stmt = stmt.where(
                or_(*(table.c[c].ilike(pattern, escape="\\") for c in self.spec.search_columns))
            )
        sort_col = table.c[query.sort_column]
        keys = [table.c.id] if query.sort_column == "id" else [sort_col, table.c.id]
        if query.after is not None:
            values = (
                [query.after.last_id]
                if query.sort_column == "id"
                else [query.after.value, query.after.last_id]
            )
            left, right = tuple_(*keys), tuple_(*values)
            stmt = stmt.where(left < right if query.descending else left > right)
        stmt = stmt.order_by(*(k.desc() if query.descending else k.asc() for k in keys))
        stmt = stmt.limit(query.limit + 1)
        async with ctx.session.transaction() as conn:
            rows = [dict(r) for r in (await conn.execute(stmt)).mappings().all()]
        next_cursor = None
        if len(rows) > query.limit:
            rows = rows[: query.limit]
            next_cursor = cursor_for(query, rows[-1])
        return Page(items=rows, next_cursor=next_cursor)

    async def list_by(
        self, ctx: RequestContext, column: str, values: Iterable[uuid.UUID], limit: int
    ) -> dict[uuid.UUID, Records]:
        """The first `limit` records (by id) for each value of `column`, in one query: for
        DataLoaders resolving nested lists without one query per parent."""
        require_scope(ctx, "read")
        keys = list(set(values))
        if not keys:
            return {}
        rank = (
            func.row_number()
            .over(partition_by=self.table.c[column], order_by=self.table.c.id)
            .label("_rank")
        )
        inner = (
            select(*self._columns, rank)
            .where(self._tenant_filter(ctx), self.table.c[column].in_(keys))
            .subquery()
        )
        stmt = (
            select(*(inner.c[c.name] for c in self._columns))
            .where(inner.c._rank <= limit)
            .order_by(inner.c[column], inner.c.id)
        )
        async with ctx.session.transaction() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        grouped: dict[uuid.UUID, Records] = {key: [] for key in keys}
        for row in rows:
            grouped[row[column]].append(dict(row))
        return grouped

    # -- writes --------------------------------------------------------------------------
    async def create(self, ctx: RequestContext, data: Mapping[str, Any]) -> Record:
        require_scope(ctx, "create")
        values = validate_changes(self.spec.fields, data, creating=True)
        values.update(tenant_id=ctx.tenant_id, id=uuid7())
        if "owner_id" in self.table.c:
            # A new record's owner is the user who created it.
            values["owner_id"] = ctx.user_id
        stmt = insert(self.table).values(values).returning(*self._columns)
        async with ctx.session.transaction() as conn:
            await self._check_references(conn, ctx, values)
            row = await self._write(conn, stmt)
        assert row is not None
        return row

    async def update(
        self,
        ctx: RequestContext,
        record_id: uuid.UUID | str,
        data: Mapping[str, Any],
        expected_version: int,
    ) -> Record:
        require_scope(ctx, "update")
        key = self._parse_id(record_id)
        values = validate_changes(self.spec.fields, data, creating=False)
        table = self.table
        stmt = (
            update(table)
            .where(self._tenant_filter(ctx), table.c.id == key, table.c.version == expected_version)
            .values(**values, version=table.c.version + 1, updated_at=func.now())
            .returning(*self._columns)
        )
        async with ctx.session.transaction() as conn:
            await self._check_references(conn, ctx, values)
            row = await self._write(conn, stmt)
            if row is None:
                await self._explain_missing(conn, ctx, key)
        assert row is not None
        return row

    async def delete(
        self, ctx: RequestContext, record_id: uuid.UUID | str, expected_version: int | None
    ) -> None:
        require_scope(ctx, "delete")
        key = self._parse_id(record_id)
        conditions = [self._tenant_filter(ctx), self.table.c.id == key]
        if expected_version is not None:
            conditions.append(self.table.c.version == expected_version)
        stmt = delete(self.table).where(and_(*conditions)).returning(self.table.c.id)
        async with ctx.session.transaction() as conn:
            deleted = (await conn.execute(stmt)).first()
            if deleted is None:
                await self._explain_missing(conn, ctx, key)

    # -- helpers -------------------------------------------------------------------------
    def _parse_id(self, record_id: uuid.UUID | str) -> uuid.UUID:
        if isinstance(record_id, uuid.UUID):
            return record_id
        try:
            return uuid.UUID(record_id)
        except (ValueError, AttributeError, TypeError):
            # A malformed id names no record: the same answer as a missing one.
            raise NotFound(f"{self.spec.name} not found") from None

    async def _fetch(
        self, conn: AsyncConnection, ctx: RequestContext, key: uuid.UUID
    ) -> Record | None:
        stmt = select(*self._columns).where(self._tenant_filter(ctx), self.table.c.id == key)
        row = (await conn.execute(stmt)).mappings().first()
        return dict(row) if row is not None else None

    async def _explain_missing(
        self, conn: AsyncConnection, ctx: RequestContext, key: uuid.UUID
    ) -> None:
        """A guarded write touched no row: not found, or the version moved on."""
        current = await self._fetch(conn, ctx, key)
        if current is None:
            raise NotFound(f"{self.spec.name} not found")
        raise PreconditionFailed(
            f"{self.spec.name} is at version {current['version']}; reload and retry",
            field="version",
        )

    async def _check_references(
        self, conn: AsyncConnection, ctx: RequestContext, values: Mapping[str, Any]
    ) -> None:
        for field_name, target in self.spec.references.items():
            ref = values.get(field_name)
            if ref is None:
                continue
            stmt = select(target.c.id).where(
                target.c.tenant_id == ctx.tenant_id, target.c.id == ref
            )
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
            if isinstance(cause, UniqueViolationError):
                raise Conflict(f"{self.spec.name} already exists", code="duplicate") from None
            raise
        return dict(row) if row is not None else None
