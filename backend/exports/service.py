"""Exports as a resource: request (decided, generated or queued for approval), read, approve,
deny, link, download. Every attempt, allowed or not, is an audit event naming who, what
entity, filter, fields, row count, format, outcome and reason."""

from __future__ import annotations

import errno
import hmac
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth.secretbox import SecretBox
from backend.context import Principal, RequestContext
from backend.crm.registry import SERVICES
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import Database
from backend.errors import (
    CaravanError,
    Conflict,
    Forbidden,
    InsufficientStorage,
    NotFound,
    ValidationFailed,
)
from backend.exports.budget import BulkReadThrottled, charge_bulk_read
from backend.exports.decide import choose_fields, decide
from backend.exports.generate import (
    count_rows,
    export_statement,
    parse_filter,
    selection,
    write_file,
)
from backend.exports.links import new_token, parse_token
from backend.exports.models import Export
from backend.exports.rules import RuleSet, load_rules, save_rules
from backend.exports.storage import EncryptedWriter, export_path, read_decrypted
from backend.exports.watermark import Mark, token_for
from backend.exports.writers import FORMATS
from backend.history.events import EventType, record_event, record_event_now
from backend.policy.admin import admin_policy
from backend.policy.engine import policies
from backend.records.service import RecordService

_exports = table_of(Export)
_FILE_KEY_PURPOSE = "export-file-key"
# No room on the export volume: full, over quota, or over the process's file size limit.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# What an export looks like to its readers (REST and GraphQL). Never the sealed file key, the
# link's hash or its use times: the service answers with these keys only (see _public).
_PUBLIC = (
    "id",
    "entity",
    "format",
    "fields",
    "filter",
    "status",
    "reason",
    "row_count",
    "requested_by",
    "decided_by",
    "decided_at",
    "created_at",
    "expires_at",
    "file_size",
    "downloads",
)


@dataclass(frozen=True)
class ExportRequest:
    entity: str
    format: str
    fields: Sequence[str] | None
    filter: Mapping[str, Any]


@dataclass(frozen=True)
class Download:
    filename: str
    media_type: str
    chunks: Iterator[bytes]


def _past(moment: datetime | None) -> bool:
    return moment is not None and moment <= datetime.now(UTC)


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in _PUBLIC}


def _entity_service(name: str) -> RecordService:
    for service in SERVICES.values():
        if name in (service.spec.name, service.spec.plural):
            return service
    raise ValidationFailed.one("entity", "unknown_entity", f"{name!r} is not an entity")


def _export_id(raw: uuid.UUID | str) -> uuid.UUID:
    try:
        return raw if isinstance(raw, uuid.UUID) else uuid.UUID(raw)
    except ValueError:
        raise NotFound("export not found") from None


class ExportService:
    def __init__(self, db: Database, box: SecretBox, data_dir: Path, mark_key: bytes) -> None:
        self.db = db
        self.box = box
        self.data_dir = data_dir
        self.mark_key = mark_key

    # -- request -------------------------------------------------------------------------
    async def create(self, ctx: RequestContext, request: ExportRequest) -> dict[str, Any]:
        attempt: dict[str, Any] = {
            "entity": request.entity,
            "format": request.format,
            "fields": list(request.fields) if request.fields is not None else None,
            "filter": dict(request.filter),
            "row_count": None,
        }
        try:
            service = _entity_service(request.entity)
            attempt["entity"] = service.spec.name
            if request.format not in FORMATS:
                choices = ", ".join(FORMATS)
                raise ValidationFailed.one("format", "invalid_choice", f"one of {choices}")
            query = parse_filter(service, request.filter)
            async with ctx.session.transaction() as conn:
                rules = await load_rules(conn, ctx.tenant_id)
                access = await service.access(ctx, conn, "export")
                fields = choose_fields(access, rules, request.fields)
                attempt["fields"] = fields
                where = selection(service, ctx, access, query)
                row_count = attempt["row_count"] = await count_rows(conn, service, where)
                decision = decide(
                    rules,
                    await self._role_names(conn, ctx),
                    row_count,
                    await self._exported_today(conn, ctx),
                )
                export_id = uuid7()
                await conn.execute(
                    insert(_exports).values(
                        tenant_id=ctx.tenant_id,
                        id=export_id,
                        requested_by=ctx.user_id,
                        entity=service.spec.name,
                        format=request.format,
                        fields=fields,
                        filter=attempt["filter"],
                        status=decision.status,
                        reason=decision.reason,
                        row_count=row_count,
                    )
                )
                if decision.status == "ready":
                    await self._generate(ctx, conn, service, export_id, rules)
                event = (
                    EventType.EXPORT_REQUESTED
                    if decision.status == "ready"
                    else EventType.EXPORT_PENDING
                )
                await record_event(
                    conn,
                    ctx.tenant_id,
                    event,
                    **self._who(ctx),
                    details={
                        **attempt,
                        "export_id": str(export_id),
                        "outcome": "allowed" if decision.status == "ready" else "pending",
                        "reason": decision.reason,
                    },
                )
                return _public(await self._row(conn, export_id))
        except CaravanError as refused:
            # Every attempt is on the record: refused by policy or rules, throttled, or invalid.
            outcome = "invalid"
            if isinstance(refused, BulkReadThrottled):
                outcome = "throttled"
            elif isinstance(refused, InsufficientStorage):
                outcome = "failed"
            elif isinstance(refused, Forbidden):
                outcome = "blocked"
            details = {
                **attempt,
                "outcome": outcome,
                "reason": refused.code,
                "field": refused.field,
                "detail": refused.detail,
            }

            async def audit(_: bool) -> None:
                await record_event_now(
                    self.db,
                    ctx.tenant_id,
                    EventType.EXPORT_BLOCKED,
                    outcome="denied",
                    **self._who(ctx),
                    details=details,
                )

            # In its own transaction (this one rolls back), once the connection is released.
            if not ctx.session.after_release(audit):
                await audit(True)
            raise

    async def _generate(
        self,
        ctx: RequestContext,
        conn: AsyncConnection,
        service: RecordService,
        export_id: uuid.UUID,
        rules: RuleSet,
    ) -> None:
        """Write the file as the requester: their scope, their fields (checked again), their
        read budget charged."""
        row = await self._row(conn, export_id)
        access = await service.access(ctx, conn, "export")
        fields = choose_fields(access, rules, row["fields"])
        where = selection(service, ctx, access, parse_filter(service, row["filter"]))
        await charge_bulk_read(ctx, conn, service.spec.name, row["row_count"], fields, "export")
        mark = token_for(self.mark_key, Mark(ctx.tenant_id, export_id, row["requested_by"]))
        path = export_path(self.data_dir, ctx.tenant_id, export_id)
        try:
            sink = EncryptedWriter(path, export_id)
            written = await write_file(
                conn,
                export_statement(service, fields, where, row["row_count"]),
                fmt=row["format"],
                fields=fields,
                expected_rows=row["row_count"],
                canary=mark,
                properties={
                    "mark": mark,
                    "export_id": str(export_id),
                    "title": f"{service.spec.plural}",
                },
                sink=sink,
            )
        except OSError as failed:
            if failed.errno not in _DISK_FULL:
                raise
            # The writer removed its file and this transaction rolls back: no export row, no
            # read budget charged.
            path.unlink(missing_ok=True)
            raise InsufficientStorage(
                "the server has no room to write the export file; try again later"
            ) from failed
        try:
            await conn.execute(
                update(_exports)
                .where(_exports.c.tenant_id == ctx.tenant_id, _exports.c.id == export_id)
                .values(
                    status="ready",
                    row_count=written.rows,
                    file_key=self.box.seal(written.key, purpose=_FILE_KEY_PURPOSE),
                    file_size=written.size,
                    expires_at=func.now() + timedelta(seconds=rules.file_ttl_seconds),
                )
            )
        except BaseException:
            sink.path.unlink(missing_ok=True)
            raise

    # -- read ----------------------------------------------------------------------------
    async def get(self, ctx: RequestContext, export_id: uuid.UUID | str) -> dict[str, Any]:
        key = _export_id(export_id)
        async with ctx.session.transaction() as conn:
            row = await self._find(conn, key)
            if row is None or not (
                row["requested_by"] == ctx.user_id or await self._is_admin(conn, ctx)
            ):
                raise NotFound("export not found")
            return _public(row)

    async def list(self, ctx: RequestContext, limit: int = 50) -> list[dict[str, Any]]:
        if not 1 <= limit <= 200:
            raise ValidationFailed.one("limit", "out_of_range", "must be between 1 and 200")
        async with ctx.session.transaction() as conn:
            stmt = select(*(_exports.c[k] for k in _PUBLIC)).where(
                _exports.c.tenant_id == ctx.tenant_id
            )
            if not await self._is_admin(conn, ctx):
                stmt = stmt.where(_exports.c.requested_by == ctx.user_id)
            stmt = stmt.order_by(_exports.c.id.desc()).limit(limit)
            return [_public(dict(r)) for r in (await conn.execute(stmt)).mappings().all()]

    # -- decide --------------------------------------------------------------------------
    async def approve(self, ctx: RequestContext, export_id: uuid.UUID | str) -> dict[str, Any]:
        key = _export_id(export_id)
        async with ctx.session.transaction() as conn:
            row = await self._pending(conn, ctx, key)
            requester = RequestContext(
                principal=Principal(user_id=row["requested_by"], tenant_id=ctx.tenant_id),
                db=ctx.db,
                channel=ctx.channel,
                request_id=ctx.request_id,
            )
            service = _entity_service(row["entity"])
            rules = await load_rules(conn, ctx.tenant_id)
            await self._generate(requester, conn, service, key, rules)
            await conn.execute(
                update(_exports)
                .where(_exports.c.tenant_id == ctx.tenant_id, _exports.c.id == key)
                .values(decided_by=ctx.user_id, decided_at=func.now(), reason="approved")
            )
            await self._decided(conn, ctx, row, EventType.EXPORT_APPROVED, "approved", None)
            return _public(await self._row(conn, key))

    async def deny(
        self, ctx: RequestContext, export_id: uuid.UUID | str, reason: str | None
    ) -> dict[str, Any]:
        key = _export_id(export_id)
        if reason is not None and len(reason) > 500:
            raise ValidationFailed.one("reason", "too_long", "at most 500 characters")
        async with ctx.session.transaction() as conn:
            row = await self._pending(conn, ctx, key)
            await conn.execute(
                update(_exports)
                .where(_exports.c.tenant_id == ctx.tenant_id, _exports.c.id == key)
                .values(
                    status="denied",
                    decided_by=ctx.user_id,
                    decided_at=func.now(),
                    reason=reason or "denied by an admin",
                )
            )
            await self._decided(conn, ctx, row, EventType.EXPORT_DENIED, "denied", reason)
            return _public(await self._row(conn, key))

    async def _pending(
        self, conn: AsyncConnection, ctx: RequestContext, key: uuid.UUID
    ) -> dict[str, Any]:
        await admin_policy(conn, ctx)
        row = await self._find(conn, key, lock=True)
        if row is None:
            raise NotFound("export not found")
        if row["status"] != "pending":
            raise Conflict(f"the export is {row['status']}, not pending", code="not_pending")
        if row["requested_by"] == ctx.user_id:
            raise Forbidden(
                "an export needs another admin's approval", field="id", code="self_approval"
            )
        return row

    async def _decided(
        self,
        conn: AsyncConnection,
        ctx: RequestContext,
        row: Mapping[str, Any],
        event: EventType,
        outcome: str,
        reason: str | None,
    ) -> None:
        await record_event(
            conn,
            ctx.tenant_id,
            event,
            **self._who(ctx),
            subject_user_id=row["requested_by"],
            details={**self._summary(row), "outcome": outcome, "reason": reason},
        )

    # -- rules ---------------------------------------------------------------------------
    async def rules(self, ctx: RequestContext) -> RuleSet:
        async with ctx.session.transaction() as conn:
            await admin_policy(conn, ctx)
            return await load_rules(conn, ctx.tenant_id)

    async def set_rules(self, ctx: RequestContext, rules: RuleSet) -> RuleSet:
        async with ctx.session.transaction() as conn:
            await admin_policy(conn, ctx)
            await save_rules(conn, ctx.tenant_id, ctx.user_id, rules)
            await record_event(
                conn,
                ctx.tenant_id,
                EventType.EXPORT_RULES_CHANGED,
                **self._who(ctx),
                details={"outcome": "changed"},
            )
            return await load_rules(conn, ctx.tenant_id)

    # -- links and download --------------------------------------------------------------
    async def link(self, ctx: RequestContext, export_id: uuid.UUID | str) -> dict[str, Any]:
        key = _export_id(export_id)
        token = new_token(ctx.tenant_id, key)
        async with ctx.session.transaction() as conn:
            row = await self._find(conn, key, lock=True)
            if row is None or row["requested_by"] != ctx.user_id:
                raise NotFound("export not found")  # only the requester may download
            status = "expired" if row["status"] == "ready" and _past(row["expires_at"]) else None
            status = status or row["status"]
            if status != "ready":
                raise Conflict(f"the export is {status}", code=f"export_{status}")
            rules = await load_rules(conn, ctx.tenant_id)
            expires_at = datetime.now(UTC) + timedelta(seconds=rules.link_ttl_seconds)
            await conn.execute(
                update(_exports)
                .where(_exports.c.tenant_id == ctx.tenant_id, _exports.c.id == key)
                .values(link_hash=token.digest, link_expires_at=expires_at, link_used_at=None)
            )
        return {
            "url": f"/api/v1/exports/download/{token.encode()}",
            "expires_at": expires_at,
        }

    async def download(self, encoded: str) -> Download:
        """Spend a link: once, before it expires, for a ready file. Refusals are audited."""
        token = parse_token(encoded)
        row: dict[str, Any] | None = None
        try:
            async with self.db.tenant_transaction(token.tenant_id) as conn:
                row = await self._find(conn, token.export_id, lock=True)
                problem = self._link_problem(row, token.digest)
                if problem is not None:
                    raise problem
                assert row is not None  # _link_problem refuses a missing row
                if not export_path(self.data_dir, token.tenant_id, token.export_id).exists():
                    raise LinkGone("the export file is gone", code="export_expired")
                await conn.execute(
                    update(_exports)
                    .where(
                        _exports.c.tenant_id == token.tenant_id,
                        _exports.c.id == token.export_id,
                    )
                    .values(link_used_at=func.now(), downloads=_exports.c.downloads + 1)
                )
                sealed = (
                    await conn.execute(
                        select(_exports.c.file_key).where(
                            _exports.c.tenant_id == token.tenant_id,
                            _exports.c.id == token.export_id,
                        )
                    )
                ).scalar_one()
                await record_event(
                    conn,
                    token.tenant_id,
                    EventType.EXPORT_DOWNLOADED,
                    actor_user_id=row["requested_by"],
                    details={**self._summary(row), "outcome": "downloaded", "reason": None},
                )
        except CaravanError as refused:
            if row is not None:
                await record_event_now(
                    self.db,
                    token.tenant_id,
                    EventType.EXPORT_DOWNLOADED,
                    outcome="denied",
                    actor_user_id=row["requested_by"],
                    details={**self._summary(row), "outcome": "refused", "reason": refused.code},
                )
            raise
        key = self.box.open(sealed, purpose=_FILE_KEY_PURPOSE)
        path = export_path(self.data_dir, token.tenant_id, token.export_id)
        chunks = read_decrypted(path, key, token.export_id)
        media_type, ext = FORMATS[row["format"]]
        return Download(f"{row['entity']}-export-{token.export_id}.{ext}", media_type, chunks)

    @staticmethod
    def _link_problem(row: Mapping[str, Any] | None, digest: bytes) -> CaravanError | None:
        if row is None or row["link_hash"] is None:
            return NotFound("no such download link", field="token", code="link_invalid")
        if not hmac.compare_digest(bytes(row["link_hash"]), digest):
            return NotFound("no such download link", field="token", code="link_invalid")
        if row["link_used_at"] is not None:
            return LinkGone("this download link was already used", code="link_used")
        if row["link_expires_at"] <= datetime.now(UTC):
            return LinkGone("this download link has expired", code="link_expired")
        if row["status"] != "ready" or _past(row["expires_at"]):
            status = "expired" if row["status"] == "ready" else row["status"]
            return LinkGone(f"the export is {status}", code=f"export_{status}")
        return None

    # -- helpers -------------------------------------------------------------------------
    async def _find(
        self, conn: AsyncConnection, key: uuid.UUID, *, lock: bool = False
    ) -> dict[str, Any] | None:
        stmt = select(_exports).where(_exports.c.id == key)
        if lock:
            stmt = stmt.with_for_update()
        found = (await conn.execute(stmt)).mappings().first()
        if found is None:
            return None
        row = dict(found)
        row.pop("tenant_id")
        return row

    async def _row(self, conn: AsyncConnection, key: uuid.UUID) -> dict[str, Any]:
        row = await self._find(conn, key)
        if row is None:
            raise NotFound("export not found")
        return row

    async def _role_names(self, conn: AsyncConnection, ctx: RequestContext) -> set[str]:
        policy = await policies.get(conn, ctx.tenant_id)
        return {
            policy.role_names[r] for r in policy.roles_of(ctx.user_id) if r in policy.role_names
        }

    async def _is_admin(self, conn: AsyncConnection, ctx: RequestContext) -> bool:
        return "tenant_admin" in await self._role_names(conn, ctx)

    async def _exported_today(self, conn: AsyncConnection, ctx: RequestContext) -> int:
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        stmt = select(func.coalesce(func.sum(_exports.c.row_count), 0)).where(
            _exports.c.tenant_id == ctx.tenant_id,
            _exports.c.requested_by == ctx.user_id,
            _exports.c.created_at >= midnight,
            _exports.c.status.in_(("ready", "pending", "expired")),
        )
        return int((await conn.execute(stmt)).scalar_one())

    @staticmethod
    def _who(ctx: RequestContext) -> dict[str, Any]:
        return {
            "actor_user_id": ctx.user_id,
            "actor_client_id": ctx.principal.client_id,
            "request_id": ctx.request_id,
            "channel": ctx.channel,
        }

    @staticmethod
    def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "export_id": str(row["id"]),
            "entity": row["entity"],
            "format": row["format"],
            "fields": list(row["fields"]),
            "filter": row["filter"],
            "row_count": row["row_count"],
        }


class LinkGone(CaravanError):
    status = 410
    code = "link_gone"
    title = "Gone"
    graphql_code = "GONE"
