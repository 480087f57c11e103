"""Policy administration: roles, their rules and scopes, and who holds them.

Only tenant admins change policy. Nobody can grant (to a role, or by assigning a role) an
allow they do not hold themselves. Every change bumps the tenant's policy version, so every
server process reloads the policy on its next request, and is recorded as a security event.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.registry import ENTITIES, entity_fields
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import note_policy_change
from backend.errors import Conflict, Forbidden, NotFound, ValidationFailed
from backend.history.events import EventType, record_event
from backend.policy.builtin import TENANT_ADMIN
from backend.policy.engine import ACTIONS, SCOPES, TenantPolicy, policies, user_subject
from backend.policy.models import Role, RoleRule, RoleScope, UserRole
from backend.policy.scopes import require_scope
from backend.tenants.models import Tenant, User

_roles, _rules, _scopes = table_of(Role), table_of(RoleRule), table_of(RoleScope)
_user_roles, _users, _tenants = table_of(UserRole), table_of(User), table_of(Tenant)
_ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
# An entity or entity.field, where `*` may stand for any run of characters (a glob).
_OBJECT = re.compile(r"^[a-z_*]{1,64}(\.[a-z0-9_*]{1,64})?$")


@dataclass(frozen=True)
class RuleView:
    id: uuid.UUID
    effect: str
    object: str
    action: str


@dataclass(frozen=True)
class RoleView:
    id: uuid.UUID
    name: str
    description: str | None
    builtin: bool
    rules: list[RuleView] = field(default_factory=list)
    scopes: dict[str, str] = field(default_factory=dict)


# -- guards --------------------------------------------------------------------------------
async def admin_policy(conn: AsyncConnection, ctx: RequestContext) -> TenantPolicy:
    """The tenant's policy, if the caller is a tenant admin (and the token may administer)."""
    require_scope(ctx, "admin")
    policy = await policies.get(conn, ctx.tenant_id)
    admin_role = policy.builtin_roles.get(TENANT_ADMIN)
    if admin_role is None or admin_role not in policy.roles_of(ctx.user_id):
        raise Forbidden("only tenant admins may do this", code="admin_required")
    return policy


async def require_admin(ctx: RequestContext) -> None:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)


# -- the last admin ------------------------------------------------------------------------
@dataclass(frozen=True)
class Admins:
    """Who holds tenant_admin right now, read from the database under the tenant's lock."""

    role_id: uuid.UUID | None
    active_humans: frozenset[uuid.UUID]  # active users of kind "person": the ones that count

    def refuse_losing(self, user_id: uuid.UUID, field: str) -> None:
        """Refuse a change that takes `user_id` out of the active human admins when nobody
        else would be left."""
        if user_id in self.active_humans and not self.active_humans - {user_id}:
            raise Conflict("the tenant would have no admin left", field=field, code="last_admin")


async def _lock_tenant(conn: AsyncConnection, ctx: RequestContext) -> None:
    # FOR NO KEY UPDATE (key_share=True): the lock a policy-version bump takes anyway.
    await conn.execute(
        select(_tenants.c.id).where(_tenants.c.id == ctx.tenant_id).with_for_update(key_share=True)
    )


async def lock_admins(conn: AsyncConnection, ctx: RequestContext) -> Admins:
    """Lock the tenant's row, then read its admins from the database (never the cached policy).

    Every change that can take an admin away (demoting, deactivating) calls this first in its
    transaction, so such changes run one at a time per tenant and each one counts what the
    previous one committed: two admins demoting each other or themselves at the same moment
    cannot both succeed. FOR NO KEY UPDATE, the lock a policy-version bump takes anyway, so
    inserts into tables referencing the tenant (which take KEY SHARE) are not held up.

    The caller must still be an active tenant admin once the lock is held: a change that
    committed meanwhile may have demoted or deactivated them.
    """
    await _lock_tenant(conn, ctx)
    role_id = (
        await conn.execute(
            select(_roles.c.id).where(_roles.c.name == TENANT_ADMIN, _roles.c.builtin.is_(True))
        )
    ).scalar_one_or_none()
    holders = (
        (
            await conn.execute(
                select(_users.c.id, _users.c.active, _users.c.kind)
                .join(
                    _user_roles,
                    (_user_roles.c.tenant_id == _users.c.tenant_id)
                    & (_user_roles.c.user_id == _users.c.id),
                )
                .where(_user_roles.c.role_id == role_id)
            )
        ).all()
        if role_id is not None
        else []
    )
    if not any(h.id == ctx.user_id and h.active for h in holders):
        raise Forbidden("only tenant admins may do this", code="admin_required")
    return Admins(role_id, frozenset(h.id for h in holders if h.active and h.kind == "person"))


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
    return [(o, a) for o in objects for a in actions]


def _require_held(policy: TenantPolicy, ctx: RequestContext, grants: list[tuple[str, str]]) -> None:
    subject = user_subject(ctx.user_id)
    for obj, action in grants:
        if not policy.allows(subject, obj, action):
            raise Forbidden(
                f"you cannot grant {action} on {obj}: you do not hold it yourself",
                field="rules",
                code="escalation_refused",
            )


def _refuse_lifting_own_deny(
    policy: TenantPolicy, ctx: RequestContext, role: RoleView, rules: list[RuleView], field: str
) -> None:
    """Lifting a deny that binds the caller would widen the caller's own access."""
    if role.id in policy.roles_of(ctx.user_id) and any(r.effect == "deny" for r in rules):
        raise Forbidden(
            f"you cannot lift a deny of role {role.name} from yourself",
            field=field,
            code="escalation_refused",
        )


def _check_rule(effect: str, obj: str, action: str) -> None:
    if effect not in ("allow", "deny"):
        raise ValidationFailed.one("effect", "invalid_effect", "must be allow or deny")
    if action != "*" and action not in ACTIONS:
        raise ValidationFailed.one("action", "invalid_action", f"one of {', '.join(ACTIONS)}, *")
    if not _OBJECT.match(obj):
        raise ValidationFailed.one("object", "invalid_object", "entity, entity.field, or a glob")
    entity_part, _, field_part = obj.partition(".")
    if "*" not in entity_part:
        spec = ENTITIES.get(entity_part)
        if spec is None:
            raise ValidationFailed.one("object", "unknown_entity", f"no entity {entity_part!r}")
        if (
            field_part
            and "*" not in field_part
            and not field_part.startswith("cf_")  # custom: checked by _check_custom_object
            and field_part not in entity_fields(spec)
        ):
            raise ValidationFailed.one("object", "unknown_field", f"no field {obj!r}")


def _check_custom_object(policy: TenantPolicy, obj: str) -> None:
    """`contact.cf_region_code` names a custom field the tenant defined (and has not
    removed); globs such as `contact.cf_*` are accepted as they are."""
    entity, _, field_part = obj.partition(".")
    if "*" in obj or not field_part.startswith("cf_"):
        return
    if field_part.removeprefix("cf_") not in policy.custom_fields.get(entity, {}):
        raise ValidationFailed.one("object", "unknown_field", f"no custom field {obj!r}")


async def _bump(conn: AsyncConnection, ctx: RequestContext) -> None:
    await conn.execute(
        update(_tenants)
        .where(_tenants.c.id == ctx.tenant_id)
        .values(policy_version=_tenants.c.policy_version + 1, updated_at=func.now())
    )
    await note_policy_change(conn, ctx.tenant_id)


async def policy_event(
    conn: AsyncConnection, ctx: RequestContext, event: EventType, **details: object
) -> None:
    """Record a policy change, by whom and through which channel, in the change's transaction."""
    await record_event(
        conn,
        ctx.tenant_id,
        event,
        actor_user_id=ctx.user_id,
        actor_client_id=ctx.principal.client_id,
        request_id=ctx.request_id,
        channel=ctx.channel,
        details={k: str(v) if isinstance(v, uuid.UUID) else v for k, v in details.items()},
    )


# -- reading -------------------------------------------------------------------------------
async def _role_views(conn: AsyncConnection, role_id: uuid.UUID | None = None) -> list[RoleView]:
    roles_q = select(_roles).order_by(_roles.c.name)
    rules_q = select(_rules).order_by(_rules.c.object, _rules.c.action)
    scopes_q = select(_scopes)
    if role_id is not None:
        roles_q = roles_q.where(_roles.c.id == role_id)
        rules_q = rules_q.where(_rules.c.role_id == role_id)
        scopes_q = scopes_q.where(_scopes.c.role_id == role_id)
    roles = (await conn.execute(roles_q)).all()
    rules: dict[uuid.UUID, list[RuleView]] = {}
    for r in (await conn.execute(rules_q)).all():
        rules.setdefault(r.role_id, []).append(RuleView(r.id, r.effect, r.object, r.action))
    scopes: dict[uuid.UUID, dict[str, str]] = {}
    for s in (await conn.execute(scopes_q)).all():
        scopes.setdefault(s.role_id, {})[s.entity] = s.scope
    return [
        RoleView(r.id, r.name, r.description, r.builtin, rules.get(r.id, []), scopes.get(r.id, {}))
        for r in roles
    ]


async def list_roles(ctx: RequestContext) -> list[RoleView]:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        return await _role_views(conn)


async def get_role(ctx: RequestContext, role_id: uuid.UUID) -> RoleView:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        return await _one_role(conn, role_id)


async def _one_role(conn: AsyncConnection, role_id: uuid.UUID) -> RoleView:
    found = await _role_views(conn, role_id)
    if not found:
        raise NotFound("role not found")
    return found[0]


# -- roles ---------------------------------------------------------------------------------
def _check_name(name: str) -> None:
    if not _ROLE_NAME.match(name):
        raise ValidationFailed.one("name", "invalid_name", "2-64 of a-z, 0-9 and _, from a letter")


async def create_role(
    ctx: RequestContext,
    *,
    name: str,
    description: str | None = None,
    rules: list[tuple[str, str, str]] | None = None,
    scopes: dict[str, str] | None = None,
) -> RoleView:
    _check_name(name)
    if description is not None and len(description) > 500:
        raise ValidationFailed.one("description", "too_long", "at most 500 characters")
    for effect, obj, action in rules or []:
        _check_rule(effect, obj, action)
    for entity, scope in (scopes or {}).items():
        _check_scope(entity, scope)
    async with ctx.session.transaction() as conn:
        policy = await admin_policy(conn, ctx)
        for _, obj, _ in rules or []:
            _check_custom_object(policy, obj)
        _require_held(
            policy,
            ctx,
            [
                g
                for effect, obj, act in rules or []
                if effect == "allow"
                for g in expand(obj, act, policy)
            ],
        )
        role_id = uuid7()
        try:
            async with conn.begin_nested():
                await conn.execute(
                    insert(_roles).values(
                        tenant_id=ctx.tenant_id, id=role_id, name=name, description=description
                    )
                )
        except IntegrityError:
            raise Conflict(
                f"a role named {name!r} exists", field="name", code="duplicate"
            ) from None
        for effect, obj, action in rules or []:
            await _insert_rule(conn, ctx, role_id, effect, obj, action)
        for entity, scope in (scopes or {}).items():
            await _upsert_scope(conn, ctx, role_id, entity, scope)
        await _bump(conn, ctx)
        await policy_event(conn, ctx, EventType.ROLE_CREATED, role_id=role_id, name=name)
        return await _one_role(conn, role_id)


async def update_role(
    ctx: RequestContext, role_id: uuid.UUID, *, name: str | None, description: str | None
) -> RoleView:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        role = await _one_role(conn, role_id)
        values: dict[str, object] = {}
        if name is not None and name != role.name:
            if role.builtin:
                raise Forbidden(
                    "built-in roles keep their names", field="name", code="builtin_role"
                )
            _check_name(name)
            values["name"] = name
        if description is not None:
            if len(description) > 500:
                raise ValidationFailed.one("description", "too_long", "at most 500 characters")
            values["description"] = description
        if values:
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        update(_roles)
                        .where(_roles.c.id == role_id)
                        .values(**values, version=_roles.c.version + 1, updated_at=func.now())
                    )
            except IntegrityError:
                raise Conflict(
                    "a role with this name exists", field="name", code="duplicate"
                ) from None
            await _bump(conn, ctx)
            await policy_event(conn, ctx, EventType.ROLE_UPDATED, role_id=role_id, **values)
        return await _one_role(conn, role_id)


async def delete_role(ctx: RequestContext, role_id: uuid.UUID) -> None:
    async with ctx.session.transaction() as conn:
        policy = await admin_policy(conn, ctx)
        # The tenant's lock first, as set_user_roles takes it: the delete cascades to role
        # assignments, and taking the two in opposite orders could deadlock.
        await _lock_tenant(conn, ctx)
        role = await _one_role(conn, role_id)
        if role.builtin:
            raise Forbidden("built-in roles cannot be deleted", field="id", code="builtin_role")
        _refuse_lifting_own_deny(policy, ctx, role, role.rules, "id")
        await conn.execute(delete(_roles).where(_roles.c.id == role_id))
        await _bump(conn, ctx)
        await policy_event(conn, ctx, EventType.ROLE_DELETED, role_id=role_id, name=role.name)


# -- rules and scopes ------------------------------------------------------------------------
async def _insert_rule(
    conn: AsyncConnection,
    ctx: RequestContext,
    role_id: uuid.UUID,
    effect: str,
    obj: str,
    action: str,
) -> uuid.UUID:
    rule_id = uuid7()
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(_rules).values(
                    tenant_id=ctx.tenant_id,
                    id=rule_id,
                    role_id=role_id,
                    effect=effect,
                    object=obj,
                    action=action,
                )
            )
    except IntegrityError:
        raise Conflict("the role already has this rule", field="object", code="duplicate") from None
    return rule_id


def _protect(role: RoleView) -> None:
    if role.builtin and role.name == TENANT_ADMIN:
        raise Forbidden("the tenant_admin role cannot be narrowed", field="id", code="builtin_role")


async def grant(
    ctx: RequestContext, role_id: uuid.UUID, *, effect: str, obj: str, action: str
) -> RuleView:
    _check_rule(effect, obj, action)
    async with ctx.session.transaction() as conn:
        policy = await admin_policy(conn, ctx)
        _check_custom_object(policy, obj)
        role = await _one_role(conn, role_id)
        _protect(role)
        if effect == "allow":
            _require_held(policy, ctx, expand(obj, action, policy))
        rule_id = await _insert_rule(conn, ctx, role_id, effect, obj, action)
        await _bump(conn, ctx)
        await policy_event(
            conn,
            ctx,
            EventType.PERMISSION_GRANTED,
            role_id=role_id,
            role=role.name,
            effect=effect,
            object=obj,
            action=action,
        )
        return RuleView(rule_id, effect, obj, action)


async def revoke(ctx: RequestContext, role_id: uuid.UUID, rule_id: uuid.UUID) -> None:
    async with ctx.session.transaction() as conn:
        policy = await admin_policy(conn, ctx)
        role = await _one_role(conn, role_id)
        _protect(role)
        _refuse_lifting_own_deny(
            policy, ctx, role, [r for r in role.rules if r.id == rule_id], "rules"
        )
        removed = (
            await conn.execute(
                delete(_rules)
                .where(_rules.c.role_id == role_id, _rules.c.id == rule_id)
                .returning(_rules.c.effect, _rules.c.object, _rules.c.action)
            )
        ).first()
        if removed is None:
            raise NotFound("rule not found")
        await _bump(conn, ctx)
        await policy_event(
            conn,
            ctx,
            EventType.PERMISSION_REVOKED,
            role_id=role_id,
            role=role.name,
            effect=removed.effect,
            object=removed.object,
            action=removed.action,
        )


def _check_scope(entity: str, scope: str) -> None:
    if entity != "*" and entity not in ENTITIES:
        raise ValidationFailed.one("entity", "unknown_entity", f"no entity {entity!r}")
    if scope not in SCOPES:
        raise ValidationFailed.one("scope", "invalid_scope", "own, team or tenant")


async def _upsert_scope(
    conn: AsyncConnection, ctx: RequestContext, role_id: uuid.UUID, entity: str, scope: str
) -> None:
    await conn.execute(
        delete(_scopes).where(_scopes.c.role_id == role_id, _scopes.c.entity == entity)
    )
    await conn.execute(
        insert(_scopes).values(
            tenant_id=ctx.tenant_id, id=uuid7(), role_id=role_id, entity=entity, scope=scope
        )
    )


async def set_scope(
    ctx: RequestContext, role_id: uuid.UUID, *, entity: str, scope: str
) -> RoleView:
    _check_scope(entity, scope)
    async with ctx.session.transaction() as conn:
        policy = await admin_policy(conn, ctx)
        role = await _one_role(conn, role_id)
        _protect(role)
        if SCOPES.index(scope) > SCOPES.index(_caller_scope(policy, ctx, entity)):
            raise Forbidden(
                "you cannot grant a wider scope than you hold",
                field="scope",
                code="escalation_refused",
            )
        await _upsert_scope(conn, ctx, role_id, entity, scope)
        await _bump(conn, ctx)
        await policy_event(
            conn, ctx, EventType.ROLE_UPDATED, role_id=role_id, entity=entity, scope=scope
        )
        return await _one_role(conn, role_id)


def _caller_scope(policy: TenantPolicy, ctx: RequestContext, entity: str) -> str:
    held = [policy.scope_of(r, entity) for r in policy.roles_of(ctx.user_id)]
    return max(held, key=SCOPES.index) if held else "own"


# -- who holds which role ------------------------------------------------------------------
async def assign_roles(
    conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID, role_names: list[str]
) -> None:
    """Give a user roles by name, inside the caller's transaction (tenant and user creation,
    app service users). No admin check: callers are the trusted provisioning paths."""
    found = (
        await conn.execute(select(_roles.c.id, _roles.c.name).where(_roles.c.name.in_(role_names)))
    ).all()
    missing = set(role_names) - {r.name for r in found}
    if missing:
        raise ValidationFailed.one("roles", "unknown_role", f"no role {sorted(missing)[0]!r}")
    for role in found:
        await conn.execute(
            insert(_user_roles).values(
                tenant_id=tenant_id, id=uuid7(), user_id=user_id, role_id=role.id
            )
        )
    await conn.execute(
        update(_tenants)
        .where(_tenants.c.id == tenant_id)
        .values(policy_version=_tenants.c.policy_version + 1)
    )
    await note_policy_change(conn, tenant_id)


async def user_roles(ctx: RequestContext, user_id: uuid.UUID) -> list[RoleView]:
    async with ctx.session.transaction() as conn:
        if user_id != ctx.user_id:
            await admin_policy(conn, ctx)
        await require_user(conn, user_id)
        ids = (
            (
                await conn.execute(
                    select(_user_roles.c.role_id).where(_user_roles.c.user_id == user_id)
                )
            )
            .scalars()
            .all()
        )
        return [r for r in await _role_views(conn) if r.id in set(ids)]


async def require_user(conn: AsyncConnection, user_id: uuid.UUID) -> None:
    if (await conn.execute(select(_users.c.id).where(_users.c.id == user_id))).first() is None:
        raise NotFound("user not found")


async def set_user_roles(
    ctx: RequestContext, user_id: uuid.UUID, role_ids: list[uuid.UUID]
) -> list[RoleView]:
    async with ctx.session.transaction() as conn:
        policy = await admin_policy(conn, ctx)
        admins = await lock_admins(conn, ctx)
        await require_user(conn, user_id)
        roles = {r.id: r for r in await _role_views(conn)}
        unknown = [r for r in role_ids if r not in roles]
        if unknown:
            raise ValidationFailed.one("roles", "unknown_role", f"no role {unknown[0]}")
        # From the database, after the lock: the cached policy may predate a change that
        # committed while this one waited.
        current = frozenset(
            (
                await conn.execute(
                    select(_user_roles.c.role_id).where(_user_roles.c.user_id == user_id)
                )
            )
            .scalars()
            .all()
        )
        if user_id == ctx.user_id:
            for role in [roles[r] for r in current - set(role_ids) if r in roles]:
                _refuse_lifting_own_deny(policy, ctx, role, role.rules, "roles")
        for role_id in set(role_ids) - current:
            _require_held(
                policy,
                ctx,
                [
                    g
                    for rule in roles[role_id].rules
                    if rule.effect == "allow"
                    for g in expand(rule.object, rule.action)
                ],
            )
        if admins.role_id in current and admins.role_id not in role_ids:
            admins.refuse_losing(user_id, field="roles")
        await conn.execute(delete(_user_roles).where(_user_roles.c.user_id == user_id))
        for role_id in dict.fromkeys(role_ids):
            await conn.execute(
                insert(_user_roles).values(
                    tenant_id=ctx.tenant_id, id=uuid7(), user_id=user_id, role_id=role_id
                )
            )
        await _bump(conn, ctx)
        added, removed = set(role_ids) - current, current - set(role_ids)
        for role_id in added:
            await policy_event(
                conn, ctx, EventType.ROLE_ASSIGNED, user_id=user_id, role=roles[role_id].name
            )
        for role_id in removed:
            await policy_event(
                conn,
                ctx,
                EventType.ROLE_UNASSIGNED,
                user_id=user_id,
                role=roles[role_id].name if role_id in roles else str(role_id),
            )
        return [roles[r] for r in dict.fromkeys(role_ids)]
