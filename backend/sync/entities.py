"""Which entities sync: every entity the record service serves (backend/crm/registry.py),
named by its REST collection name (`contacts`), in registry order (paging relies on it)."""

from __future__ import annotations

from backend.crm.registry import SERVICES
from backend.errors import BadRequest
from backend.records.service import RecordService

MAX_ENTITIES_LENGTH = 500


def synced() -> dict[str, RecordService]:
    return {service.spec.plural: service for service in SERVICES.values()}


def by_history_name() -> dict[str, str]:
    """History rows name an entity in the singular (`contact`): its collection name."""
    return {service.spec.name: service.spec.plural for service in SERVICES.values()}


def parse_entities(text: str | None) -> list[str] | None:
    """`contacts,accounts` -> the named collections in registry order; None: all of them."""
    if text is None or not text.strip():
        return None
    known = synced()
    if len(text) > MAX_ENTITIES_LENGTH:
        raise BadRequest("entities: too long", field="entities", code="invalid_entities")
    asked = {name.strip() for name in text.split(",") if name.strip()}
    unknown = sorted(asked - set(known))
    if unknown:
        raise BadRequest(
            f"entities: {', '.join(unknown)} do not sync; use {', '.join(known)}",
            field="entities",
            code="unknown_entity",
        )
    return [name for name in known if name in asked]
