"""Phone numbers normalised to E.164 (libphonenumber's rules) and the index the contact and
account services keep of them, written in the same transaction as the record."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import phonenumbers
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.accounts.models import Account
from backend.crm.contacts.models import Contact
from backend.custom_fields.models import CustomField
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.lookup.models import PhoneNumber
from backend.records.service import Record
from backend.records.spec import EntitySpec
from backend.tenants.models import Tenant

DEFAULT_REGION = "US"
# What the migration backfills; the write hook reads an entity's phone fields from its spec.
PHONE_FIELDS = (
    ("contact", "contacts", ("phone", "mobile_phone")),
    ("account", "accounts", ("phone",)),
)
_numbers = table_of(PhoneNumber)
_tenants = table_of(Tenant)
_custom_fields = table_of(CustomField)


def to_e164(raw: str, region: str) -> str | None:
    """The number in E.164 (+14155550100), or None when it is not a possible phone number.
    A number without a country code is read in `region` (ISO 3166-1 alpha-2)."""
    if len(raw) > 64:
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def valid_region(region: str) -> bool:
    return region in phonenumbers.SUPPORTED_REGIONS


async def tenant_region(conn: AsyncConnection, ctx: RequestContext) -> str:
    stmt = select(_tenants.c.default_region).where(_tenants.c.id == ctx.tenant_id)
    region = (await conn.execute(stmt)).scalar_one_or_none()
    return region or DEFAULT_REGION


async def custom_phone_fields(
    conn: AsyncConnection, tenant_id: uuid.UUID, entity: str
) -> list[str]:
    """The tenant's live phone-type custom fields of `entity`, as `custom.<key>` names."""
    stmt = select(_custom_fields.c.key).where(
        _custom_fields.c.tenant_id == tenant_id,
        _custom_fields.c.entity == entity,
        _custom_fields.c.type == "phone",
        _custom_fields.c.deleted_at.is_(None),
    )
    return [f"custom.{key}" for key in (await conn.execute(stmt)).scalars()]


def _flat(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record with its custom values also as `custom.<key>` entries."""
    custom = record.get("custom") or {}
    return {**record, **{f"custom.{k}": v for k, v in custom.items()}}


async def index_phones(
    conn: AsyncConnection,
    ctx: RequestContext,
    spec: EntitySpec,
    before: Record | None,
    after: Record | None,
) -> None:
    """RecordService write hook: replace the record's index rows with its current numbers."""
    fields = [f.name for f in spec.fields.values() if f.kind == "phone"]
    if any(r is not None and r.get("custom") for r in (before, after)):
        # Only a record with custom values can have custom phone numbers: no round trip else.
        fields += await custom_phone_fields(conn, ctx.tenant_id, spec.name)
    record = after if after is not None else before
    if not fields or record is None:
        return
    old = _flat(before) if before is not None else {}
    new = _flat(after) if after is not None else {}
    if before is not None and after is not None and all(old.get(f) == new.get(f) for f in fields):
        return  # no phone field changed
    if before is not None:  # a new record has no index rows yet: no round trip to delete them
        await conn.execute(
            delete(_numbers).where(
                _numbers.c.tenant_id == ctx.tenant_id,
                _numbers.c.entity == spec.name,
                _numbers.c.record_id == record["id"],
            )
        )
    if after is None or not any(new.get(f) for f in fields):
        return  # nothing to index: the tenant's region is not needed
    region = await tenant_region(conn, ctx)
    rows = _index_rows(ctx.tenant_id, spec.name, new, fields, region)
    if rows:
        await conn.execute(insert(_numbers), rows)


def _index_rows(
    tenant_id: uuid.UUID,
    entity: str,
    record: Mapping[str, Any],
    fields: Iterable[str],
    region: str,
) -> list[dict[str, Any]]:
    rows = []
    for field in fields:
        value = record.get(field)
        e164 = to_e164(value, region) if isinstance(value, str) and value else None
        if e164 is not None:
            rows.append(
                {
                    "tenant_id": tenant_id,
                    "id": uuid7(),
                    "entity": entity,
                    "record_id": record["id"],
                    "field": field,
                    "e164": e164,
                }
            )
    return rows


async def reindex_phones(conn: AsyncConnection, tenant_id: uuid.UUID, region: str) -> None:
    """Rebuild the tenant's whole index (after its default region changed)."""
    await conn.execute(delete(_numbers).where(_numbers.c.tenant_id == tenant_id))
    for entity, model in (("contact", Contact), ("account", Account)):
        table = table_of(model)
        builtin = next(f for e, _, f in PHONE_FIELDS if e == entity)
        fields = [*builtin, *await custom_phone_fields(conn, tenant_id, entity)]
        stmt = select(table.c.id, table.c.custom, *(table.c[f] for f in builtin)).where(
            table.c.tenant_id == tenant_id
        )
        rows: list[dict[str, Any]] = []
        for record in (await conn.execute(stmt)).mappings():
            rows.extend(_index_rows(tenant_id, entity, _flat(dict(record)), fields, region))
        if rows:
            await conn.execute(insert(_numbers), rows)
