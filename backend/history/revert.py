"""Undoing a change from a record's history. A revert is an ordinary write through the record
service: it obeys policy and version checks, and has history of its own."""

from __future__ import annotations

import uuid
from typing import Any

from backend.context import RequestContext
from backend.crm.registry import SERVICES
from backend.errors import Forbidden, NotFound, ValidationFailed
from backend.history.changes import to_json
from backend.history.reading import changes_before, one_change
from backend.policy.access import entity_access
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


def _replay(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The record as these history entries (oldest first) leave it; None if it did not exist."""
    state: dict[str, Any] | None = None
    for entry in entries:
        if entry["event"] in ("create", "restore"):
            state = dict(entry["new_value"])
        elif entry["event"] == "delete":
            state = None
        elif state is not None and entry["field"].startswith("custom."):
            custom = dict(state.get("custom") or {})
            custom[entry["field"].removeprefix("custom.")] = entry["new_value"]
            state["custom"] = {k: v for k, v in custom.items() if v is not None}
        elif state is not None:
            state[entry["field"]] = entry["new_value"]
    return state


async def revert_record(
    ctx: RequestContext,
    entity: str,
    record_id: uuid.UUID | str,
    before_change_id: uuid.UUID | str,
    expected_version: int | None = None,
) -> Record:
    """The whole record back to its state just before a change (undeleting it if needed)."""
    service = SERVICES[entity]
    entries = await changes_before(ctx, entity, record_id, before_change_id)
    withheld = [e for e in entries if e["values_withheld"]]
    if withheld:
        raise Forbidden(
            "you may not read every value this revert would restore",
            field=withheld[0]["field"] or "before_change_id",
            code="field_forbidden",
        )
    state = _replay(entries)
    if state is None:
        raise ValidationFailed.one(
            "before_change_id",
            "not_revertible",
            "the record did not exist before this change: delete it instead",
        )
    try:
        current = await service.get(ctx, record_id)
    except NotFound:
        return await service.restore(ctx, state)
    writable = {n for n, spec in service.spec.fields.items() if spec.on_update}
    changes = {
        name: state.get(name)
        for name in writable
        if name in current and to_json(current[name]) != state.get(name)
    }
    # Custom values of fields still defined go back too (a removed field's stay as they are).
    async with ctx.session.transaction() as conn:
        live = (await entity_access(ctx, conn, service.spec)).custom
    was, now = state.get("custom") or {}, current.get("custom") or {}
    custom = {
        key: was.get(key)
        for key in live
        if (key in was or key in now) and to_json(now.get(key)) != was.get(key)
    }
    if custom:
        changes["custom"] = custom
    version = current["version"] if expected_version is None else expected_version
    if not changes:
        return current
    return await service.update(ctx, record_id, changes, version)
