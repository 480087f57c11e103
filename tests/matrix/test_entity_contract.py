"""One contract for every registered entity, through both skins, for every built-in role
(NetBox's generic API test matrix): anonymous, no permission, permitted, another tenant's
record, and field masks. A new entity is covered by registering it in backend/crm/registry.py;
a new role by its lines in policies/roles.toml.

Per cell (entity x skin x role) one record: create (or, for a role that may not, a refused create
that writes nothing and a record the admin gives them), get in both skins (the same id), list,
update with the current version and then a stale one, history, delete, get -> not found.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from backend.crm.registry import ENTITIES
from backend.records.spec import EntitySpec
from backend.runtime import Services
from tests.conftest import new_tenant
from tests.matrix.names import snake
from tests.matrix.oracle import BUILTIN, allows, field_allows, rules_of
from tests.matrix.skins import SKIN_NAMES, skins
from tests.matrix.values import sample, update_field
from tests.matrix.world import World, same
from tests.security.policy_helpers import user_with_roles

ROLES = tuple(BUILTIN)
OTHER_SKIN = {"rest": "graphql", "graphql": "rest"}

CELLS = [
    pytest.param(entity, skin, role, id=f"{entity}-{skin}-{role}")
    for entity in ENTITIES
    for skin in SKIN_NAMES
    for role in ROLES
]
ENTITY_SKINS = [
    pytest.param(entity, skin, id=f"{entity}-{skin}") for entity in ENTITIES for skin in SKIN_NAMES
]
ENTITY_ROLES = [
    pytest.param(entity, role, id=f"{entity}-{role}") for entity in ENTITIES for role in ROLES
]


@pytest.fixture(scope="module")
async def world(services: Services, client: httpx.AsyncClient) -> World:
    # Sign-ins hash passwords: run them together (the hashing leaves the event loop).
    admin, other = await asyncio.gather(
        new_tenant(services, client, "matrix"), new_tenant(services, client, "elsewhere")
    )
    made = await asyncio.gather(
        *(user_with_roles(services, client, admin, role, [role]) for role in ROLES)
    )
    return World(client, admin, other, dict(zip(ROLES, made, strict=True)), skins(client))


def _ids(outcome: Any) -> set[str]:
    return {r["id"] for r in outcome.items}


# -- anonymous: refused, nothing written -------------------------------------------------------
@pytest.mark.parametrize(("entity", "skin"), ENTITY_SKINS)
async def test_anonymous_is_refused(world: World, entity: str, skin: str) -> None:
    spec, s = ENTITIES[entity], world.skins[skin]
    record = await world.seed(spec)
    before = await world.admin_ids(spec)
    rid, version = record["id"], record["version"]
    changes = {"tags": ["anon"]} if "tags" in spec.fields else {}
    answers = {
        "create": await s.create(None, spec, await world.values(s, spec, None)),
        "get": await s.get(None, spec, rid),
        "list": await s.list_ids(None, spec),
        "update": await s.update(None, spec, rid, version, changes),
        "history": await s.history(None, spec, rid),
        "delete": await s.delete(None, spec, rid),
    }
    assert {op: a.kind for op, a in answers.items()} == dict.fromkeys(answers, "unauthenticated")
    assert await world.admin_ids(spec) == before
    assert await world.admin_get(spec, rid) == record


# -- another tenant's record: not found, never forbidden, never data ---------------------------
@pytest.mark.parametrize(("entity", "skin"), ENTITY_SKINS)
async def test_another_tenants_record_is_not_found(world: World, entity: str, skin: str) -> None:
    spec, s = ENTITIES[entity], world.skins[skin]
    theirs = await world.seed(spec, admin=world.other)
    rid, version = theirs["id"], theirs["version"]
    field = update_field(spec, lambda _: True)
    assert field is not None
    answers = {
        "get": await s.get(world.admin, spec, rid),
        "update": await s.update(world.admin, spec, rid, version, {field.name: sample(field)}),
        "history": await s.history(world.admin, spec, rid),
        "delete": await s.delete(world.admin, spec, rid),
    }
    assert {op: (a.kind, a.record) for op, a in answers.items()} == dict.fromkeys(
        answers, ("not_found", None)
    )
    # REST says `not_found`; GraphQL a null record, or NOT_FOUND where a payload is due.
    assert {a.code for a in answers.values()} <= {"not_found", "NOT_FOUND", None}
    assert rid not in _ids(await s.list_ids(world.admin, spec))
    assert await world.admin_get(spec, rid, admin=world.other) == theirs


# -- the lifecycle, per role -------------------------------------------------------------------
async def _created_or_refused(
    world: World, spec: EntitySpec, skin: str, role: str
) -> dict[str, Any]:
    """Create as `role`: made, or refused with nothing written (then the admin gives them one)."""
    s, user = world.skins[skin], world.users[role]
    body = await world.values(s, spec, role)
    before = await world.admin_ids(spec)
    made = await s.create(user, spec, body)
    if not allows(rules_of(role), spec.name, "create"):
        assert made.kind == "forbidden", made.raw
        assert await world.admin_ids(spec) == before
        return await world.seed(spec, owner=user)
    record = made.ok()
    assert record["owner_id"] == str(user.user_id)
    assert record["version"] == 1
    written = {f: record.get(f) for f in body}
    assert all(same(written[f], v) for f, v in body.items()), (written, body)
    return record


async def _read(
    world: World, spec: EntitySpec, skin: str, role: str, record: dict[str, Any]
) -> None:
    """Get in this skin and the other (the same id and version), and find it in the list."""
    user, rid = world.users[role], record["id"]
    got = [await world.skins[name].get(user, spec, rid) for name in (skin, OTHER_SKIN[skin])]
    listed = await world.skins[skin].list_ids(user, spec)
    if not allows(rules_of(role), spec.name, "read"):
        assert [g.kind for g in (*got, listed)] == ["forbidden"] * 3
        return
    assert [(g.ok()["id"], g.ok()["version"]) for g in got] == [(rid, record["version"])] * 2
    assert rid in _ids(listed)


async def _update(
    world: World, spec: EntitySpec, skin: str, role: str, record: dict[str, Any]
) -> tuple[str, Any] | None:
    """Update with the current version, then with the stale one; or refused. Returns the
    field changed and its new value, if any."""
    s, user, rules = world.skins[skin], world.users[role], rules_of(role)
    rid, version = record["id"], record["version"]
    permitted = update_field(spec, lambda f: field_allows(rules, spec.name, f, "update"))
    if not allows(rules, spec.name, "update") or permitted is None:
        anything = update_field(spec, lambda _: True)
        assert anything is not None
        # As REST shows it to the admin (the record may have been made through GraphQL, by a
        # role that may create but not update).
        before = await world.admin_get(spec, rid)
        refused = await s.update(
            user, spec, rid, version, {anything.name: sample(anything, second=True)}
        )
        assert refused.kind == "forbidden", refused.raw
        assert before is not None and before["version"] == version
        # Unchanged; compared field by field, since `before` may be in the other skin's
        # spelling (a GraphQL record: "+00:00" instants, no `custom`).
        after = await world.admin_get(spec, rid)
        assert after is not None
        assert all(same(after.get(k), v) for k, v in before.items() if k != "custom"), after
        return None
    value = sample(permitted, second=True)
    changed = (await s.update(user, spec, rid, version, {permitted.name: value})).ok()
    assert changed["version"] == version + 1
    assert same(changed[permitted.name], value), (changed, value)
    stale = await s.update(user, spec, rid, version, {permitted.name: sample(permitted)})
    assert (stale.kind, stale.code) == ("stale", "version_mismatch"), stale.raw
    after = await world.admin_get(spec, rid)
    assert after is not None
    assert after["version"] == version + 1
    assert same(after[permitted.name], value)
    return permitted.name, value


async def _history(
    world: World,
    spec: EntitySpec,
    skin: str,
    role: str,
    rid: str,
    changed: tuple[str, Any] | None,
) -> None:
    """The record's history as the role sees it: its creation, and the change just made (newest
    first) through this skin, with the new value unless the role may not read that field's
    history."""
    rules = rules_of(role)
    history = await world.skins[skin].history(world.users[role], spec, rid)
    if not allows(rules, spec.name, "read_history"):
        assert history.kind == "forbidden", history.raw
        return
    events = [(e["event"], e["field"] and snake(e["field"])) for e in history.items]
    assert ("create", None) in events, events
    if changed is None:
        return
    field, value = changed
    newest = history.items[0]
    assert events[0] == ("update", field), events
    assert newest["channel"] == skin, newest
    readable = field_allows(rules, spec.name, field, "read_history")
    assert newest["values_withheld"] is not readable, newest
    assert same(newest["new_value"], value if readable else None), newest


async def _delete(world: World, spec: EntitySpec, skin: str, role: str, rid: str) -> None:
    s, user = world.skins[skin], world.users[role]
    gone = await s.delete(user, spec, rid)
    if not allows(rules_of(role), spec.name, "delete"):
        assert gone.kind == "forbidden", gone.raw
        assert await world.admin_get(spec, rid) is not None
        return
    assert gone.kind == "ok", gone.raw
    assert (await s.get(user, spec, rid)).kind == "not_found"
    assert (await s.delete(user, spec, rid)).kind == "not_found"
    assert await world.admin_get(spec, rid) is None


@pytest.mark.parametrize(("entity", "skin", "role"), CELLS)
async def test_lifecycle(world: World, entity: str, skin: str, role: str) -> None:
    spec = ENTITIES[entity]
    record = await _created_or_refused(world, spec, skin, role)
    await _read(world, spec, skin, role, record)
    changed = await _update(world, spec, skin, role, record)
    await _history(world, spec, skin, role, record["id"], changed)
    await _delete(world, spec, skin, role, record["id"])


# -- field masks: the same fields withheld, the same values shown, in both skins ---------------
@pytest.mark.parametrize(("entity", "role"), ENTITY_ROLES)
async def test_field_masks_agree_across_skins(world: World, entity: str, role: str) -> None:
    spec, user, rules = ENTITIES[entity], world.users[role], rules_of(role)
    record = await world.seed(spec, owner=user)
    full = await world.admin_get(spec, record["id"])
    assert full is not None
    filled = {f for f in spec.fields if full.get(f) not in (None, [])}
    views = {name: await s.get(user, spec, record["id"]) for name, s in world.skins.items()}
    if not allows(rules, entity, "read"):
        assert {name: v.kind for name, v in views.items()} == dict.fromkeys(views, "forbidden")
        return
    rest, graphql = views["rest"].ok(), views["graphql"].ok()
    readable = {f for f in spec.fields if field_allows(rules, entity, f, "read")}
    assert {f for f in filled if f in rest} == filled & readable
    assert {f for f in filled if graphql.get(f) not in (None, [])} == filled & readable
    withheld = set(spec.fields) - readable
    assert set(rest["withheld_fields"]) & set(spec.fields) == withheld
    assert {snake(f) for f in graphql["withheld_fields"]} & set(spec.fields) == withheld
    assert all(same(rest[f], graphql[f]) for f in filled & readable), (rest, graphql)
