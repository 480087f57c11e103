"""Each tenant's export rules: limits per role, fields never exported, the bulk-read budget.

Stored as one JSON document per tenant (table export_rules); a tenant that never set any gets
the SAFE DEFAULTS below: a role not named may not export at all (salespeople, support,
marketing), managers up to 1,000 rows, admins more, with approval above a threshold.
"""

from __future__ import annotations

import re
import uuid
from fnmatch import fnmatchcase

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.db.base import table_of
from backend.errors import ValidationFailed
from backend.exports.models import ExportRules

_rules = table_of(ExportRules)
_FIELD_GLOB = re.compile(r"^[a-z_*]{1,64}\.[a-z0-9_*]{1,64}$")
MAX_ROWS_CEILING = 10_000_000


class RoleLimits(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    max_rows: int = 0  # rows in one export; 0: no export at all
    approval_threshold: int | None = None  # above it an export waits for an admin's approval
    daily_rows: int = 0  # rows one user may export per UTC day


class BulkReadBudget(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    rows: int = 10_000  # rows one user may read in bulk per window (lists, pages, exports)
    cells: int = 400_000  # rows x fields per window
    window_seconds: int = 3600


class RuleSet(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    roles: dict[str, RoleLimits] = msgspec.field(
        default_factory=lambda: {
            "tenant_admin": RoleLimits(
                max_rows=100_000, approval_threshold=10_000, daily_rows=500_000
            ),
            "sales_manager": RoleLimits(max_rows=1_000, approval_threshold=500, daily_rows=5_000),
        }
    )
    default: RoleLimits = msgspec.field(default_factory=RoleLimits)  # every role not named
    # "entity.field" globs refused for everyone, admins included.
    never_export: list[str] = msgspec.field(
        default_factory=lambda: ["*.cost", "*.margin", "*.unit_cost", "*.total_cost"]
    )
    bulk_read: BulkReadBudget = msgspec.field(default_factory=BulkReadBudget)
    link_ttl_seconds: int = 300
    file_ttl_seconds: int = 86_400

    def limits_for(self, role_names: set[str]) -> RoleLimits:
        """The most generous limits among the caller's roles (roles add up, like grants)."""
        candidates = [self.roles[r] for r in sorted(role_names) if r in self.roles]
        if not candidates:
            return self.default
        return max(candidates, key=lambda r: (r.max_rows, r.approval_threshold or 0))

    def never_exported(self, entity: str, field: str) -> bool:
        return any(fnmatchcase(f"{entity}.{field}", glob) for glob in self.never_export)


def validate(rules: RuleSet) -> RuleSet:
    problems: list[tuple[str, str]] = []
    for name, limits in [*rules.roles.items(), ("default", rules.default)]:
        where = "default" if name == "default" else f"roles.{name}"
        for value, label in ((limits.max_rows, "max_rows"), (limits.daily_rows, "daily_rows")):
            if not 0 <= value <= MAX_ROWS_CEILING:
                problems.append((f"{where}.{label}", f"must be 0..{MAX_ROWS_CEILING}"))
        if limits.approval_threshold is not None and limits.approval_threshold < 0:
            problems.append((f"{where}.approval_threshold", "must not be negative"))
    for glob in rules.never_export:
        if not _FIELD_GLOB.match(glob):
            problems.append(("never_export", f"{glob!r} is not an 'entity.field' pattern"))
    budget = rules.bulk_read
    if budget.rows < 1 or budget.cells < 1:
        problems.append(("bulk_read", "rows and cells must be at least 1"))
    if not 1 <= budget.window_seconds <= 7 * 86_400:
        problems.append(("bulk_read.window_seconds", "must be 1..604800"))
    if not 10 <= rules.link_ttl_seconds <= 3600:
        problems.append(("link_ttl_seconds", "must be 10..3600"))
    if not 60 <= rules.file_ttl_seconds <= 30 * 86_400:
        problems.append(("file_ttl_seconds", "must be 60..2592000"))
    if problems:
        field, message = problems[0]
        raise ValidationFailed.one(field, "invalid_value", message)
    return rules


def decode(document: object) -> RuleSet:
    return msgspec.convert(document, RuleSet)


async def load_rules(conn: AsyncConnection, tenant_id: uuid.UUID) -> RuleSet:
    stmt = select(_rules.c.rules).where(_rules.c.tenant_id == tenant_id)
    document = (await conn.execute(stmt)).scalar_one_or_none()
    return RuleSet() if document is None else decode(document)


async def save_rules(
    conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID, rules: RuleSet
) -> None:
    document = msgspec.to_builtins(validate(rules))
    stmt = insert(_rules).values(tenant_id=tenant_id, rules=document, updated_by=user_id)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_rules.c.tenant_id],
        set_={"rules": document, "updated_by": user_id, "updated_at": stmt.excluded.updated_at},
    )
    await conn.execute(stmt)
