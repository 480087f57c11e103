"""The shared setting of the matrix: one tenant with a user per built-in role, another tenant to
be isolated from, and records made from the specs (parents first, through the same skin)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from backend.records.spec import EntitySpec
from tests.conftest import TenantUser
from tests.matrix.oracle import allows, field_allows, rules_of
from tests.matrix.skins import RestSkin, Skin
from tests.matrix.values import creatable, parent_refs, sample


@dataclass
class World:
    client: httpx.AsyncClient
    admin: TenantUser  # the tenant's first admin: seeds records over REST
    other: TenantUser  # the admin of another tenant
    users: dict[str, TenantUser]  # built-in role -> a user holding only that role
    skins: dict[str, Skin]
    # (skin, who, entity) -> a record to link to; who is a role or an admin's tenant slug
    parents: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    @property
    def rest(self) -> RestSkin:
        return RestSkin(self.client)

    async def values(
        self, skin: Skin, spec: EntitySpec, role: str | None, admin: TenantUser | None = None
    ) -> dict[str, Any]:
        """A valid create body: every field `role` may write (all, for an admin or a role that
        may not create at all), references to parent records made first by the same caller
        through the same skin."""
        rules = rules_of(role) if role is not None else None
        if rules is not None and not allows(rules, spec.name, "create"):
            rules = None
        refs = parent_refs(spec)
        body: dict[str, Any] = {}
        for fspec in creatable(spec):
            if rules is not None and not field_allows(rules, spec.name, fspec.name, "create"):
                continue
            ref = refs.get(fspec.name)
            if ref is None:
                body[fspec.name] = sample(fspec, unique=fspec.name in spec.unique_fields)
            else:
                body[fspec.name] = (await self.parent(skin, ref, role, admin))["id"]
        return body

    async def parent(
        self, skin: Skin, spec: EntitySpec, role: str | None, admin: TenantUser | None
    ) -> dict[str, Any]:
        who = role if role is not None else (admin or self.admin).slug
        key = (skin.name, who, spec.name)
        if key not in self.parents:
            if role is None:
                self.parents[key] = await self.seed(spec, admin=admin)
            else:
                self.parents[key] = await self.make(skin, spec, role)
        return self.parents[key]

    async def make(self, skin: Skin, spec: EntitySpec, role: str) -> dict[str, Any]:
        """A record `role`'s user can reach: made by them if they may create it, else seeded by
        the admin and given to them (so "own" scopes reach it too)."""
        user = self.users[role]
        if allows(rules_of(role), spec.name, "create"):
            return (await skin.create(user, spec, await self.values(skin, spec, role))).ok()
        return await self.seed(spec, owner=user)

    async def seed(
        self, spec: EntitySpec, admin: TenantUser | None = None, owner: TenantUser | None = None
    ) -> dict[str, Any]:
        """A record with every field filled, made by an admin over REST; given to `owner`."""
        admin = admin or self.admin
        record = (
            await self.rest.create(admin, spec, await self.values(self.rest, spec, None, admin))
        ).ok()
        if owner is not None:
            record = (
                await self.rest.update(
                    admin, spec, record["id"], record["version"], {"owner_id": str(owner.user_id)}
                )
            ).ok()
        return record

    async def admin_ids(self, spec: EntitySpec, admin: TenantUser | None = None) -> set[str]:
        listed = await self.rest.list_ids(admin or self.admin, spec)
        return {r["id"] for r in listed.items}

    async def admin_get(
        self, spec: EntitySpec, record_id: str, admin: TenantUser | None = None
    ) -> dict[str, Any] | None:
        got = await self.rest.get(admin or self.admin, spec, record_id)
        if got.kind == "not_found":
            return None
        return got.ok()


def same(a: Any, b: Any) -> bool:
    """Equal as values, whatever either skin's spelling of an instant ("Z" or "+00:00")."""
    if isinstance(a, str) and isinstance(b, str) and "T" in a and "T" in b:
        try:
            return datetime.fromisoformat(a) == datetime.fromisoformat(b)
        except ValueError:
            pass
    return bool(a == b)
