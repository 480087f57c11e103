"""The access matrix: every built-in role x entity x field x action, through REST and GraphQL,
against an oracle that reads policies/roles.toml itself (glob objects, deny beats allow).

The oracle is written here, independently of backend/policy, so a bug in the engine cannot
hide behind the same bug in the expectation. `export` and `read_history` have no endpoint yet
(their issues build them); the engine's answers for them are checked through the
effective-permissions view instead.
"""

from __future__ import annotations

import tomllib
import uuid
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.api.gql.errors import camel
from backend.crm.accounts.service import ACCOUNT
from backend.crm.activities.service import ACTIVITY
from backend.crm.contacts.service import CONTACT
from backend.crm.opportunities.service import OPPORTUNITY
from backend.records.spec import EntitySpec
from backend.runtime import Services
from backend.tenants.service import create_user
from tests.conftest import PASSWORD, TenantUser, gql, new_tenant, sign_in

BUILTIN = tomllib.loads((Path(__file__).parents[2] / "policies" / "roles.toml").read_text())
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
ENTITIES = {
    "account": ACCOUNT,
    "contact": CONTACT,
    "opportunity": OPPORTUNITY,
    "activity": ACTIVITY,
}
GQL_TYPE = {
    "account": "Account",
    "contact": "Contact",
    "opportunity": "Opportunity",
    "activity": "Activity",
}
SKINS = ("rest", "graphql")
SYSTEM = {"id", "version", "created_at", "updated_at"}


def oracle(role: str, obj: str, action: str) -> bool:
    rules = ROLES[role]["rules"]

    def matches(effect: str) -> bool:
        return any(e == effect and fnmatchcase(obj, o) and a in ("*", action) for e, o, a in rules)

    return matches("allow") and not matches("deny")


def field_allowed(role: str, entity: str, field: str, action: str) -> bool:
    return oracle(role, entity, action) and oracle(role, f"{entity}.{field}", action)


def maskable(spec: EntitySpec) -> list[str]:
    # `custom` holds the tenant's custom fields, policed one by one (test_custom_field_policy).
    return [
        c.name
        for c in spec.table.c
        if c.name not in SYSTEM and c.name not in ("tenant_id", "custom")
    ]


SAMPLE: dict[str, Any] = {
    "name": "Matrix Ltd",
    "industry": "Testing",
    "website": "https://matrix.example",
    "phone": "+49 30 123456",
    "mobile_phone": "+49 170 1234567",
    "address_line1": "Main St 1",
    "address_line2": "Floor 2",
    "city": "Berlin",
    "region": "BE",
    "postal_code": "10115",
    "country": "DE",
    "tags": ["matrix"],
    "first_name": "Mia",
    "last_name": "Matrix",
    "email": "mia@matrix.example",
    "title": "Buyer",
    "notes": "met at a fair",
    "stage": "proposal",
    "amount": "12500.00",
    "currency": "EUR",
    "probability": 60,
    "close_date": "2026-12-31",
    "competitor": "Rival GmbH",
    "budget": "20000.00",
    "cost": "750.00",
    "next_step": "Send the offer",
    "description": "Fleet renewal",
    "kind": "meeting",
    "subject": "Quarterly review",
    "starts_at": "2027-01-15T09:30:00+01:00",
    "ends_at": "2027-01-15T10:30:00+01:00",
    "due_at": "2027-01-14T17:00:00Z",
    "remind_minutes_before": 30,
    "completed_at": "2027-01-15T10:35:00Z",
}


@dataclass
class World:
    admin: TenantUser
    users: dict[str, TenantUser]  # role -> a user holding only that role
    account_id: str  # an account to link contacts and opportunities to
    contact_id: str  # a contact to link opportunities to
    opportunity_id: str  # an opportunity to link activities to
    owned: dict[tuple[str, str], dict[str, Any]]  # (role, entity) -> a record the user owns

    def value(self, field: str, role: str) -> Any:
        if field == "account_id":
            # A link must name an account the user may read: the one the user owns.
            owned = self.owned.get((role, "account"))
            return owned["id"] if owned else self.account_id
        if field == "contact_id":
            owned = self.owned.get((role, "contact"))
            return owned["id"] if owned else self.contact_id
        if field == "opportunity_id":
            owned = self.owned.get((role, "opportunity"))
            return owned["id"] if owned else self.opportunity_id
        if field == "owner_id":
            return str(self.users[role].user_id)
        return SAMPLE[field]


async def _create(
    client: httpx.AsyncClient, user: TenantUser, entity: str, body: dict[str, Any]
) -> dict[str, Any]:
    made = await client.post(f"/api/v1/{ENTITIES[entity].plural}", json=body, headers=user.headers)
    assert made.status_code == 201, made.text
    record: dict[str, Any] = made.json()
    return record


async def _give(
    client: httpx.AsyncClient,
    admin: TenantUser,
    entity: str,
    record: dict[str, Any],
    owner: uuid.UUID,
) -> dict[str, Any]:
    moved = await client.patch(
        f"/api/v1/{ENTITIES[entity].plural}/{record['id']}",
        json={"owner_id": str(owner)},
        headers={**admin.headers, "If-Match": f'"{record["version"]}"'},
    )
    assert moved.status_code == 200, moved.text
    result: dict[str, Any] = moved.json()
    return result


def _full_body(world: World, entity: str) -> dict[str, Any]:
    spec = ENTITIES[entity]
    return {f: world.value(f, "tenant_admin") for f, s in spec.fields.items() if s.on_create}


@pytest.fixture(scope="module")
async def world(services: Services, client: httpx.AsyncClient) -> World:
    admin = await new_tenant(services, client, "matrix")
    for name, spec in CUSTOM.items():
        made = await client.post(
            "/api/v1/roles",
            headers=admin.headers,
            json={
                "name": name,
                "rules": [{"effect": e, "object": o, "action": a} for e, o, a in spec["rules"]],
                "scopes": spec["scope"],
            },
        )
        assert made.status_code == 201, made.text
    users: dict[str, TenantUser] = {}
    for role in ROLES:
        email = f"{role}@{admin.slug}.example"
        user_id = await create_user(
            services.db, tenant_slug=admin.slug, email=email, password=PASSWORD, roles=[role]
        )
        token = (await sign_in(client, admin.slug, email, PASSWORD))["access_token"]
        users[role] = TenantUser(admin.tenant_id, admin.slug, user_id, email, token)
    world = World(
        admin=admin, users=users, account_id="", contact_id="", opportunity_id="", owned={}
    )
    world.account_id = (await _create(client, admin, "account", {"name": "Link target"}))["id"]
    world.contact_id = (await _create(client, admin, "contact", {"last_name": "Link target"}))["id"]
    world.opportunity_id = (
        await _create(client, admin, "opportunity", _full_body(world, "opportunity"))
    )["id"]
    for role, user in users.items():
        for entity in ENTITIES:
            record = await _create(client, admin, entity, _full_body(world, entity))
            world.owned[(role, entity)] = await _give(client, admin, entity, record, user.user_id)
    return world


CASES = [
    pytest.param(role, entity, skin, id=f"{role}-{entity}-{skin}")
    for role in ROLES
    for entity in ENTITIES
    for skin in SKINS
]


def _gql_value(field: str, value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return f'"{value}"'


# -- read -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("role", "entity", "skin"), CASES)
async def test_read(
    client: httpx.AsyncClient, world: World, role: str, entity: str, skin: str
) -> None:
    spec, user = ENTITIES[entity], world.users[role]
    record = world.owned[(role, entity)]
    fields = maskable(spec)
    if skin == "rest":
        got = await client.get(f"/api/v1/{spec.plural}/{record['id']}", headers=user.headers)
        if not oracle(role, entity, "read"):
            assert (got.status_code, got.json()["code"]) == (403, "action_forbidden")
            return
        assert got.status_code == 200, got.text
        body = got.json()
        shown = {f for f in fields if f in body}
        withheld = set(body["withheld_fields"])
    else:
        selection = " ".join(camel(f) for f in fields)
        result = await gql(
            client, user, f'{{ {entity}(id: "{record["id"]}") {{ {selection} withheldFields }} }}'
        )
        if not oracle(role, entity, "read"):
            assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            return
        node = result["data"][entity]
        shown = {f for f in fields if node[camel(f)] is not None}
        withheld = {f for f in fields if camel(f) in node["withheldFields"]}
    expected = {f for f in fields if field_allowed(role, entity, f, "read")}
    assert shown == expected
    assert withheld == set(fields) - expected


# -- create, one field at a time ------------------------------------------------------------
@pytest.mark.parametrize(("role", "entity", "skin"), CASES)
async def test_create(
    client: httpx.AsyncClient, world: World, role: str, entity: str, skin: str
) -> None:
    spec, user = ENTITIES[entity], world.users[role]
    required = {f: world.value(f, role) for f, s in spec.fields.items() if s.required}
    for field, fspec in spec.fields.items():
        if not fspec.on_create:
            continue
        body = {**required, field: world.value(field, role)}
        allowed = oracle(role, entity, "create") and all(
            field_allowed(role, entity, f, "create") for f in body
        )
        if skin == "rest":
            made = await client.post(f"/api/v1/{spec.plural}", json=body, headers=user.headers)
            assert made.status_code == (201 if allowed else 403), (field, made.text)
        else:
            fields = ", ".join(f"{camel(f)}: {_gql_value(f, v)}" for f, v in body.items())
            name = f"create{GQL_TYPE[entity]}"
            result = await gql(
                client, user, f"mutation {{ {name}(input: {{{fields}}}) {{ errors {{ code }} }} }}"
            )
            if allowed:
                assert result["data"][name]["errors"] == [], (field, result)
            else:
                assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN", (field, result)


# -- update, one field at a time -------------------------------------------------------------
@pytest.mark.parametrize(("role", "entity", "skin"), CASES)
async def test_update(
    client: httpx.AsyncClient, world: World, role: str, entity: str, skin: str
) -> None:
    spec, user = ENTITIES[entity], world.users[role]
    record_id = world.owned[(role, entity)]["id"]
    for field, fspec in spec.fields.items():
        if not fspec.on_update:
            continue
        allowed = field_allowed(role, entity, field, "update")
        current = await client.get(
            f"/api/v1/{spec.plural}/{record_id}", headers=world.admin.headers
        )
        version = current.json()["version"]
        value = world.value(field, role)
        if skin == "rest":
            changed = await client.patch(
                f"/api/v1/{spec.plural}/{record_id}",
                json={field: value},
                headers={**user.headers, "If-Match": f'"{version}"'},
            )
            assert changed.status_code == (200 if allowed else 403), (field, changed.text)
        else:
            name = f"update{GQL_TYPE[entity]}"
            result = await gql(
                client,
                user,
                f'mutation {{ {name}(input: {{id: "{record_id}", version: {version}, '
                f"{camel(field)}: {_gql_value(field, value)}}}) {{ errors {{ code }} }} }}",
            )
            if allowed:
                assert result["data"][name]["errors"] == [], (field, result)
            else:
                assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN", (field, result)
        after = await client.get(f"/api/v1/{spec.plural}/{record_id}", headers=world.admin.headers)
        # The sample value may be the one the record holds already: an update that changes
        # nothing makes no new version. A refused one never changes anything.
        moved = after.json()[field] != current.json()[field]
        assert after.json()["version"] == version + (1 if moved else 0), field
        assert allowed or not moved, field


# -- delete ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("role", "entity", "skin"), CASES)
async def test_delete(
    client: httpx.AsyncClient, world: World, role: str, entity: str, skin: str
) -> None:
    spec, user = ENTITIES[entity], world.users[role]
    target = await _give(
        client,
        world.admin,
        entity,
        await _create(client, world.admin, entity, _full_body(world, entity)),
        user.user_id,
    )
    allowed = oracle(role, entity, "delete")
    if skin == "rest":
        gone = await client.delete(f"/api/v1/{spec.plural}/{target['id']}", headers=user.headers)
        assert gone.status_code == (204 if allowed else 403), gone.text
    else:
        name = f"delete{GQL_TYPE[entity]}"
        result = await gql(
            client, user, f'mutation {{ {name}(input: {{id: "{target["id"]}"}}) {{ deletedId }} }}'
        )
        if allowed:
            assert result["data"][name]["deletedId"] == target["id"]
        else:
            assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    still = await client.get(f"/api/v1/{spec.plural}/{target['id']}", headers=world.admin.headers)
    assert still.status_code == (404 if allowed else 200)


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
