"""Valid values for any declared field, derived from its FieldSpec (kind, limits, choices), so a
new entity needs no sample data of its own. References (uuid fields naming another entity) are
the caller's business: they need a parent record."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from backend.records.fields import FieldSpec
from backend.records.spec import EntitySpec

_FIXED: dict[str, Any] = {
    "email": "matrix@example.com",
    "url": "https://matrix.example/",
    "phone": "+49 30 123456",
    "tags": ["matrix"],
    "country": "DE",
    "currency": "EUR",
    "date": "2027-01-15",
    "datetime": "2027-01-15T09:30:00Z",  # one instant for every datetime: no order rule breaks
}
_SECOND: dict[str, Any] = {
    "email": "changed@example.com",
    "url": "https://changed.example/",
    "phone": "+49 30 654321",
    "tags": ["changed"],
    "country": "FR",
    "currency": "USD",
    "date": "2027-02-16",
    # No second instant: moving one end of a span past the other breaks a rule (activities).
}


def _number(spec: FieldSpec, step: int) -> Any:
    low = spec.minimum if spec.minimum is not None else 0
    value = low + step
    if spec.maximum is not None:
        value = min(value, spec.maximum)
    if spec.kind == "integer":
        return value
    return str(Decimal(value).quantize(Decimal(1).scaleb(-spec.scale)))


def _text(spec: FieldSpec, word: str) -> str:
    return word[: spec.max_length] if spec.max_length is not None else word


def sample(spec: FieldSpec, *, second: bool = False, unique: bool = False) -> Any:
    """A valid value of the field (another valid one with `second`), as JSON; with `unique`
    (a field unique per tenant) one never given before."""
    if unique and spec.kind == "text":
        return _text(spec, f"M-{uuid.uuid4().hex}")
    if spec.kind == "boolean":  # false first: a "true" may be unique (a tenant's default)
        return second
    if spec.kind in ("integer", "decimal"):
        return _number(spec, 2 if second else 1)
    if spec.kind == "choice":
        return spec.choices[1 if second and len(spec.choices) > 1 else 0]
    if spec.kind == "text":
        return _text(spec, "Changed" if second else "Matrix")
    if second and spec.kind in _SECOND:
        return _SECOND[spec.kind]
    if spec.kind in _FIXED:
        return _FIXED[spec.kind]
    raise AssertionError(f"no sample for {spec.name} of kind {spec.kind}: teach tests/matrix")


def parent_refs(entity: EntitySpec) -> dict[str, EntitySpec]:
    """The fields that name a record of another entity, with that entity. A link to the same
    entity (a tree: contacts.reports_to_id) is left out: it has no parent to make first."""
    return {
        f: ref
        for f, ref in entity.references.items()
        if isinstance(ref, EntitySpec) and ref.name != entity.name
    }


def creatable(entity: EntitySpec) -> list[FieldSpec]:
    """Fields a create may carry that the matrix can fill: every on_create field but the
    references to plain tables (users), which nothing here can invent."""
    parents = parent_refs(entity)
    out = []
    for spec in entity.fields.values():
        if not spec.on_create:
            continue
        if spec.kind == "uuid" and spec.name not in parents:
            assert not spec.required, f"{entity.name}.{spec.name}: required, no parent entity"
            continue
        out.append(spec)
    return out


def update_field(entity: EntitySpec, may_update: Any) -> FieldSpec | None:
    """A field the caller may update to show a change in history: text first, then any kind
    that is not a reference."""
    candidates = [
        s
        for s in entity.fields.values()
        if s.on_update
        and s.kind not in ("uuid", "boolean")
        and s.name not in entity.unique_fields
        and may_update(s.name)
    ]
    # Text first; a datetime last (it has no second sample, so changing it changes nothing).
    candidates.sort(key=lambda s: (s.kind != "text", s.kind == "datetime"))
    return candidates[0] if candidates else None
