"""Undoing a change from a record's history. A revert is an ordinary write through the record
service: it obeys policy and version checks, and has history of its own."""

from __future__ import annotations

import uuid

from backend.context import RequestContext
from backend.crm.registry import SERVICES
from backend.errors import Forbidden, ValidationFailed
from backend.history.reading import one_change
from backend.records.service import Record


async def revert_change(
    ctx: RequestContext,
    entity: str,
    record_id: uuid.UUID | str,
    change_id: uuid.UUID | str,
    expected_version: int | None = None,
) -> Record:
    """Update: the field goes back to its value before the change. Delete: the record comes
    back (undelete). A create is undone by deleting the record instead."""
    service = SERVICES[entity]
    change = await one_change(ctx, entity, record_id, change_id)
    if change["values_withheld"]:
        raise Forbidden(
            "you may not read the value this change would restore",
            field=change["field"] or "change_id",
            code="field_forbidden",
        )
    if change["event"] == "delete":
        return await service.restore(ctx, change["old_value"])
    if change["event"] != "update":
        raise ValidationFailed.one(
            "change_id", "not_revertible", "only updates and deletes can be reverted"
        )
    version = expected_version
    if version is None:
        version = (await service.get(ctx, record_id))["version"]
    return await service.update(ctx, record_id, {change["field"]: change["old_value"]}, version)
