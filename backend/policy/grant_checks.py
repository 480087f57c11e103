"""Checks on what a policy change grants: well-formed rules and scopes, and no escalation
(nobody grants an allow, or lifts a deny, that would widen their own access)."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from backend.context import RequestContext
from backend.crm.registry import ENTITIES, entity_fields
from backend.errors import Forbidden, ValidationFailed
from backend.knowledge.models import POLICY_OBJECTS
from backend.policy.engine import ACTIONS, RECORD_SCOPES, TenantPolicy, user_subject
from backend.policy.role_views import RoleView, RuleView

# An entity or entity.field, where `*` may stand for any run of characters (a glob).
_OBJECT = re.compile(r"^[a-z_*]{1,64}(\.[a-z0-9_*]{1,64})?$")


def expand(obj: str, action: str, policy: TenantPolicy | None = None) -> list[tuple[str, str]]:
    """Every concrete (object, action) a rule on the glob `obj` and `action` covers (with
    `policy`: the tenant's custom field objects too)."""
    actions = ACTIONS if action == "*" else (action,)
    objects: list[str] = []
    for name, spec in ENTITIES.items():
        custom = policy.custom_fields.get(name, {}) if policy is not None else {}
        candidates = [
            name,
            *(f"{name}.{f}" for f in entity_fields(spec)),
            *(d.policy_object for d in custom.values()),
        ]
        objects.extend(o for o in candidates if fnmatchcase(o, obj))
    for name, parts in POLICY_OBJECTS.items():  # the knowledge base's objects
        candidates = [name, *(f"{name}.{part}" for part in parts)]
        objects.extend(o for o in candidates if fnmatchcase(o, obj))
    return [(o, a) for o in objects for a in actions]


def require_held(policy: TenantPolicy, ctx: RequestContext, grants: list[tuple[str, str]]) -> None:
    subject = user_subject(ctx.user_id)
    for obj, action in grants:
        if not policy.allows(subject, obj, action):
            raise Forbidden(
                f"you cannot grant {action} on {obj}: you do not hold it yourself",
                field="rules",
                code="escalation_refused",
            )


def refuse_lifting_own_deny(
    policy: TenantPolicy, ctx: RequestContext, role: RoleView, rules: list[RuleView], field: str
) -> None:
    """Lifting a deny that binds the caller would widen the caller's own access."""
    if role.id in policy.roles_of(ctx.user_id) and any(r.effect == "deny" for r in rules):
        raise Forbidden(
            f"you cannot lift a deny of role {role.name} from yourself",
            field=field,
            code="escalation_refused",
        )


def check_rule(effect: str, obj: str, action: str) -> None:
    if effect not in ("allow", "deny"):
        raise ValidationFailed.one("effect", "invalid_effect", "must be allow or deny")
    if action != "*" and action not in ACTIONS:
        raise ValidationFailed.one("action", "invalid_action", f"one of {', '.join(ACTIONS)}, *")
    if not _OBJECT.match(obj):
        raise ValidationFailed.one("object", "invalid_object", "entity, entity.field, or a glob")
    entity_part, _, field_part = obj.partition(".")
    if "*" not in entity_part:
        spec = ENTITIES.get(entity_part)
        if entity_part in POLICY_OBJECTS:
            parts = POLICY_OBJECTS[entity_part]
            if field_part and "*" not in field_part and field_part not in parts:
                raise ValidationFailed.one("object", "unknown_field", f"no object {obj!r}")
            return
        if spec is None:
            raise ValidationFailed.one("object", "unknown_entity", f"no entity {entity_part!r}")
        if (
            field_part
            and "*" not in field_part
            and not field_part.startswith("cf_")  # custom: checked by check_custom_object
            and field_part not in entity_fields(spec)
        ):
            raise ValidationFailed.one("object", "unknown_field", f"no field {obj!r}")


def check_custom_object(policy: TenantPolicy, obj: str) -> None:
    """`contact.cf_region_code` names a custom field the tenant defined (and has not
    removed); globs such as `contact.cf_*` are accepted as they are."""
    entity, _, field_part = obj.partition(".")
    if "*" in obj or not field_part.startswith("cf_"):
        return
    if field_part.removeprefix("cf_") not in policy.custom_fields.get(entity, {}):
        raise ValidationFailed.one("object", "unknown_field", f"no custom field {obj!r}")


def check_scope(entity: str, scope: str) -> None:
    if entity != "*" and entity not in ENTITIES:
        raise ValidationFailed.one("entity", "unknown_entity", f"no entity {entity!r}")
    if scope not in RECORD_SCOPES:
        raise ValidationFailed.one("scope", "invalid_scope", "own, team or tenant")
