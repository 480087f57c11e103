"""Each tenant's policy, loaded into a Casbin enforcer and cached per server process.

The cache is keyed by the tenant's `policy_version`, which every tenant transaction knows as
it begins (remembered per process and refreshed by NOTIFY, else read: see
backend/db/session.py): a policy change bumps it, so every process reloads on its next
request for that tenant. Field masks are compiled from the enforcer once per
(role set, entity) and cached with it.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import casbin
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.custom_fields.definition import CustomFieldDef
from backend.custom_fields.models import CustomField
from backend.db.base import table_of
from backend.db.session import POLICY_VERSION
from backend.policy.models import Role, RoleRule, RoleScope, UserRole

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"
MODEL_PATH = POLICY_DIR / "model.conf"
ACTIONS = ("read", "create", "update", "delete", "export", "read_history")
# The record scopes a role may hold per entity, narrowest first (as SQL: record_scope.py).
RECORD_SCOPES = ("own", "team", "tenant")
MAX_CACHED_TENANTS = 1024

_roles, _rules = table_of(Role), table_of(RoleRule)
_scopes, _user_roles = table_of(RoleScope), table_of(UserRole)
_custom = table_of(CustomField)


def user_subject(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


def role_subject(role_id: uuid.UUID) -> str:
    return f"role:{role_id}"


@dataclass
class TenantPolicy:
    tenant_id: uuid.UUID
    version: int
    enforcer: casbin.Enforcer
    role_names: dict[uuid.UUID, str]
    builtin_roles: dict[str, uuid.UUID]
    user_roles: dict[uuid.UUID, frozenset[uuid.UUID]]
    role_scopes: dict[uuid.UUID, dict[str, str]]
    # Custom field definitions, live and removed, per entity then key (their changes bump
    # the policy version too), and per role its allow rules that name custom fields
    # (`contact.cf_region_code`, `*.cf_*`): only those, or the tenant_admin role, grant one.
    custom_fields: dict[str, dict[str, CustomFieldDef]] = field(default_factory=dict)
    retired_fields: dict[str, dict[str, CustomFieldDef]] = field(default_factory=dict)
    custom_rules: dict[uuid.UUID, list[tuple[str, str]]] = field(default_factory=dict)
    # Compiled masks: (role set, entity) -> EntityAccess (see backend/policy/access.py).
    compiled: dict[tuple[frozenset[uuid.UUID], str], object] = field(default_factory=dict)

    @property
    def domain(self) -> str:
        return str(self.tenant_id)

    def roles_of(self, user_id: uuid.UUID) -> frozenset[uuid.UUID]:
        return self.user_roles.get(user_id, frozenset())

    def allows(self, subject: str, obj: str, action: str) -> bool:
        return bool(self.enforcer.enforce(subject, self.domain, obj, action))

    def explain(self, subject: str, obj: str, action: str) -> tuple[bool, list[str]]:
        allowed, rule = self.enforcer.enforce_ex(subject, self.domain, obj, action)
        return bool(allowed), list(rule)

    def scope_of(self, role_id: uuid.UUID, entity: str) -> str:
        scopes = self.role_scopes.get(role_id, {})
        return scopes.get(entity) or scopes.get("*") or "own"


async def _load(conn: AsyncConnection, tenant_id: uuid.UUID, version: int) -> TenantPolicy:
    domain = str(tenant_id)
    enforcer = casbin.Enforcer(str(MODEL_PATH), enable_log=False)
    roles = (await conn.execute(select(_roles.c.id, _roles.c.name, _roles.c.builtin))).all()
    rules = (
        await conn.execute(
            select(_rules.c.role_id, _rules.c.object, _rules.c.action, _rules.c.effect)
        )
    ).all()
    if rules:
        enforcer.add_policies(
            [[role_subject(r.role_id), domain, r.object, r.action, r.effect] for r in rules]
        )
    assignments = (await conn.execute(select(_user_roles.c.user_id, _user_roles.c.role_id))).all()
    if assignments:
        enforcer.add_grouping_policies(
            [[user_subject(a.user_id), role_subject(a.role_id), domain] for a in assignments]
        )
    user_roles: dict[uuid.UUID, set[uuid.UUID]] = {}
    for a in assignments:
        user_roles.setdefault(a.user_id, set()).add(a.role_id)
    role_scopes: dict[uuid.UUID, dict[str, str]] = {}
    for s in (
        await conn.execute(select(_scopes.c.role_id, _scopes.c.entity, _scopes.c.scope))
    ).all():
        role_scopes.setdefault(s.role_id, {})[s.entity] = s.scope
    custom_fields: dict[str, dict[str, CustomFieldDef]] = {}
    retired_fields: dict[str, dict[str, CustomFieldDef]] = {}
    for row in (await conn.execute(select(_custom))).all():
        kept = custom_fields if row.deleted_at is None else retired_fields
        kept.setdefault(row.entity, {})[row.key] = CustomFieldDef.of(row)
    custom_rules: dict[uuid.UUID, list[tuple[str, str]]] = {}
    for r in rules:
        if r.effect == "allow" and r.object.partition(".")[2].startswith("cf_"):
            custom_rules.setdefault(r.role_id, []).append((r.object, r.action))
    return TenantPolicy(
        tenant_id=tenant_id,
        version=version,
        enforcer=enforcer,
        role_names={r.id: r.name for r in roles},
        builtin_roles={r.name: r.id for r in roles if r.builtin},
        user_roles={u: frozenset(ids) for u, ids in user_roles.items()},
        role_scopes=role_scopes,
        custom_fields=custom_fields,
        retired_fields=retired_fields,
        custom_rules=custom_rules,
    )


class PolicyCache:
    """Process-wide LRU of tenant policies, checked against the version each transaction read."""

    def __init__(self, max_tenants: int = MAX_CACHED_TENANTS) -> None:
        self._policies: OrderedDict[uuid.UUID, TenantPolicy] = OrderedDict()
        self._max = max_tenants
        self._lock = threading.Lock()

    async def get(self, conn: AsyncConnection, tenant_id: uuid.UUID) -> TenantPolicy:
        version = int(conn.info[POLICY_VERSION])
        with self._lock:
            cached = self._policies.get(tenant_id)
            if cached is not None and cached.version == version:
                self._policies.move_to_end(tenant_id)
                return cached
        policy = await _load(conn, tenant_id, version)
        with self._lock:
            self._policies[tenant_id] = policy
            self._policies.move_to_end(tenant_id)
            while len(self._policies) > self._max:
                self._policies.popitem(last=False)
        return policy


policies = PolicyCache()
