"""Effective permissions: what a user may do on an entity, and which rule says so."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from backend.context import RequestContext
from backend.crm.registry import ENTITIES, entity_fields
from backend.custom_fields.definition import CustomFieldDef
from backend.errors import NotFound
from backend.policy.access import SYSTEM_FIELDS, custom_allowed
from backend.policy.admin import admin_policy
from backend.policy.assignments import require_user
from backend.policy.engine import (
    ACTIONS,
    RECORD_SCOPES,
    TenantPolicy,
    policies,
    role_subject,
    user_subject,
)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    because: str  # the deciding rule, in words


@dataclass(frozen=True)
class ActionPermissions:
    action: str
    allowed: bool
    because: str
    scope: str | None
    fields: dict[str, Decision]


@dataclass(frozen=True)
class EffectivePermissions:
    user_id: uuid.UUID
    entity: str
    roles: list[str]
    actions: list[ActionPermissions]


def _because(policy: TenantPolicy, allowed: bool, rule: list[str]) -> str:
    if not rule:
        return "no rule of the user's roles allows it"
    subject, _, obj, action, effect = rule
    role = policy.role_names.get(uuid.UUID(subject.removeprefix("role:")), subject)
    verb = "allows" if effect == "allow" else "denies"
    outcome = "" if allowed or effect == "deny" else " (but a deny elsewhere wins)"
    return f"role {role} {verb} {action} on {obj}{outcome}"


def _decide(policy: TenantPolicy, subject: str, obj: str, action: str) -> Decision:
    allowed, rule = policy.explain(subject, obj, action)
    if not allowed and rule and rule[4] == "allow":
        # Casbin reports the matching allow; name the deny that overrides it instead.
        for role in policy.enforcer.get_implicit_roles_for_user(subject, policy.domain):
            denied, deny_rule = policy.explain(role, obj, action)
            if not denied and deny_rule and deny_rule[4] == "deny":
                rule = deny_rule
                break
    return Decision(allowed, _because(policy, allowed, rule))


def _decide_custom(
    policy: TenantPolicy, user_id: uuid.UUID, definition: CustomFieldDef, action: str
) -> Decision:
    """A custom field: the enforcer's decision, and a role must name it (or be tenant_admin)."""
    enforced = _decide(policy, user_subject(user_id), definition.policy_object, action)
    if not enforced.allowed or custom_allowed(policy, user_id, definition, action):
        return enforced
    return Decision(
        False,
        f"custom fields are denied by default: no rule of the user's roles names "
        f"{definition.policy_object}",
    )


async def effective_permissions(
    ctx: RequestContext, user_id: uuid.UUID, entity: str
) -> EffectivePermissions:
    spec = ENTITIES.get(entity)
    if spec is None:
        raise NotFound(f"no entity {entity!r}", field="entity")
    async with ctx.session.transaction() as conn:
        if user_id == ctx.user_id:
            policy = await policies.get(conn, ctx.tenant_id)
        else:  # only admins may look at someone else's permissions
            policy = await admin_policy(conn, ctx)
            await require_user(conn, user_id)
    roles = policy.roles_of(user_id)
    subject = user_subject(user_id)
    actions = []
    for action in ACTIONS:
        decision = _decide(policy, subject, entity, action)
        granted = [
            policy.scope_of(r, entity)
            for r in roles
            if policy.allows(role_subject(r), entity, action)
        ]
        fields = {
            name: _decide(policy, subject, f"{entity}.{name}", action)
            if decision.allowed
            else Decision(False, f"{action} on {entity} is not allowed")
            for name in entity_fields(spec)
            if name not in SYSTEM_FIELDS
        }
        for definition in policy.custom_fields.get(entity, {}).values():
            fields[definition.name] = (
                _decide_custom(policy, user_id, definition, action)
                if decision.allowed
                else Decision(False, f"{action} on {entity} is not allowed")
            )
        actions.append(
            ActionPermissions(
                action=action,
                allowed=decision.allowed,
                because=decision.because,
                scope=max(granted, key=RECORD_SCOPES.index)
                if decision.allowed and granted
                else None,
                fields=fields,
            )
        )
    return EffectivePermissions(
        user_id=user_id,
        entity=entity,
        roles=sorted(policy.role_names.get(r, str(r)) for r in roles),
        actions=actions,
    )
