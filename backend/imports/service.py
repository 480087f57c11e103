"""CSV imports: refused as a whole before anything is written (size, encoding, mapping, the
caller's right to create and to write each mapped field), then processed in batches of
BATCH_SIZE rows. Each batch is one transaction; each row goes through the record service's
create or update (policy, scope, validation, history with channel `import`, sync, hooks) in
its own savepoint, so a bad row is reported as {row, field, code} and the rest of its batch
still commits. Progress is saved with each batch in the `imports` row.

A file of more than one batch runs as a background asyncio task in the server process: the
request answers 202 at once and GET /api/v1/imports/{id} shows its progress. (A real job
queue comes later: a shutdown marks a running import `interrupted`, its committed batches
kept; a process that dies leaves it `running`.)
A dry run does all of this, including every write, and rolls each batch back.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.registry import SERVICES
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import Database
from backend.errors import NotFound, ValidationFailed
from backend.history.events import EventType, record_event
from backend.imports.csvfile import check_mapping, parse_mapping, read_csv
from backend.imports.duplicates import DuplicateIndex, Known, duplicate_fields, load_index
from backend.imports.models import Import
from backend.imports.rows import process_row
from backend.lookup.phones import tenant_region
from backend.policy.access import entity_access
from backend.records.service import RecordService

log = logging.getLogger("caravan.imports")
BATCH_SIZE = 500
MAX_REPORTED_ERRORS = 5_000  # the report keeps the first ones; error_count counts them all
ON_DUPLICATE = ("skip", "update", "create")
_imports = table_of(Import)
_PUBLIC = (
    "id",
    "status",
    "entity",
    "dry_run",
    "on_duplicate",
    "filename",
    "rows_total",
    "rows_done",
    "created",
    "updated",
    "skipped",
    "duplicates",
    "errors",
    "error_count",
    "created_at",
    "finished_at",
)
_COUNTS = ("rows_done", "created", "updated", "skipped", "duplicates", "error_count")


@dataclass(frozen=True)
class ImportRequest:
    entity: str
    mapping: str | None
    dry_run: bool
    on_duplicate: str
    filename: str | None
    content: bytes


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in _PUBLIC}


def entity_service(name: str) -> RecordService:
    """Any registered entity, by its name or plural."""
    for service in SERVICES.values():
        if name in (service.spec.name, service.spec.plural):
            return service
    raise ValidationFailed.one("entity", "unknown_entity", f"{name!r} is not an entity")


def _import_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("import not found") from None


class ImportService:
    def __init__(self, db: Database) -> None:
        self.db = db
        # The background imports of this process (strong references to their tasks).
        self._running: dict[asyncio.Task[None], ImportJob] = {}

    async def start(
        self, ctx: RequestContext, request: ImportRequest
    ) -> tuple[dict[str, Any], bool]:
        """Check and record the import; run it now (one batch) or in the background. Returns
        the import and whether it has finished."""
        service = entity_service(request.entity)
        if request.on_duplicate not in ON_DUPLICATE:
            choices = ", ".join(ON_DUPLICATE)
            raise ValidationFailed.one("on_duplicate", "invalid_choice", f"one of {choices}")
        mapping = parse_mapping(request.mapping)
        file = read_csv(request.content)
        job_ctx = RequestContext(ctx.principal, ctx.db, "import", request_id=ctx.request_id)
        import_id = uuid7()
        async with job_ctx.session.transaction() as conn:
            access = await service.access(job_ctx, conn, "create")
            custom_types = {key: d.type for key, d in access.custom.items()}
            columns = check_mapping(mapping, file.header, service.spec, custom_types)
            access.require_fields("create", set(columns.values()))
            if request.on_duplicate == "update" and duplicate_fields(service):
                updating = await service.access(job_ctx, conn, "update")
                updating.require_fields("update", set(columns.values()))
            values = {
                "tenant_id": ctx.tenant_id,
                "id": import_id,
                "requested_by": ctx.user_id,
                "entity": service.spec.name,
                "filename": request.filename,
                "mapping": mapping,
                "dry_run": request.dry_run,
                "on_duplicate": request.on_duplicate,
                "status": "running",
                "rows_total": len(file.rows),
            }
            await conn.execute(insert(_imports).values(values))
            details = {k: v for k, v in values.items() if k not in ("tenant_id", "requested_by")}
            await self._audit(conn, job_ctx, EventType.IMPORT_STARTED, details)
        job = ImportJob(
            self, job_ctx, service, import_id, columns, custom_types, request, file.rows
        )
        if len(file.rows) <= BATCH_SIZE:
            await job.run()
            return await self.get(ctx, str(import_id)), True
        task = asyncio.create_task(job.run(), name=f"import-{import_id}")
        self._running[task] = job
        task.add_done_callback(lambda done: self._running.pop(done, None))
        return await self.get(ctx, str(import_id)), False

    async def get(self, ctx: RequestContext, import_id: str) -> dict[str, Any]:
        """One of the caller's imports (another user's, or another tenant's: not found)."""
        key = _import_id(import_id)
        async with ctx.session.transaction() as conn:
            stmt = select(_imports).where(
                _imports.c.tenant_id == ctx.tenant_id,
                _imports.c.requested_by == ctx.user_id,
                _imports.c.id == key,
            )
            row = (await conn.execute(stmt)).mappings().first()
        if row is None:
            raise NotFound("import not found")
        return _public(dict(row))

    async def list(self, ctx: RequestContext, limit: int) -> list[dict[str, Any]]:
        if not 1 <= limit <= 200:
            raise ValidationFailed.one("limit", "out_of_range", "must be 1-200")
        async with ctx.session.transaction() as conn:
            stmt = (
                select(_imports)
                .where(
                    _imports.c.tenant_id == ctx.tenant_id,
                    _imports.c.requested_by == ctx.user_id,
                )
                .order_by(_imports.c.created_at.desc(), _imports.c.id.desc())
                .limit(limit)
            )
            rows = (await conn.execute(stmt)).mappings().all()
        return [_public(dict(r)) for r in rows]

    async def wait(self) -> None:
        """Until every background import of this process has finished."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def stop(self) -> None:
        """At shutdown: cancel the background imports and mark them `interrupted` (the batches
        committed so far stay; the batch in flight rolls back)."""
        running = dict(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for job in running.values():
            if not job.finished:
                await job.finish("interrupted")

    @staticmethod
    async def _audit(
        conn: AsyncConnection, ctx: RequestContext, event: EventType, details: dict[str, Any]
    ) -> None:
        shown = {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in details.items()}
        await record_event(
            conn,
            ctx.tenant_id,
            event,
            actor_user_id=ctx.user_id,
            actor_client_id=ctx.principal.client_id,
            request_id=ctx.request_id,
            channel=ctx.channel,
            details=shown,
        )


@dataclass
class Tally:
    rows_done: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    duplicates: int = 0
    error_count: int = 0


class ImportJob:
    """One import's run: batches, rows, duplicates, progress."""

    def __init__(
        self,
        owner: ImportService,
        ctx: RequestContext,
        service: RecordService,
        import_id: uuid.UUID,
        columns: dict[int, str],
        custom_types: dict[str, str],
        request: ImportRequest,
        rows: list[tuple[int, list[str]]],
    ) -> None:
        self.owner = owner
        self.ctx = ctx
        self.service = service
        self.import_id = import_id
        self.columns = columns
        self.custom_types = custom_types
        self.dry_run = request.dry_run
        self.on_duplicate = request.on_duplicate
        self.rows = rows
        self.tally = Tally()
        self.index: DuplicateIndex | None = None
        # Dry run: versions of existing records as they were before this batch updated them.
        self.rolled_back: list[tuple[Known, int]] = []
        self.finished = False

    def _batch_ctx(self) -> RequestContext:
        # A fresh session per batch: a request scope that rolled back stays rolled back.
        return RequestContext(self.ctx.principal, self.ctx.db, "import", self.ctx.request_id)

    async def run(self) -> None:
        try:
            async with self.ctx.session.transaction() as conn:
                access = await entity_access(self.ctx, conn, self.service.spec)
                region = await tenant_region(conn, self.ctx)
                self.index = await load_index(conn, self.ctx, self.service, access, region)
            for start in range(0, len(self.rows), BATCH_SIZE):
                await self._batch(self.rows[start : start + BATCH_SIZE])
        except Exception:
            log.exception("import %s failed", self.import_id)
            await self.finish("failed")
            return
        await self.finish("done")

    async def _batch(self, rows: list[tuple[int, list[str]]]) -> None:
        ctx = self._batch_ctx()
        errors: list[dict[str, Any]] = []
        committed = replace(self.tally)  # the counts stay true if this batch rolls back
        try:
            async with ctx.session.request_scope():
                for number, cells in rows:
                    errors += await process_row(self, ctx, number, cells)
                self.tally.rows_done += len(rows)
                self.tally.error_count += len(errors)
                if self.dry_run:
                    ctx.session.rollback_only = True  # validated and written: undo it all
                else:
                    async with ctx.session.transaction() as conn:  # progress commits with it
                        await self._save(conn, errors, None)
        except BaseException:
            self.tally = committed
            raise
        if self.dry_run:
            for known, version in reversed(self.rolled_back):
                known.version = version
            self.rolled_back.clear()
            async with self.ctx.session.transaction() as conn:
                await self._save(conn, errors, None)

    async def _save(
        self, conn: AsyncConnection, errors: list[dict[str, Any]], status: str | None
    ) -> None:
        stored = (
            await conn.execute(
                select(func.jsonb_array_length(_imports.c.errors)).where(
                    _imports.c.tenant_id == self.ctx.tenant_id, _imports.c.id == self.import_id
                )
            )
        ).scalar_one()
        kept = errors[: max(0, MAX_REPORTED_ERRORS - stored)]
        values: dict[str, Any] = {k: getattr(self.tally, k) for k in _COUNTS}
        values["errors"] = _imports.c.errors.op("||")(literal(kept, type_=JSONB))
        values["updated_at"] = func.now()
        if status is not None:
            values.update(status=status, finished_at=func.now())
        await conn.execute(
            update(_imports)
            .where(_imports.c.tenant_id == self.ctx.tenant_id, _imports.c.id == self.import_id)
            .values(values)
        )

    async def finish(self, status: str) -> None:
        """Record the outcome: done, failed (an unexpected error), interrupted (shutdown)."""
        async with self.ctx.session.transaction() as conn:
            await self._save(conn, [], status)
            details = {"import_id": self.import_id, "status": status, **vars(self.tally)}
            await self.owner._audit(conn, self.ctx, EventType.IMPORT_FINISHED, details)
        self.finished = True
