"""REST admin API for access policy: roles, rules, scopes, role assignments, teams, and the
effective-permissions view. Parse -> call backend/policy -> shape."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from backend.context import RequestContext
from backend.errors import ValidationFailed
from backend.policy import assignments, explain, role_views, roles, rules, teams

Ctx = NamedDependency[RequestContext]
RoleId = FromPath[uuid.UUID]


class RuleBody(msgspec.Struct, forbid_unknown_fields=True):
    effect: str
    object: str
    action: str


class RoleCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    description: str | None = None
    rules: list[RuleBody] = []
    scopes: dict[str, str] = {}


class RoleUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str | None = None
    description: str | None = None


class ScopeBody(msgspec.Struct, forbid_unknown_fields=True):
    scope: str


class UserRolesBody(msgspec.Struct, forbid_unknown_fields=True):
    role_ids: list[uuid.UUID]


class TeamCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    parent_team_id: uuid.UUID | None = None


class TeamParentBody(msgspec.Struct, forbid_unknown_fields=True):
    parent_team_id: uuid.UUID | None


class TeamMembersBody(msgspec.Struct, forbid_unknown_fields=True):
    user_ids: list[uuid.UUID]


def _role(view: role_views.RoleView) -> dict[str, Any]:
    return asdict(view)


class RolesController(Controller):
    path = "/api/v1/roles"
    tags = ["access policy"]

    @get("/", summary="List the tenant's roles with their rules and scopes (admins)")
    async def list_roles(self, ctx: Ctx) -> dict[str, Any]:
        return {"items": [_role(r) for r in await role_views.list_roles(ctx)], "next": None}

    @post("/", summary="Create a custom role")
    async def create_role(self, ctx: Ctx, data: JSONBody[RoleCreate]) -> dict[str, Any]:
        view = await roles.create_role(
            ctx,
            name=data.name,
            description=data.description,
            rules=[(r.effect, r.object, r.action) for r in data.rules],
            scopes=data.scopes,
        )
        return _role(view)

    @get("/{role_id:uuid}", summary="One role")
    async def get_role(self, ctx: Ctx, role_id: RoleId) -> dict[str, Any]:
        return _role(await role_views.get_role(ctx, role_id))

    @patch("/{role_id:uuid}", summary="Rename a custom role or change its description")
    async def update_role(
        self, ctx: Ctx, role_id: RoleId, data: JSONBody[RoleUpdate]
    ) -> dict[str, Any]:
        return _role(
            await roles.update_role(ctx, role_id, name=data.name, description=data.description)
        )

    @delete("/{role_id:uuid}", summary="Delete a custom role", status_code=204)
    async def delete_role(self, ctx: Ctx, role_id: RoleId) -> None:
        await roles.delete_role(ctx, role_id)

    @post("/{role_id:uuid}/rules", summary="Grant (allow) or deny an action on an object")
    async def grant(self, ctx: Ctx, role_id: RoleId, data: JSONBody[RuleBody]) -> dict[str, Any]:
        rule = await rules.grant(
            ctx, role_id, effect=data.effect, obj=data.object, action=data.action
        )
        return asdict(rule)

    @delete("/{role_id:uuid}/rules/{rule_id:uuid}", summary="Remove a rule", status_code=204)
    async def revoke(self, ctx: Ctx, role_id: RoleId, rule_id: FromPath[uuid.UUID]) -> None:
        await rules.revoke(ctx, role_id, rule_id)

    @put("/{role_id:uuid}/scopes/{entity:str}", summary="Set the role's record scope on an entity")
    async def set_scope(
        self, ctx: Ctx, role_id: RoleId, entity: FromPath[str], data: JSONBody[ScopeBody]
    ) -> dict[str, Any]:
        return _role(await rules.set_scope(ctx, role_id, entity=entity, scope=data.scope))


class UserAccessController(Controller):
    path = "/api/v1/users"
    tags = ["access policy"]

    @get("/{user_id:uuid}/roles", summary="A user's roles (yours, or anyone's for admins)")
    async def get_roles(self, ctx: Ctx, user_id: FromPath[uuid.UUID]) -> dict[str, Any]:
        return {"items": [_role(r) for r in await assignments.user_roles(ctx, user_id)]}

    @put("/{user_id:uuid}/roles", summary="Replace a user's roles (admins)")
    async def set_roles(
        self, ctx: Ctx, user_id: FromPath[uuid.UUID], data: JSONBody[UserRolesBody]
    ) -> dict[str, Any]:
        held = await assignments.set_user_roles(ctx, user_id, data.role_ids)
        return {"items": [_role(r) for r in held]}

    @get(
        "/{user_id:uuid}/effective-permissions",
        summary="What the user may do on an entity, per action and field, and why",
    )
    async def effective(
        self,
        ctx: Ctx,
        user_id: FromPath[uuid.UUID],
        entity: Annotated[str | None, QueryParameter(description="e.g. contact")] = None,
    ) -> dict[str, Any]:
        if not entity:
            raise ValidationFailed.one("entity", "required", "name an entity, e.g. contact")
        return asdict(await explain.effective_permissions(ctx, user_id, entity))


class TeamsController(Controller):
    path = "/api/v1/teams"
    tags = ["access policy"]

    @get("/", summary="List teams and their members (admins)")
    async def list_teams(self, ctx: Ctx) -> dict[str, Any]:
        return {"items": [asdict(t) for t in await teams.list_teams(ctx)], "next": None}

    @post("/", summary="Create a team")
    async def create_team(self, ctx: Ctx, data: JSONBody[TeamCreate]) -> dict[str, Any]:
        return asdict(await teams.create_team(ctx, data.name, data.parent_team_id))

    @get("/{team_id:uuid}", summary="One team")
    async def get_team(self, ctx: Ctx, team_id: FromPath[uuid.UUID]) -> dict[str, Any]:
        return asdict(await teams.get_team(ctx, team_id))

    @delete("/{team_id:uuid}", summary="Delete a team", status_code=204)
    async def delete_team(self, ctx: Ctx, team_id: FromPath[uuid.UUID]) -> None:
        await teams.delete_team(ctx, team_id)

    @put("/{team_id:uuid}/members", summary="Replace a team's members")
    async def set_members(
        self, ctx: Ctx, team_id: FromPath[uuid.UUID], data: JSONBody[TeamMembersBody]
    ) -> dict[str, Any]:
        return asdict(await teams.set_members(ctx, team_id, data.user_ids))

    @put(
        "/{team_id:uuid}/parent",
        summary="Place a team beneath another (business units); null: at the top",
    )
    async def set_parent(
        self, ctx: Ctx, team_id: FromPath[uuid.UUID], data: JSONBody[TeamParentBody]
    ) -> dict[str, Any]:
        return asdict(await teams.set_parent(ctx, team_id, data.parent_team_id))
