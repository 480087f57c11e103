"""GraphQL admin API for access policy: the same services as REST (backend/policy)."""

from __future__ import annotations

import uuid

import strawberry
from strawberry.types import Info

from backend.api.gql.context import GraphQLContext
from backend.api.gql.payloads import FieldError, payload_call
from backend.errors import ValidationFailed
from backend.policy import assignments, explain, role_views, roles, rules, teams

GqlInfo = Info[GraphQLContext, None]


@strawberry.type
class PolicyRule:
    id: strawberry.ID
    effect: str
    object: str
    action: str

    @classmethod
    def of(cls, rule: role_views.RuleView) -> PolicyRule:
        return cls(
            id=strawberry.ID(str(rule.id)),
            effect=rule.effect,
            object=rule.object,
            action=rule.action,
        )


@strawberry.type
class RoleScope:
    entity: str
    scope: str


@strawberry.type
class Role:
    id: strawberry.ID
    name: str
    description: str | None
    builtin: bool
    rules: list[PolicyRule]
    scopes: list[RoleScope] = strawberry.field(
        description="Record scope per entity (own, team or tenant); entity * is the default"
    )

    @classmethod
    def of(cls, view: role_views.RoleView) -> Role:
        return cls(
            id=strawberry.ID(str(view.id)),
            name=view.name,
            description=view.description,
            builtin=view.builtin,
            rules=[PolicyRule.of(r) for r in view.rules],
            scopes=[RoleScope(entity=e, scope=s) for e, s in sorted(view.scopes.items())],
        )


@strawberry.type
class Team:
    id: strawberry.ID
    name: str
    member_ids: list[strawberry.ID]
    parent_team_id: strawberry.ID | None = strawberry.field(
        description="The team this one sits beneath (business units); its members' team "
        "scope covers this team's records"
    )

    @classmethod
    def of(cls, view: teams.TeamView) -> Team:
        return cls(
            id=strawberry.ID(str(view.id)),
            name=view.name,
            member_ids=[strawberry.ID(str(m)) for m in view.member_ids],
            parent_team_id=strawberry.ID(str(view.parent_team_id)) if view.parent_team_id else None,
        )


@strawberry.type
class FieldDecision:
    field: str
    allowed: bool
    because: str


@strawberry.type
class ActionPermissions:
    action: str
    allowed: bool
    because: str
    scope: str | None
    fields: list[FieldDecision]


@strawberry.type
class EffectivePermissions:
    user_id: strawberry.ID
    entity: str
    roles: list[str]
    actions: list[ActionPermissions]

    @classmethod
    def of(cls, view: explain.EffectivePermissions) -> EffectivePermissions:
        return cls(
            user_id=strawberry.ID(str(view.user_id)),
            entity=view.entity,
            roles=view.roles,
            actions=[
                ActionPermissions(
                    action=a.action,
                    allowed=a.allowed,
                    because=a.because,
                    scope=a.scope,
                    fields=[
                        FieldDecision(field=name, allowed=d.allowed, because=d.because)
                        for name, d in a.fields.items()
                    ],
                )
                for a in view.actions
            ],
        )


@strawberry.input
class RuleInput:
    effect: str
    object: str
    action: str


@strawberry.input
class ScopeInput:
    entity: str
    scope: str


@strawberry.input
class CreateRoleInput:
    name: str
    description: str | None = None
    rules: list[RuleInput] = strawberry.field(default_factory=list)
    scopes: list[ScopeInput] = strawberry.field(default_factory=list)


@strawberry.input
class UpdateRoleInput:
    id: strawberry.ID
    name: str | None = None
    description: str | None = None


@strawberry.input
class GrantPermissionInput:
    role_id: strawberry.ID
    effect: str
    object: str
    action: str


@strawberry.input
class RevokePermissionInput:
    role_id: strawberry.ID
    rule_id: strawberry.ID


@strawberry.input
class SetRoleScopeInput:
    role_id: strawberry.ID
    entity: str
    scope: str


@strawberry.input
class SetUserRolesInput:
    user_id: strawberry.ID
    role_ids: list[strawberry.ID]


@strawberry.input
class SetTeamParentInput:
    team_id: strawberry.ID
    parent_team_id: strawberry.ID | None = None


@strawberry.input
class SetTeamMembersInput:
    team_id: strawberry.ID
    user_ids: list[strawberry.ID]


@strawberry.type
class RolePayload:
    role: Role | None
    errors: list[FieldError]


@strawberry.type
class RulePayload:
    rule: PolicyRule | None
    errors: list[FieldError]


@strawberry.type
class RolesPayload:
    roles: list[Role] | None
    errors: list[FieldError]


@strawberry.type
class TeamPayload:
    team: Team | None
    errors: list[FieldError]


@strawberry.type
class DeletedPayload:
    deleted_id: strawberry.ID | None
    errors: list[FieldError]


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationFailed.one(field, "invalid_uuid", "must be a UUID") from None


def _optional_uuid(value: strawberry.ID | None) -> uuid.UUID | None:
    return _uuid(value, "parentTeamId") if value else None


@strawberry.type
class PolicyQuery:
    @strawberry.field(description="The tenant's roles (tenant admins)")  # type: ignore[untyped-decorator]
    async def roles(self, info: GqlInfo) -> list[Role]:
        return [Role.of(r) for r in await role_views.list_roles(info.context.require())]

    @strawberry.field(description="The tenant's teams (tenant admins)")  # type: ignore[untyped-decorator]
    async def teams(self, info: GqlInfo) -> list[Team]:
        return [Team.of(t) for t in await teams.list_teams(info.context.require())]

    @strawberry.field(description="What a user may do on an entity, per action and field, and why")  # type: ignore[untyped-decorator]
    async def effective_permissions(
        self, info: GqlInfo, user_id: strawberry.ID, entity: str
    ) -> EffectivePermissions:
        ctx = info.context.require()
        view = await explain.effective_permissions(ctx, _uuid(user_id, "userId"), entity)
        return EffectivePermissions.of(view)


@strawberry.type
class PolicyMutation:
    @strawberry.mutation
    async def create_role(self, info: GqlInfo, input: CreateRoleInput) -> RolePayload:
        ctx = info.context.require()
        view, errors = await payload_call(
            info,
            lambda: roles.create_role(
                ctx,
                name=input.name,
                description=input.description,
                rules=[(r.effect, r.object, r.action) for r in input.rules],
                scopes={s.entity: s.scope for s in input.scopes},
            ),
        )
        return RolePayload(role=Role.of(view) if view else None, errors=errors)

    @strawberry.mutation
    async def update_role(self, info: GqlInfo, input: UpdateRoleInput) -> RolePayload:
        ctx = info.context.require()
        view, errors = await payload_call(
            info,
            lambda: roles.update_role(
                ctx, _uuid(input.id, "id"), name=input.name, description=input.description
            ),
        )
        return RolePayload(role=Role.of(view) if view else None, errors=errors)

    @strawberry.mutation
    async def delete_role(self, info: GqlInfo, id: strawberry.ID) -> DeletedPayload:
        ctx = info.context.require()
        _, errors = await payload_call(info, lambda: roles.delete_role(ctx, _uuid(id, "id")))
        return DeletedPayload(deleted_id=None if errors else id, errors=errors)

    @strawberry.mutation
    async def grant_permission(self, info: GqlInfo, input: GrantPermissionInput) -> RulePayload:
        ctx = info.context.require()
        rule, errors = await payload_call(
            info,
            lambda: rules.grant(
                ctx,
                _uuid(input.role_id, "roleId"),
                effect=input.effect,
                obj=input.object,
                action=input.action,
            ),
        )
        return RulePayload(rule=PolicyRule.of(rule) if rule else None, errors=errors)

    @strawberry.mutation
    async def revoke_permission(
        self, info: GqlInfo, input: RevokePermissionInput
    ) -> DeletedPayload:
        ctx = info.context.require()
        _, errors = await payload_call(
            info,
            lambda: rules.revoke(
                ctx, _uuid(input.role_id, "roleId"), _uuid(input.rule_id, "ruleId")
            ),
        )
        return DeletedPayload(deleted_id=None if errors else input.rule_id, errors=errors)

    @strawberry.mutation
    async def set_role_scope(self, info: GqlInfo, input: SetRoleScopeInput) -> RolePayload:
        ctx = info.context.require()
        view, errors = await payload_call(
            info,
            lambda: rules.set_scope(
                ctx, _uuid(input.role_id, "roleId"), entity=input.entity, scope=input.scope
            ),
        )
        return RolePayload(role=Role.of(view) if view else None, errors=errors)

    @strawberry.mutation
    async def set_user_roles(self, info: GqlInfo, input: SetUserRolesInput) -> RolesPayload:
        ctx = info.context.require()
        views, errors = await payload_call(
            info,
            lambda: assignments.set_user_roles(
                ctx,
                _uuid(input.user_id, "userId"),
                [_uuid(r, "roleIds") for r in input.role_ids],
            ),
        )
        return RolesPayload(roles=[Role.of(v) for v in views] if views else None, errors=errors)

    @strawberry.mutation
    async def create_team(
        self, info: GqlInfo, name: str, parent_team_id: strawberry.ID | None = None
    ) -> TeamPayload:
        ctx = info.context.require()
        view, errors = await payload_call(
            info, lambda: teams.create_team(ctx, name, _optional_uuid(parent_team_id))
        )
        return TeamPayload(team=Team.of(view) if view else None, errors=errors)

    @strawberry.mutation
    async def delete_team(self, info: GqlInfo, id: strawberry.ID) -> DeletedPayload:
        ctx = info.context.require()
        _, errors = await payload_call(info, lambda: teams.delete_team(ctx, _uuid(id, "id")))
        return DeletedPayload(deleted_id=None if errors else id, errors=errors)

    @strawberry.mutation
    async def set_team_parent(self, info: GqlInfo, input: SetTeamParentInput) -> TeamPayload:
        ctx = info.context.require()
        view, errors = await payload_call(
            info,
            lambda: teams.set_parent(
                ctx, _uuid(input.team_id, "teamId"), _optional_uuid(input.parent_team_id)
            ),
        )
        return TeamPayload(team=Team.of(view) if view else None, errors=errors)

    @strawberry.mutation
    async def set_team_members(self, info: GqlInfo, input: SetTeamMembersInput) -> TeamPayload:
        ctx = info.context.require()
        view, errors = await payload_call(
            info,
            lambda: teams.set_members(
                ctx, _uuid(input.team_id, "teamId"), [_uuid(u, "userIds") for u in input.user_ids]
            ),
        )
        return TeamPayload(team=Team.of(view) if view else None, errors=errors)
