"""The access matrix, field by field: every role (built-in and custom) x entity x field x
action, through both skins (tests/matrix/skins.py), against an oracle that reads
policies/roles.toml itself (tests/matrix/oracle.py: glob objects, deny beats allow).

The whole-record contract of the built-in roles (refused or permitted create, read in both
skins, list, update, stale versions, history, delete, field masks) is the entity matrix in
tests/matrix/test_entity_contract.py. Here: each field alone on create and update for every
role, reads and deletes of the custom roles, and the engine's export and read_history
decisions (through the effective-permissions view).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from backend.crm.registry import ENTITIES
from backend.records.spec import EntitySpec
from backend.runtime import Services
from tests.conftest import TenantUser, new_tenant
from tests.matrix import oracle as policy
from tests.matrix.names import snake
from tests.matrix.skins import SKIN_NAMES, RestSkin, Skin, skins
from tests.matrix.values import parent_refs, sample
from tests.matrix.world import same
from tests.security.policy_helpers import user_with_roles

BUILTIN = policy.BUILTIN
# Custom roles a tenant admin creates through the API, checked the same way.
CUSTOM: dict[str, dict[str, Any]] = {
    "travelling_rep": {
        "scope": {"contact": "own"},
        "rules": [
            ["allow", "contact", "*"],
            ["allow", "contact.*", "*"],
            ["deny", "contact.email", "*"],
            ["deny", "*", "export"],
            ["allow", "account", "read"],
            ["allow", "account.name", "read"],
            ["allow", "account.city", "read"],
        ],
    },
    "phone_only": {
        "scope": {"*": "tenant"},
        "rules": [
            ["allow", "*", "read"],
            ["deny", "*.*", "read"],
            ["allow", "contact.*_name", "read"],
            ["allow", "*.*phone", "read"],
            ["allow", "contact", "update"],
            ["allow", "contact.mobile_phone", "update"],
        ],
    },
}
ROLES = {**BUILTIN, **CUSTOM}
UNLINKED = uuid.UUID("00000000-0000-4000-8000-000000000001")


def oracle(role: str, obj: str, action: str) -> bool:
    return policy.allows(ROLES[role]["rules"], obj, action)


def field_allowed(role: str, entity: str, field: str, action: str) -> bool:
    return policy.field_allows(ROLES[role]["rules"], entity, field, action)


@dataclass
class World:
    admin: TenantUser
    users: dict[str, TenantUser]  # role -> a user holding only that role
    skins: dict[str, Skin]
    links: dict[str, str]  # entity -> a record of it to link to (the admin's)
    owned: dict[tuple[str, str], dict[str, Any]]  # (role, entity) -> a record the user owns
    # Fields naming a row of a plain tenant table (not an entity) -> a row every role may name.
    table_refs: dict[str, str] = dataclasses.field(default_factory=dict)
    # (role, entity) -> another record the user owns, for links within an entity (a tree): a
    # record linked to itself would be a loop.
    siblings: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)

    def value(self, spec: EntitySpec, field: str, role: str) -> Any:
        ref = spec.references.get(field)
        if isinstance(ref, EntitySpec):
            # A link must name a record the user may read: the one the user owns. A link
            # within the entity (a tree) is empty in the very first record made.
            if ref.name == spec.name and (role, ref.name) in self.siblings:
                return self.siblings[(role, ref.name)]
            owned = self.owned.get((role, ref.name))
            return owned["id"] if owned else self.links.get(ref.name)
        if field == "owner_id":
            return str(self.users[role].user_id)
        if field in self.table_refs:
            return self.table_refs[field]
        if spec.fields[field].kind == "uuid":
            return str(UNLINKED)  # a link to what has no entity yet (a lead's campaign)
        return sample(spec.fields[field], unique=field in spec.unique_fields)

    def full_body(self, spec: EntitySpec) -> dict[str, Any]:
        return {
            f: self.value(spec, f, "tenant_admin") for f, s in spec.fields.items() if s.on_create
        }


async def _create(
    rest: RestSkin, admin: TenantUser, spec: EntitySpec, body: dict[str, Any]
) -> dict[str, Any]:
    return (await rest.create(admin, spec, body)).ok()


async def _give(
    rest: RestSkin, admin: TenantUser, spec: EntitySpec, record: dict[str, Any], owner: uuid.UUID
) -> dict[str, Any]:
    changes = {"owner_id": str(owner)}
    return (await rest.update(admin, spec, record["id"], record["version"], changes)).ok()


def _by_dependency() -> list[EntitySpec]:
    """Entities with the ones they link to first."""
    done: list[EntitySpec] = []
    while len(done) < len(ENTITIES):
        for spec in ENTITIES.values():
            if spec not in done and all(r in done for r in parent_refs(spec).values()):
                done.append(spec)
    return done


@pytest.fixture(scope="module")
async def world(services: Services, client: httpx.AsyncClient) -> World:
    admin = await new_tenant(services, client, "matrix")
    rest = RestSkin(client)
    for name, custom in CUSTOM.items():
        made = await client.post(
            "/api/v1/roles",
            headers=admin.headers,
            json={
                "name": name,
                "rules": [{"effect": e, "object": o, "action": a} for e, o, a in custom["rules"]],
                "scopes": custom["scope"],
            },
        )
        assert made.status_code == 201, made.text
    # Sign-ins hash passwords: run them together (the hashing leaves the event loop).
    signed_in = await asyncio.gather(
        *(user_with_roles(services, client, admin, role, [role]) for role in ROLES)
    )
    users = dict(zip(ROLES, signed_in, strict=True))
    world = World(admin=admin, users=users, skins=skins(client), links={}, owned={})
    # The default pipeline and its first stage (the stage the `stage` sample names).
    [pipeline] = (await client.get("/api/v1/pipelines", headers=admin.headers)).json()["items"]
    world.table_refs.update(pipeline_id=pipeline["id"], stage_id=pipeline["stages"][0]["id"])
    # A case queue with the admin in it: a case may be put in it and assigned to the admin.
    queue = await client.post(
        "/api/v1/queues",
        json={"name": "Matrix", "member_ids": [str(admin.user_id)]},
        headers=admin.headers,
    )
    assert queue.status_code == 201, queue.text
    world.table_refs.update(queue_id=queue.json()["id"], assignee_id=str(admin.user_id))
    for spec in _by_dependency():
        world.links[spec.name] = (await _create(rest, admin, spec, world.full_body(spec)))["id"]
    for role, user in users.items():
        for spec in _by_dependency():
            if spec.name in (r.name for r in spec.references.values() if isinstance(r, EntitySpec)):
                sibling = await _create(rest, admin, spec, world.full_body(spec))
                sibling = await _give(rest, admin, spec, sibling, user.user_id)
                world.siblings[(role, spec.name)] = sibling["id"]
            record = await _create(rest, admin, spec, world.full_body(spec))
            world.owned[(role, spec.name)] = await _give(rest, admin, spec, record, user.user_id)
    return world


def _cases(roles: Any) -> list[Any]:
    return [
        pytest.param(role, entity, skin, id=f"{role}-{entity}-{skin}")
        for role in roles
        for entity in ENTITIES
        for skin in SKIN_NAMES
    ]


CASES = _cases(ROLES)
# The built-in roles' reads and deletes are cells of the entity matrix.
CUSTOM_CASES = _cases(CUSTOM)


# -- read (custom roles) -----------------------------------------------------------------------
@pytest.mark.parametrize(("role", "entity", "skin"), CUSTOM_CASES)
async def test_read(world: World, role: str, entity: str, skin: str) -> None:
    spec, user = ENTITIES[entity], world.users[role]
    got = await world.skins[skin].get(user, spec, world.owned[(role, entity)]["id"])
    if not oracle(role, entity, "read"):
        assert got.kind == "forbidden", got.raw
        return
    body = got.ok()
    fields = list(spec.fields)
    shown = {f for f in fields if body.get(f) is not None}
    withheld = {snake(f) for f in body["withheld_fields"]} & set(fields)
    expected = {f for f in fields if field_allowed(role, entity, f, "read")}
    assert shown == expected
    assert withheld == set(fields) - expected


# -- create, one field at a time ------------------------------------------------------------
@pytest.mark.parametrize(("role", "entity", "skin"), CASES)
async def test_create(world: World, role: str, entity: str, skin: str) -> None:
    spec, user, s = ENTITIES[entity], world.users[role], world.skins[skin]
    for field, fspec in spec.fields.items():
        if not fspec.on_create:
            continue
        # Made anew for each record: a field unique per tenant (sku) gets a new value.
        required = {f: world.value(spec, f, role) for f, fs in spec.fields.items() if fs.required}
        body = {**required, field: world.value(spec, field, role)}
        allowed = oracle(role, entity, "create") and all(
            field_allowed(role, entity, f, "create") for f in body
        )
        made = await s.create(user, spec, body)
        assert made.kind == ("ok" if allowed else "forbidden"), (field, made.raw)


# -- update, one field at a time -------------------------------------------------------------
@pytest.mark.parametrize(("role", "entity", "skin"), CASES)
async def test_update(world: World, role: str, entity: str, skin: str) -> None:
    spec, user, s = ENTITIES[entity], world.users[role], world.skins[skin]
    rest = world.skins["rest"]
    record_id = world.owned[(role, entity)]["id"]
    for field, fspec in spec.fields.items():
        if not fspec.on_update:
            continue
        allowed = field_allowed(role, entity, field, "update")
        before = (await rest.get(world.admin, spec, record_id)).ok()
        version = before["version"]
        value = world.value(spec, field, role)
        if fspec.kind != "uuid" and same(before.get(field), value):
            value = sample(fspec, second=True)  # a real change where the kind has a second
        changed = await s.update(user, spec, record_id, version, {field: value})
        assert changed.kind == ("ok" if allowed else "forbidden"), (field, changed.raw)
        after = (await rest.get(world.admin, spec, record_id)).ok()
        # The sample value may be the one the record holds already: an update that changes
        # nothing makes no new version. A refused one never changes anything.
        moved = after[field] != before[field]
        assert after["version"] == version + (1 if moved else 0), field
        assert allowed or not moved, field
        if not same(before.get(field), value):  # a real change: it moves exactly when allowed
            assert moved is allowed, field
        if moved and field in spec.unique_fields:  # one record of the tenant may hold the value
            back = {field: before[field]}
            (await rest.update(world.admin, spec, record_id, after["version"], back)).ok()


# -- delete (custom roles) ---------------------------------------------------------------------
@pytest.mark.parametrize(("role", "entity", "skin"), CUSTOM_CASES)
async def test_delete(world: World, role: str, entity: str, skin: str) -> None:
    spec, user = ENTITIES[entity], world.users[role]
    rest = world.skins["rest"]
    made = await rest.create(world.admin, spec, world.full_body(spec))
    target = (
        await rest.update(world.admin, spec, made.ok()["id"], 1, {"owner_id": str(user.user_id)})
    ).ok()
    allowed = oracle(role, entity, "delete")
    gone = await world.skins[skin].delete(user, spec, target["id"])
    assert gone.kind == ("ok" if allowed else "forbidden"), gone.raw
    still = await rest.get(world.admin, spec, target["id"])
    assert still.kind == ("not_found" if allowed else "ok")


# -- export and read_history: the engine's decisions, per field -------------------------------
@pytest.mark.parametrize(
    ("role", "entity"), [pytest.param(r, e, id=f"{r}-{e}") for r in ROLES for e in ENTITIES]
)
async def test_export_and_history_decisions(
    client: httpx.AsyncClient, world: World, role: str, entity: str
) -> None:
    user = world.users[role]
    view = await client.get(
        f"/api/v1/users/{user.user_id}/effective-permissions",
        params={"entity": entity},
        headers=world.admin.headers,
    )
    assert view.status_code == 200, view.text
    actions = {a["action"]: a for a in view.json()["actions"]}
    for action in ("export", "read_history", "read", "create", "update", "delete"):
        assert actions[action]["allowed"] == oracle(role, entity, action), action
        for field, decision in actions[action]["fields"].items():
            assert decision["allowed"] == field_allowed(role, entity, field, action), (
                action,
                field,
            )
