"""Merging duplicate contacts into one: the kept contact takes, field by field, the values the
caller chooses; whatever pointed at a merged contact (activities, opportunities, converted
leads, reports) points at the kept one; the merged contacts are deleted the normal way (history
and sync tombstones). One transaction: an error anywhere leaves everything as it was."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.activities.service import activities
from backend.crm.contacts.service import CONTACT, contacts
from backend.crm.leads.service import leads
from backend.crm.opportunities.service import opportunities
from backend.crm.together import all_or_nothing, deadlock_as_conflict
from backend.errors import Forbidden, ValidationFailed
from backend.history.changes import record_updated
from backend.records.service import Record, RecordService

MAX_MERGED = 20  # contacts merged into one at a time
KEEP, MERGE, FIELDS = "keep", "merge", "fields"
# Links re-pointed from the merged contacts to the kept one.
LINKS: tuple[tuple[RecordService, str], ...] = (
    (activities, "contact_id"),
    (opportunities, "contact_id"),
    (leads, "converted_contact_id"),
    (contacts, "reports_to_id"),
)


@dataclass(frozen=True)
class Merged:
    contact: Record  # the kept contact, as the caller may read it
    merged_ids: list[uuid.UUID]
    repointed: dict[str, int]  # "<entity>.<column>": how many records now point at it


def _id(value: Any, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationFailed.one(field, "unknown_reference", "names no such record") from None


def _plan(
    keep: Any, merge: Sequence[Any], fields: Mapping[str, Any]
) -> tuple[uuid.UUID, list[uuid.UUID], dict[str, uuid.UUID]]:
    """The request checked before any database work."""
    kept = _id(keep, KEEP)
    merged = [_id(m, f"{MERGE}[{i}]") for i, m in enumerate(merge)]
    if not merged:
        raise ValidationFailed.one(MERGE, "required", "name at least one contact to merge")
    if len(merged) > MAX_MERGED:
        raise ValidationFailed.one(MERGE, "too_many", f"at most {MAX_MERGED} at a time")
    if kept in merged:
        raise ValidationFailed.one(MERGE, "merge_into_itself", "must not contain the kept contact")
    if len(set(merged)) != len(merged):
        raise ValidationFailed.one(MERGE, "duplicate", "names a contact twice")
    sources: dict[str, uuid.UUID] = {}
    for name, source in fields.items():
        field = f"{FIELDS}.{name}"
        spec = CONTACT.fields.get(name)
        if spec is None or not spec.on_update:
            raise ValidationFailed.one(field, "unknown_field", "is not a field you can merge")
        chosen = _id(source, field)
        if chosen != kept and chosen not in merged:
            raise ValidationFailed.one(
                field, "not_merged", "must name the kept or a merged contact"
            )
        sources[name] = chosen
    return kept, merged, sources


async def merge_contacts(
    ctx: RequestContext, keep: Any, merge: Sequence[Any], fields: Mapping[str, Any]
) -> Merged:
    """Errors: 422 (the field named: keep, merge[i]) for an id that is missing, another
    tenant's, or one the caller may not both read and update, as for a missing one; 422
    `merge_into_itself`; 403 when the caller may not read a chosen field on its source or write
    it, or may not delete the merged contacts; 422 `cycle` if re-pointed reports would loop."""
    kept, merged, sources = _plan(keep, merge, fields)
    async with all_or_nothing(ctx):
        versions = await _lock(
            ctx, [(KEEP, kept), *((f"{MERGE}[{i}]", m) for i, m in enumerate(merged))]
        )
        records = await contacts.get_many(ctx, [kept, *merged])
        changes = _chosen(records, sources, kept, merged)
        await contacts.update(ctx, kept, changes, versions[kept])
        counts: dict[str, int] = {}
        async with ctx.session.transaction() as conn:
            for service, column in LINKS:
                with deadlock_as_conflict():
                    counts[f"{service.spec.name}.{column}"] = await _repoint(
                        conn, ctx, service, column, merged, kept
                    )
        for contact_id in merged:
            await contacts.delete(ctx, contact_id, None)
        final = await contacts.get(ctx, kept)
    return Merged(contact=final, merged_ids=merged, repointed=counts)


async def _lock(
    ctx: RequestContext, named: Sequence[tuple[str, uuid.UUID]]
) -> dict[uuid.UUID, int]:
    """Each contact's version, locked for the merge; one the caller may not both read and
    update is refused as if missing."""
    async with ctx.session.transaction() as conn:
        read = contacts.visible(ctx, await contacts.access(ctx, conn, "read"), "read")
        write = contacts.visible(ctx, await contacts.access(ctx, conn, "update"), "update")
        versions: dict[uuid.UUID, int] = {}
        for field, key in named:
            row = await contacts.fetch(conn, read, key)
            row = await contacts.fetch(conn, write, key, lock=True) if row is not None else None
            if row is None:
                raise ValidationFailed.one(field, "unknown_reference", "names no such record")
            versions[key] = row["version"]
    return versions


def _chosen(
    records: Mapping[uuid.UUID, Record],
    sources: Mapping[str, uuid.UUID],
    kept: uuid.UUID,
    merged: Sequence[uuid.UUID],
) -> dict[str, Any]:
    """The kept contact's new values: each chosen field as its source holds it."""
    changes: dict[str, Any] = {}
    for name, source in sources.items():
        record = records[source]
        if name not in record:  # masked: the caller may not read it there
            raise Forbidden(
                f"you may not read {name}", field=f"{FIELDS}.{name}", code="field_forbidden"
            )
        value = record[name]
        if name == "reports_to_id" and (value == kept or value in merged):
            value = None  # it would report to itself once merged
        if source != kept:
            changes[name] = value
    return changes


async def _repoint(
    conn: AsyncConnection,
    ctx: RequestContext,
    service: RecordService,
    column: str,
    merged: Sequence[uuid.UUID],
    kept: uuid.UUID,
) -> int:
    """Every record of the tenant linking to a merged contact links to the kept one: also
    records the caller cannot see (like the clearing of links when a contact is deleted, this
    follows from the merge and reveals nothing). Each is a new version, in history (so sync
    sees it), through the entity's write hooks (a report loop is refused)."""
    table = service.table
    columns = [c for c in table.c if c.name != "tenant_id"]
    which = [table.c.tenant_id == ctx.tenant_id, table.c[column].in_(list(merged))]
    if service is contacts:
        which.append(table.c.id.not_in(list(merged)))  # deleted next
    rows = (await conn.execute(select(*columns).where(*which).with_for_update())).mappings()
    befores = {row["id"]: dict(row) for row in rows.all()}
    for key, before in befores.items():
        target = None if key == kept else kept  # the kept contact never reports to itself
        stmt = (
            update(table)
            .where(table.c.tenant_id == ctx.tenant_id, table.c.id == key)
            .values({column: target, "version": table.c.version + 1, "updated_at": func.now()})
            .returning(*columns)
        )
        after = dict((await conn.execute(stmt)).mappings().one())
        await record_updated(conn, ctx, service.spec.name, before, after)
        for hook in service.hooks:
            await hook(conn, ctx, service.spec, before, after)
    return len(befores)
