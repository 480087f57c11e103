"""What one caller may do with one entity: the compiled field mask and record scope.

Compiled once per (role set, entity) from the tenant's enforcer and cached with the policy.
The record service asks for it inside its transaction and applies it: entity actions, field
masks on reads, refused fields on writes, and the scope as a SQL condition.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.custom_fields.definition import CustomFieldDef
from backend.errors import Forbidden
from backend.policy.builtin import TENANT_ADMIN
from backend.policy.engine import (
    ACTIONS,
    RECORD_SCOPES,
    TenantPolicy,
    policies,
    role_subject,
    user_subject,
)
from backend.records.spec import EntitySpec

# Always visible: they identify a record and say nothing about the customer.
SYSTEM_FIELDS = frozenset({"id", "version", "created_at", "updated_at"})
# Columns that are not fields of their own: `custom` holds the custom fields, each policed
# as `<entity>.cf_<key>` and named `custom.<key>` in masks, errors, history and exports.
NOT_FIELDS = frozenset({"tenant_id", "custom"})


@dataclass(frozen=True)
class EntityAccess:
    entity: str
    allowed: frozenset[str]  # actions allowed on the entity
    fields: dict[str, frozenset[str]]  # action -> fields allowed for it
    scopes: dict[str, str]  # action -> own | team | tenant
    all_fields: frozenset[str]
    # The tenant's live custom fields of this entity, by key.
    custom: dict[str, CustomFieldDef] = field(default_factory=dict)

    def may(self, action: str) -> bool:
        return action in self.allowed

    def require(self, action: str) -> None:
        if action not in self.allowed:
            raise Forbidden(
                f"your roles do not allow {action} on {self.entity}",
                field=self.entity,
                code="action_forbidden",
            )

    def readable(self, action: str = "read") -> frozenset[str]:
        return self.fields.get(action, frozenset()) | SYSTEM_FIELDS

    def withheld(self, action: str = "read") -> list[str]:
        return sorted(self.all_fields - self.readable(action))

    def require_fields(self, action: str, names: list[str] | set[str]) -> None:
        """Refuse, naming the first field, a write or query that touches a forbidden field."""
        allowed = self.fields.get(action, frozenset())
        for name in sorted(names):
            if name in self.all_fields and name not in allowed and name not in SYSTEM_FIELDS:
                raise Forbidden(
                    f"your roles do not allow {action} on {self.entity}.{name}",
                    field=name,
                    code="field_forbidden",
                )


def _compile(policy: TenantPolicy, user_id: uuid.UUID, spec: EntitySpec) -> EntityAccess:
    subject = user_subject(user_id)
    roles = policy.roles_of(user_id)
    names = [c.name for c in spec.table.c if c.name not in NOT_FIELDS]
    maskable = [n for n in names if n not in SYSTEM_FIELDS]
    live = policy.custom_fields.get(spec.name, {})
    retired = policy.retired_fields.get(spec.name, {})
    allowed: set[str] = set()
    fields: dict[str, frozenset[str]] = {}
    scopes: dict[str, str] = {}
    for action in ACTIONS:
        if not policy.allows(subject, spec.name, action):
            fields[action] = frozenset()
            continue
        allowed.add(action)
        fields[action] = frozenset(
            n for n in maskable if policy.allows(subject, f"{spec.name}.{n}", action)
        ) | frozenset(d.name for d in live.values() if custom_allowed(policy, user_id, d, action))
        if action == "read_history":  # a removed field's history stays readable
            fields[action] |= frozenset(
                d.name for d in retired.values() if custom_allowed(policy, user_id, d, action)
            )
        # The widest scope among the roles that themselves grant the action.
        granted = [
            policy.scope_of(r, spec.name)
            for r in roles
            if policy.allows(role_subject(r), spec.name, action)
        ]
        scopes[action] = max(granted, key=RECORD_SCOPES.index) if granted else "own"
    return EntityAccess(
        entity=spec.name,
        allowed=frozenset(allowed),
        fields=fields,
        scopes=scopes,
        all_fields=frozenset(maskable) | frozenset(d.name for d in live.values()),
        custom=dict(live),
    )


def custom_allowed(
    policy: TenantPolicy, user_id: uuid.UUID, definition: CustomFieldDef, action: str
) -> bool:
    """A custom field is denied by default: the enforcer must allow it (a deny beats any
    allow, wildcards included) AND one of the caller's roles must name it in an allow rule
    (`contact.cf_region_code`, `contact.cf_*`, `*.cf_*`) or be the built-in tenant_admin. A
    plain `*` or `contact.*` rule written before the field existed never grants it."""
    obj = definition.policy_object
    if not policy.allows(user_subject(user_id), obj, action):
        return False
    admin = policy.builtin_roles.get(TENANT_ADMIN)
    for role in policy.roles_of(user_id):
        if role == admin:
            return True
        for pattern, act in policy.custom_rules.get(role, ()):
            if (act == "*" or act == action) and fnmatchcase(obj, pattern):
                return True
    return False


async def entity_access(
    ctx: RequestContext, conn: AsyncConnection, spec: EntitySpec
) -> EntityAccess:
    policy = await policies.get(conn, ctx.tenant_id)
    key = (policy.roles_of(ctx.user_id), spec.name)
    compiled = policy.compiled.get(key)
    if compiled is None:
        compiled = policy.compiled[key] = _compile(policy, ctx.user_id, spec)
    assert isinstance(compiled, EntityAccess)
    return compiled
