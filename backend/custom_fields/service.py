"""Custom field definitions: list, get, create, update, delete (tenant admins only).

Every change is a policy change: it is audited as a security event (`policy.custom_field_*`)
and bumps the tenant's policy version, so every server process recompiles its field masks
(which carry the definitions) on its next request for the tenant.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.registry import ENTITIES, entity_fields
from backend.custom_fields.definition import (
    KEY,
    MAX_CHOICE_LENGTH,
    MAX_CHOICES,
    MAX_FIELDS_PER_ENTITY,
    MAX_TEXT_LENGTH,
    TYPES,
    CustomFieldDef,
)
from backend.custom_fields.models import CustomField
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import note_policy_change
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.history.events import EventType
from backend.policy.access import SYSTEM_FIELDS
from backend.policy.admin import admin_policy, policy_event
from backend.tenants.models import Tenant

_fields, _tenants = table_of(CustomField), table_of(Tenant)
_LENGTH_TYPES = ("text", "long_text", "email", "phone", "url")
_CHOICE_TYPES = ("single_choice", "multi_choice")
# Names a record already uses for other things: never a custom key.
_RESERVED = frozenset({"custom", "tenant_id", "withheld_fields"}) | SYSTEM_FIELDS


def view(row: Any) -> dict[str, Any]:
    """A definition as both APIs show it."""
    return {
        **{k: v for k, v in asdict(CustomFieldDef.of(row)).items()},
        "choices": list(row.choices or []),
        "policy_object": f"{row.entity}.cf_{row.key}",
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _text(data: Mapping[str, Any], name: str, limit: int, *, required: bool) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise ValidationFailed.one(name, "required", "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed.one(name, "invalid_type", "must be a non-blank string")
    if len(value) > limit or any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise ValidationFailed.one(name, "invalid_value", f"1-{limit} printable characters")
    return value


def _checked_shape(type_: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The type-dependent settings (choices, max_length, target), checked."""
    values: dict[str, Any] = {"choices": None, "max_length": None, "target": None}
    choices = data.get("choices")
    if type_ in _CHOICE_TYPES:
        if (
            not isinstance(choices, list)
            or not choices
            or not all(isinstance(c, str) and 0 < len(c) <= MAX_CHOICE_LENGTH for c in choices)
        ):
            raise ValidationFailed.one(
                "choices",
                "invalid_choices",
                f"a non-empty list of 1-{MAX_CHOICE_LENGTH} char strings",
            )
        if len(choices) > MAX_CHOICES or len(set(choices)) != len(choices):
            raise ValidationFailed.one(
                "choices", "invalid_choices", f"at most {MAX_CHOICES} distinct choices"
            )
        values["choices"] = list(choices)
    elif choices is not None:
        raise ValidationFailed.one("choices", "not_applicable", f"type {type_} has no choices")
    max_length = data.get("max_length")
    if type_ in _LENGTH_TYPES and max_length is not None:
        if isinstance(max_length, bool) or not isinstance(max_length, int):
            raise ValidationFailed.one("max_length", "invalid_type", "must be an integer")
        if not 1 <= max_length <= MAX_TEXT_LENGTH:
            raise ValidationFailed.one(
                "max_length", "out_of_range", f"must be between 1 and {MAX_TEXT_LENGTH}"
            )
        values["max_length"] = max_length
    elif max_length is not None:
        raise ValidationFailed.one("max_length", "not_applicable", f"type {type_} has no length")
    target = data.get("target")
    if type_ == "reference":
        if not isinstance(target, str) or target not in ENTITIES:
            raise ValidationFailed.one(
                "target", "unknown_entity", f"one of {', '.join(sorted(ENTITIES))}"
            )
        values["target"] = target
    elif target is not None:
        raise ValidationFailed.one("target", "not_applicable", "only a reference has a target")
    return values


async def _bump_policy(conn: AsyncConnection, ctx: RequestContext) -> None:
    await conn.execute(
        update(_tenants)
        .where(_tenants.c.id == ctx.tenant_id)
        .values(policy_version=_tenants.c.policy_version + 1, updated_at=func.now())
    )
    await note_policy_change(conn, ctx.tenant_id)  # every process forgets the old version


def _entity(name: Any) -> str:
    if not isinstance(name, str) or name not in ENTITIES:
        raise ValidationFailed.one(
            "entity", "unknown_entity", f"one of {', '.join(sorted(ENTITIES))}"
        )
    return name


def _id(raw: uuid.UUID | str) -> uuid.UUID:
    try:
        return raw if isinstance(raw, uuid.UUID) else uuid.UUID(raw)
    except ValueError:
        raise NotFound("custom field not found") from None


async def _live(conn: AsyncConnection, field_id: uuid.UUID) -> Any:
    row = (
        await conn.execute(
            select(_fields).where(_fields.c.id == field_id, _fields.c.deleted_at.is_(None))
        )
    ).first()
    if row is None:
        raise NotFound("custom field not found")
    return row


async def list_fields(ctx: RequestContext, entity: str | None = None) -> list[dict[str, Any]]:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        stmt = select(_fields).where(_fields.c.deleted_at.is_(None))
        if entity is not None:
            stmt = stmt.where(_fields.c.entity == _entity(entity))
        rows = (await conn.execute(stmt.order_by(_fields.c.entity, _fields.c.key))).all()
    return [view(r) for r in rows]


async def get_field(ctx: RequestContext, field_id: uuid.UUID | str) -> dict[str, Any]:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        return view(await _live(conn, _id(field_id)))


async def create_field(ctx: RequestContext, data: Mapping[str, Any]) -> dict[str, Any]:
    entity = _entity(data.get("entity"))
    key = data.get("key")
    if not isinstance(key, str) or not KEY.match(key):
        raise ValidationFailed.one(
            "key", "invalid_key", "1-40 of a-z, 0-9 and _, starting with a letter"
        )
    label = _text(data, "label", 200, required=True)
    type_ = data.get("type")
    if type_ not in TYPES:
        raise ValidationFailed.one("type", "invalid_type", f"one of {', '.join(TYPES)}")
    required = data.get("required", False)
    if not isinstance(required, bool):
        raise ValidationFailed.one("required", "invalid_type", "must be true or false")
    help_text = _text(data, "help_text", 1000, required=False)
    shape = _checked_shape(type_, data)
    spec = ENTITIES[entity]
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        # First, so concurrent definition changes of a tenant queue on its row (the key and
        # count checks below then see each other's work).
        await _bump_policy(conn, ctx)
        if key in _RESERVED or key in entity_fields(spec) or key in spec.fields:
            raise Conflict(
                f"{key} is a built-in field of {entity}", field="key", code="key_conflict"
            )
        same = (
            await conn.execute(
                select(_fields.c.deleted_at).where(_fields.c.entity == entity, _fields.c.key == key)
            )
        ).first()
        if same is not None:
            retired = same.deleted_at is not None
            raise Conflict(
                f"a {'removed ' if retired else ''}custom field of {entity} used key {key}"
                + ("; its values are kept hidden, choose another key" if retired else ""),
                field="key",
                code="key_retired" if retired else "key_conflict",
            )
        count = (
            await conn.execute(
                select(func.count())
                .select_from(_fields)
                .where(_fields.c.entity == entity, _fields.c.deleted_at.is_(None))
            )
        ).scalar_one()
        if count >= MAX_FIELDS_PER_ENTITY:
            raise ValidationFailed.one(
                "entity",
                "too_many_fields",
                f"at most {MAX_FIELDS_PER_ENTITY} custom fields per entity",
            )
        field_id = uuid7()
        row = (
            await conn.execute(
                insert(_fields)
                .values(
                    tenant_id=ctx.tenant_id,
                    id=field_id,
                    entity=entity,
                    key=key,
                    label=label,
                    type=type_,
                    required=required,
                    help_text=help_text,
                    **shape,
                )
                .returning(_fields)
            )
        ).one()
        await policy_event(
            conn,
            ctx,
            EventType.CUSTOM_FIELD_CREATED,
            field_id=field_id,
            entity=entity,
            key=key,
            type=type_,
        )
    return view(row)


_UPDATABLE = frozenset({"label", "help_text", "required", "choices", "max_length"})


async def update_field(
    ctx: RequestContext, field_id: uuid.UUID | str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Label, help text, required, choices and max length may change; entity, key, type and
    target may not (stored values would change meaning). Nothing stored is rewritten: a new
    rule applies to the next write of a value."""
    fixed = sorted(set(data) - _UPDATABLE)
    if fixed:
        raise ValidationFailed.one(fixed[0], "read_only", "cannot change; delete and re-create")
    key = _id(field_id)
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        row = await _live(conn, key)
        values: dict[str, Any] = {}
        if "label" in data:
            values["label"] = _text(data, "label", 200, required=True)
        if "help_text" in data:
            values["help_text"] = _text(data, "help_text", 1000, required=False)
        if "required" in data:
            if not isinstance(data["required"], bool):
                raise ValidationFailed.one("required", "invalid_type", "must be true or false")
            values["required"] = data["required"]
        if "choices" in data or "max_length" in data:
            merged = {
                "choices": row.choices,
                "max_length": row.max_length,
                "target": row.target,
                **{k: data[k] for k in ("choices", "max_length") if k in data},
            }
            shape = _checked_shape(row.type, merged)
            values.update({k: shape[k] for k in ("choices", "max_length") if k in data})
        if not values:
            return view(row)
        updated = (
            await conn.execute(
                update(_fields)
                .where(_fields.c.id == key)
                .values(**values, version=_fields.c.version + 1, updated_at=func.now())
                .returning(_fields)
            )
        ).one()
        await _bump_policy(conn, ctx)
        await policy_event(
            conn,
            ctx,
            EventType.CUSTOM_FIELD_UPDATED,
            field_id=key,
            entity=row.entity,
            key=row.key,
            changed=sorted(values),
        )
    return view(updated)


async def delete_field(ctx: RequestContext, field_id: uuid.UUID | str) -> None:
    """Retire the definition: its values stay in the records, hidden (not returned, not
    filterable), and their change history stays."""
    key = _id(field_id)
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        row = await _live(conn, key)
        await conn.execute(
            update(_fields)
            .where(_fields.c.id == key)
            .values(deleted_at=func.now(), version=_fields.c.version + 1, updated_at=func.now())
        )
        await _bump_policy(conn, ctx)
        await policy_event(
            conn, ctx, EventType.CUSTOM_FIELD_DELETED, field_id=key, entity=row.entity, key=row.key
        )
