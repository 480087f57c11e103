"""Whether an export may run: the role's `export` permission on the entity and every field
(the policy engine), the tenant's never-export fields (admins included), and its limits:
rows per export, rows per user per day, and the approval threshold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backend.errors import Forbidden, ValidationFailed
from backend.exports.rules import RuleSet
from backend.policy.access import SYSTEM_FIELDS, EntityAccess


class ExportBlocked(Forbidden):
    """Refused by the tenant's export rules (not by the role's permissions)."""

    code = "export_blocked"


@dataclass(frozen=True)
class Decision:
    status: str  # ready | pending
    reason: str | None


def choose_fields(
    access: EntityAccess, rules: RuleSet, requested: Sequence[str] | None
) -> list[str]:
    """The requested fields (checked), or by default every field the caller may export."""
    known = access.all_fields | SYSTEM_FIELDS
    if requested is None:
        exportable = access.fields.get("export", frozenset())
        allowed = (f for f in exportable if not rules.never_exported(access.entity, f))
        return ["id", *sorted(allowed)]
    if not requested:
        raise ValidationFailed.one("fields", "required", "name at least one field")
    for name in requested:
        if name not in known:
            raise ValidationFailed.one("fields", "unknown_field", f"{name} is not a field")
    if len(set(requested)) != len(requested):
        raise ValidationFailed.one("fields", "duplicate", "a field is named twice")
    access.require_fields("export", set(requested))
    for name in requested:
        if rules.never_exported(access.entity, name):
            raise ExportBlocked(
                f"{access.entity}.{name} may never be exported in this tenant",
                field=name,
                code="field_never_exported",
            )
    return list(requested)


def decide(rules: RuleSet, role_names: set[str], row_count: int, exported_today: int) -> Decision:
    limits = rules.limits_for(role_names)
    if limits.max_rows <= 0:
        raise ExportBlocked(
            "your roles may not export in this tenant", field="entity", code="export_not_allowed"
        )
    if row_count > limits.max_rows:
        raise ExportBlocked(
            f"{row_count} rows is over your limit of {limits.max_rows} rows per export",
            field="filter",
            code="export_row_limit",
        )
    if exported_today + row_count > limits.daily_rows:
        raise ExportBlocked(
            f"{row_count} more rows is over your limit of {limits.daily_rows} rows a day "
            f"({exported_today} exported today)",
            field="filter",
            code="export_daily_limit",
        )
    threshold = limits.approval_threshold
    if threshold is not None and row_count > threshold:
        return Decision("pending", f"{row_count} rows is over the approval threshold {threshold}")
    return Decision("ready", None)
