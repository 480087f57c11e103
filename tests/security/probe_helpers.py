"""Cross-tenant and cross-scope probes, generated from the API's own descriptions.

REST: every operation of the OpenAPI document with a path parameter. The kind of object each
parameter names comes from the path segment before it: an entity's plural (from the registry),
or one of the collections in COLLECTIONS; "history/{change_id}" is a change of the record named
just before it. GraphQL: every single-record query field and every mutation whose arguments
carry an ID, the kind coming from the argument's name (`userId`, `roleId`, ...) or, for `id`
and `recordId`, from the entity or collection named in the field (`deleteAccount`,
`revokeSession`). A parameter or argument of a kind nobody declared fails the generation, so a
new route or field is probed (or consciously declared) the day it is added.

A probe sends one request as a prober with the ids of objects the prober must not reach, built
by `make_targets`. It is a leak when the answer carries a target's distinctive value (anywhere,
any status), or a 2xx answer returns the target's id, or the target's stored row changed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    get_named_type,
)
from graphql.pyutils import Undefined

from backend.api.gql.errors import camel
from backend.crm.registry import ENTITIES
from backend.policy.builtin import TENANT_ADMIN, builtin_roles
from backend.records.fields import FieldSpec
from backend.records.spec import EntitySpec
from tests.conftest import TenantUser

Json = dict[str, Any]
BY_PLURAL: dict[str, EntitySpec] = {e.plural: e for e in ENTITIES.values()}

# Path segments (REST) before an id of a non-entity object, and the kind of object it names.
COLLECTIONS: dict[str, str] = {
    "users": "user",
    "sessions": "session",
    "devices": "device",
    "oauth-clients": "client",
    "roles": "role",
    "rules": "rule",
    "teams": "team",
    "exports": "export",
    "custom-fields": "custom_field",
    "phone": "phone",  # /lookup/phone/{number}: the foreign contact's phone number
    "reminders": "activity",  # /reminders/{id}/dismiss: a reminder's id is its activity's
    "pipelines": "pipeline",
    "imports": "import",
    "queues": "queue",
    "case-assignment-rules": "case_rule",
    "sla-policies": "sla_policy",
    "articles": "article",  # /knowledge/articles/{id}
    "scripts": "call_script",  # /knowledge/scripts/{id}
}
# Path parameters that are not ids of an object, and what a probe puts there.
LITERALS: dict[str, str] = {"scopes": "contact"}  # /roles/{id}/scopes/{entity}: an entity name
# Path parameters that are capabilities (a secret in the URL is the credential): not probed.
CAPABILITIES: dict[str, str] = {
    "calendar": "a calendar feed's secret URL: whoever holds it reads the feed, by design",
    "download": "a single-use export download link: the link is the credential, by design",
    # /public/{tenant_slug}/...: web self-service, unauthenticated. The slug names a tenant
    # whose public articles anyone may search; a case's status link and a survey link are
    # secret tokens (the link is the credential). Their isolation (other tenants' slugs,
    # other cases' tokens, guesses: the unknown path's 404) is tested in
    # tests/api/test_public_articles.py, test_public_cases.py and test_surveys.py.
    "public": "web self-service: no sign-in; tokens in the URL are the credential, by design",
}
# Objects that belong to one user: out of scope for every other user, tenant admins included.
PERSONAL = {"session", "device", "import"}
# Tenant configuration every user of the tenant reads (pipelines and their stages; case queues,
# routing rules and SLA policies, for whoever reads cases): a read by another role of the same
# tenant is by design; who may change them is tested in tests/api/test_pipelines.py and
# tests/api/test_case_routing.py / test_sla.py. A "colleague" is a user named as a case's
# assignee: any user of the tenant may be one. Published knowledge articles and call scripts
# are read tenant-wide (who may write or see drafts: tests/api/test_knowledge.py and
# test_scripts.py). Other tenants' are probed like everything else.
SHARED_IN_TENANT = {
    "pipeline",
    "stage",
    "queue",
    "case_rule",
    "sla_policy",
    "colleague",
    "article",
    "call_script",
}


def _camel_name(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


# GraphQL: argument names that say their kind; `id` / `recordId` take it from the field name.
GQL_ARGUMENT_KINDS: dict[str, str] = {
    "userId": "user",
    "userIds": "user",
    "ownerId": "user",
    "roleId": "role",
    "roleIds": "role",
    "ruleId": "rule",
    "teamId": "team",
    "parentTeamId": "team",
    "pipelineId": "pipeline",
    "stageId": "stage",
    "queueId": "queue",
    "assigneeId": "colleague",
    **{f"{_camel_name(name)}Id": name for name in ENTITIES},  # priceBookId
    # Links within an entity and to other entities, named by their column (parentAccountId).
    **{
        camel(column): ref.name
        for spec in ENTITIES.values()
        for column, ref in spec.references.items()
        if isinstance(ref, EntitySpec)
    },
    # mergeContacts: the kept contact, the merged ones, where a field's value comes from.
    "keep": "contact",
    "merge": "contact",
    "takeFrom": "contact",
}
# ID arguments that name no object of any kind yet (campaigns come later): any UUID is taken
# as given and nothing is looked up, so there is nothing to probe.
GQL_UNLINKED_ARGUMENTS = {"campaignId"}
GQL_FIELD_KINDS: dict[str, str] = {
    **{name.replace("_", ""): name for name in ENTITIES},  # field names, lowered: pricebook
    "role": "role",
    "team": "team",
    "oauthapp": "client",
    "session": "session",
    "export": "export",
    "customfield": "custom_field",
    "reminder": "activity",  # dismissReminder(id): the activity's id
    "pipeline": "pipeline",
}
GQL_CHANGE_ARGUMENTS = {"changeId", "beforeChangeId"}


def change_kind(entity: str) -> str:
    return f"{entity}.change"


# -- targets ------------------------------------------------------------------------------------
@dataclass
class Target:
    kind: str
    tenant_id: uuid.UUID
    id: str
    table: str
    markers: tuple[str, ...] = ()  # distinctive values only this object carries
    version: int = 1
    value: str = ""  # what goes in the URL when it is not the id (a phone number)
    related: tuple[tuple[str, str], ...] = ()  # (table, column) rows hanging off the object


def marker(label: str) -> str:
    """Lower-case letters and digits: valid as a record's text and as a role or app name."""
    return f"probe{label.replace('_', '')}{uuid.uuid4().hex[:12]}"


def field_value(spec: FieldSpec, text: str) -> Any:
    """A valid value of a field's kind (text fields get `text`)."""
    by_kind: dict[str, Any] = {
        "email": f"{text.lower()}@probe.example",
        "url": f"https://{text.lower()}.example",
        "phone": "+1 202 555 0100",
        "country": "DE",
        "currency": "EUR",
        "decimal": "1",
        "integer": 1,
        "date": "2030-01-01",
        "datetime": "2030-01-01T00:00:00Z",
        "tags": [text],
    }
    if spec.kind == "choice":
        return spec.choices[0]
    if spec.kind == "uuid":
        return None
    return by_kind.get(spec.kind, text)


def record_payload(entity: EntitySpec, text: str) -> Json:
    return {
        spec.name: field_value(spec, text)
        for spec in entity.fields.values()
        if spec.required and spec.kind != "uuid"
    }


async def _ok(response: httpx.Response, *statuses: int) -> Json:
    assert response.status_code in (statuses or (200, 201)), response.text
    body: Json = response.json() if response.content else {}
    return body


async def make_targets(http: httpx.AsyncClient, owner: TenantUser) -> dict[str, Target]:
    """One object of every kind in `owner`'s tenant, owned (where that means anything) by
    `owner`, a tenant admin, each with its own distinctive values."""
    targets: dict[str, Target] = {}
    auth = owner.headers
    phone = f"+1 202 555 {uuid.uuid4().int % 10000:04d}"
    for name, entity in ENTITIES.items():
        text = marker(name)
        body = record_payload(entity, text)
        for link, target in entity.references.items():
            # A required link names the target of its entity made before (registry order).
            if entity.fields[link].required and isinstance(target, EntitySpec):
                body[link] = targets[target.name].id
        if "unit_price" in entity.fields:  # a product's price: its lines' default
            body["unit_price"] = "1"
        if name == "contact":
            body["phone"] = phone
        record = await _ok(await http.post(f"/api/v1/{entity.plural}", json=body, headers=auth))
        rid = record["id"]
        targets[name] = Target(name, owner.tenant_id, rid, entity.table.name, (text,))
        history = await _ok(await http.get(f"/api/v1/{entity.plural}/{rid}/history", headers=auth))
        change = history["items"][0]["id"]
        targets[change_kind(name)] = Target(
            change_kind(name), owner.tenant_id, str(change), "record_history", (text,)
        )
    contact = targets["contact"]
    targets["phone"] = Target(
        "phone", owner.tenant_id, contact.id, contact.table, contact.markers, value=phone
    )
    targets["user"] = Target(
        "user",
        owner.tenant_id,
        str(owner.user_id),
        "users",
        (owner.email,),
        related=(("user_roles", "user_id"), ("auth_sessions", "user_id")),
    )
    sessions = await _ok(await http.get("/api/v1/me/sessions", headers=auth))
    session = sessions["items"][0]
    targets["session"] = Target("session", owner.tenant_id, str(session["id"]), "auth_sessions")
    device_name = marker("device")
    await _ok(
        await http.get(
            "/api/v1/sync",
            params={"device_id": str(uuid.uuid4()), "device_name": device_name, "limit": 1},
            headers=auth,
        )
    )
    devices = await _ok(await http.get("/api/v1/devices", headers=auth))
    [device] = [d for d in devices["items"] if d["name"] == device_name]
    targets["device"] = Target(
        "device", owner.tenant_id, str(device["id"]), "sync_devices", (device_name,)
    )
    client_name = marker("client")
    app = await _ok(
        await http.post(
            "/api/v1/oauth-clients",
            json={
                "name": client_name,
                "client_type": "confidential",
                "redirect_uris": ["https://probe.example/callback"],
            },
            headers=auth,
        ),
        201,
    )
    targets["client"] = Target(
        "client", owner.tenant_id, str(app["id"]), "oauth_clients", (client_name,)
    )
    role_name = marker("role")
    role = await _ok(
        await http.post(
            "/api/v1/roles",
            json={
                "name": role_name,
                "rules": [{"effect": "allow", "object": "contact", "action": "read"}],
                "scopes": {},
            },
            headers=auth,
        ),
        201,
    )
    targets["role"] = Target(
        "role",
        owner.tenant_id,
        str(role["id"]),
        "roles",
        (role_name,),
        related=(("role_rules", "role_id"), ("role_scopes", "role_id"), ("user_roles", "role_id")),
    )
    targets["rule"] = Target("rule", owner.tenant_id, str(role["rules"][0]["id"]), "role_rules")
    team_name = marker("team")
    team = await _ok(
        await http.post("/api/v1/teams", json={"name": team_name}, headers=auth), 200, 201
    )
    targets["team"] = Target(
        "team",
        owner.tenant_id,
        str(team["id"]),
        "teams",
        (team_name,),
        related=(("team_members", "team_id"),),
    )
    export = await _ok(
        await http.post("/api/v1/exports", json={"entity": "contact"}, headers=auth), 201
    )
    targets["export"] = Target("export", owner.tenant_id, str(export["id"]), "exports")
    label = marker("custom_field")
    defined = await _ok(
        await http.post(
            "/api/v1/custom-fields",
            json={
                "entity": "contact",
                "key": f"probe_{uuid.uuid4().hex[:8]}",
                "label": label,
                "type": "text",
            },
            headers=auth,
        ),
        201,
    )
    targets["custom_field"] = Target(
        "custom_field", owner.tenant_id, str(defined["id"]), "custom_fields", (label,)
    )
    pipeline_name = marker("pipeline")
    pipeline = await _ok(
        await http.post(
            "/api/v1/pipelines",
            json={"name": pipeline_name, "stages": [{"name": "Open", "probability": 10}]},
            headers=auth,
        ),
        201,
    )
    targets["pipeline"] = Target(
        "pipeline",
        owner.tenant_id,
        str(pipeline["id"]),
        "pipelines",
        (pipeline_name,),
        related=(("pipeline_stages", "pipeline_id"),),
    )
    targets["stage"] = Target(
        "stage", owner.tenant_id, str(pipeline["stages"][0]["id"]), "pipeline_stages"
    )
    import_name = f"{marker('import')}.csv"
    imported = await _ok(
        await http.post(
            "/api/v1/imports",
            files={"file": (import_name, b"last_name\nProbe\n", "text/csv")},
            data={"entity": "contacts", "mapping": '{"last_name": "last_name"}', "dry_run": "true"},
            headers=auth,
        ),
        201,
    )
    targets["import"] = Target(
        "import", owner.tenant_id, str(imported["id"]), "imports", (import_name,)
    )
    targets["colleague"] = dataclasses.replace(targets["user"], kind="colleague")
    queue_name = marker("queue")
    queue = await _ok(
        await http.post("/api/v1/queues", json={"name": queue_name}, headers=auth), 201
    )
    targets["queue"] = Target("queue", owner.tenant_id, str(queue["id"]), "queues", (queue_name,))
    rule = await _ok(
        await http.post(
            "/api/v1/case-assignment-rules",
            json={"queue_id": queue["id"], "conditions": {"priority": ["urgent"]}},
            headers=auth,
        ),
        201,
    )
    targets["case_rule"] = Target(
        "case_rule", owner.tenant_id, str(rule["id"]), "case_assignment_rules"
    )
    made = await http.post(
        "/api/v1/sla-policies",
        json={
            "priority": "urgent",
            "first_response_minutes": 15,
            "resolution_minutes": 120,
            "business_hours": {"mon": ["09:00", "17:00"]},
        },
        headers=auth,
    )
    if made.status_code == 409:  # one policy per priority: targets made again for this tenant
        listed = await _ok(await http.get("/api/v1/sla-policies", headers=auth), 200)
        policy = next(p for p in listed["items"] if p["priority"] == "urgent")
    else:
        policy = await _ok(made, 201)
    targets["sla_policy"] = Target("sla_policy", owner.tenant_id, str(policy["id"]), "sla_policies")
    title = marker("article")
    article = await _ok(
        await http.post(
            "/api/v1/knowledge/articles",
            json={"title": title, "body": "Text.", "language": "en", "status": "published"},
            headers=auth,
        ),
        201,
    )
    targets["article"] = Target(
        "article",
        owner.tenant_id,
        str(article["id"]),
        "kb_articles",
        (title,),
        related=(("kb_article_versions", "article_id"),),
    )
    script_name = marker("script")
    script = await _ok(
        await http.post(
            "/api/v1/knowledge/scripts",
            json={
                "name": script_name,
                "steps": [
                    {
                        "key": "greet",
                        "prompt": "Hello?",
                        "options": [{"value": "yes", "label": "Yes", "end": "Done"}],
                    }
                ],
            },
            headers=auth,
        ),
        201,
    )
    targets["call_script"] = Target(
        "call_script", owner.tenant_id, str(script["id"]), "call_scripts", (script_name,)
    )
    return targets


# -- what a stored object looks like (read straight from PostgreSQL, as its tenant) --------------
VOLATILE = ("last_used_at", "last_seen_at", "last_ip", "updated_at_ms")


async def snapshot(conn: asyncpg.Connection, target: Target) -> str:
    """The object's row and the rows hanging off it, as one comparable string."""
    strip = " - ".join(f"'{c}'" for c in VOLATILE)
    parts: list[Any] = []
    async with conn.transaction():
        await conn.execute("select set_config('app.tenant_id', $1, true)", str(target.tenant_id))
        for table, column in ((target.table, "id"), *target.related):
            rows = await conn.fetchval(
                f"select coalesce(jsonb_agg(to_jsonb(t) - {strip} order by t::text), '[]') "  # noqa: S608
                f"from {table} t where {column}::text = $1",
                target.id,
            )
            parts.append(json.loads(rows))
    return json.dumps(parts, sort_keys=True)


async def current_version(conn: asyncpg.Connection, target: Target) -> int:
    async with conn.transaction():
        await conn.execute("select set_config('app.tenant_id', $1, true)", str(target.tenant_id))
        version = await conn.fetchval(
            f"select version from {target.table} where id::text = $1",  # noqa: S608
            target.id,
        )
    return int(version or 1)


# -- who may reach what --------------------------------------------------------------------------
def builtin_role_names() -> list[str]:
    return sorted(builtin_roles())


def record_scope(role: str, entity: str) -> str:
    scopes = builtin_roles()[role].scopes
    return scopes.get(entity, scopes.get("*", "tenant"))


def out_of_scope(role: str, kind: str) -> bool:
    """Is an object of this kind, owned by another user (a tenant admin) of the same tenant,
    beyond this built-in role's reach?"""
    entity = kind.split(".")[0]
    if kind == "phone":
        return record_scope(role, "contact") in ("own", "team")
    if entity in ENTITIES:
        return record_scope(role, entity) in ("own", "team")
    if kind in PERSONAL:
        return True
    if kind in SHARED_IN_TENANT:
        return False
    return role != TENANT_ADMIN


# -- probes and their verdicts ---------------------------------------------------------------------
@dataclass
class Probe:
    surface: str  # "GET /api/v1/contacts/{record_id}" or "mutation deleteContact"
    kinds: tuple[str, ...]  # the kinds of the foreign objects it names
    mutates: bool
    rest: tuple[str, str, Json | None] | None = None  # method, path template, body
    gql: tuple[str, Json] | None = None  # document, variables template
    query: Json = field(default_factory=dict)  # REST: required (or known) query parameters

    def label(self) -> str:
        return f"{self.surface} [{', '.join(self.kinds)}]"


@dataclass
class Verdict:
    probe: str
    role: str
    status: int
    why: list[str] = field(default_factory=list)


def verdict(
    probe: Probe, role: str, response: httpx.Response, targets: Mapping[str, Target]
) -> Verdict:
    """REST: every operation acts on the object its path names, so any 2xx to a foreign id is
    a leak. GraphQL (always 200): a leak when `data` holds an object whose id is the target's
    (not an echo in a refused result, which carries an error `code`). Both: a target's
    distinctive value anywhere in the answer."""
    text = response.text.lower()
    found = Verdict(probe.label(), role, response.status_code)
    if probe.rest is not None and 200 <= response.status_code < 300:
        found.why.append("2xx answer to a foreign id")
    for kind in probe.kinds:
        target = targets[kind]
        for value in target.markers:
            if value.lower() in text:
                found.why.append(f"answer shows {kind}'s value {value}")
        if probe.gql is not None and _gql_returns(response, target.id):
            found.why.append(f"data returns {kind} {target.id}")
    return found


def _gql_returns(response: httpx.Response, target_id: str) -> bool:
    body = response.json() if response.content else {}
    return any(_holds(node, target_id) for node in _objects(body.get("data")))


def _holds(node: Json, target_id: str) -> bool:
    if node.get("code"):
        return False  # a refused item echoing the id it was given
    return any(
        (key == "id" or key.endswith("Id")) and value == target_id for key, value in node.items()
    )


def _objects(value: Any) -> Iterator[Json]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item)


# -- REST generation -----------------------------------------------------------------------------
PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")
METHODS = ("get", "post", "put", "patch", "delete")


class UndeclaredKind(AssertionError):
    """A path parameter or GraphQL argument whose kind nobody declared: declare it above."""


def rest_param_kinds(path: str) -> dict[str, str] | None:
    """The kind of each path parameter (None: a capability URL, not probed)."""
    segments = path.strip("/").split("/")
    kinds: dict[str, str] = {}
    entity: str | None = None
    for i, segment in enumerate(segments):
        found = PATH_PARAM.fullmatch(segment)
        if found is None:
            continue
        before = segments[i - 1] if i else ""
        name = found.group(1)
        if before in CAPABILITIES:
            return None
        if before in BY_PLURAL:
            entity = BY_PLURAL[before].name
            kinds[name] = entity
        elif before == "history" and entity is not None:
            kinds[name] = change_kind(entity)
        elif before in COLLECTIONS:
            kinds[name] = COLLECTIONS[before]
        elif before in LITERALS:
            kinds[name] = f"literal:{LITERALS[before]}"
        else:
            raise UndeclaredKind(f"{path}: what does {{{name}}} after '{before}' name?")
    return kinds


def _resolve(doc: Json, schema: Json) -> Json:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    for union in ("oneOf", "anyOf"):
        if union in schema:
            options = [s for s in schema[union] if s.get("type") != "null"]
            return _resolve(doc, options[0])
    return schema


FILLERS: dict[str, Any] = {
    "entity": "contact",
    "format": "csv",
    "effect": "allow",
    "object": "contact",
    "action": "read",
    "scope": "tenant",
    "name": "ProbeHijack",
    "reason": "probe",
    "code": "000000",
    "client_type": "confidential",
}


def example(doc: Json, schema: Json, name: str = "") -> Any:
    """A minimal body the schema accepts: required properties, filled by name and type."""
    schema = _resolve(doc, schema)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {p: example(doc, props[p], p) for p in schema.get("required", [])}
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "array":
        return []
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return 1
    return FILLERS.get(name, "probe")


def rest_probes(doc: Json) -> Iterator[Probe]:
    for path, item in doc["paths"].items():
        if "{" not in path:
            continue
        kinds = rest_param_kinds(path)
        if kinds is None:
            continue
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            body: Json | None = None
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                body = example(doc, content["application/json"]["schema"])
            query = {
                p["name"]: example(doc, p.get("schema", {}), p["name"])
                for p in operation.get("parameters", [])
                if p.get("in") == "query" and (p.get("required") or p["name"] in FILLERS)
            }
            yield Probe(
                surface=f"{method.upper()} {path}",
                kinds=tuple(k for k in kinds.values() if not k.startswith("literal:")),
                mutates=method != "get",
                rest=(method, path, body),
                query=query,
            )


def rest_request(
    probe: Probe, targets: Mapping[str, Target], versions: Mapping[str, int]
) -> tuple[str, str, Json | None, dict[str, str]]:
    assert probe.rest is not None
    method, path, body = probe.rest
    kinds = rest_param_kinds(path) or {}
    headers: dict[str, str] = {}
    url = path
    for name, kind in kinds.items():
        if kind.startswith("literal:"):
            value = kind.removeprefix("literal:")
        else:
            target = targets[kind]
            value = quote(target.value or target.id, safe="")
            if kind in ENTITIES:
                headers["If-Match"] = f'"{versions.get(kind, 1)}"'
                if method == "patch":
                    entity = ENTITIES[kind]
                    name_field = entity.fields[_name_field(entity)]
                    body = {name_field.name: field_value(name_field, "ProbeHijack")}
                change = targets.get(change_kind(kind))
                if body and change is not None:
                    # A body naming a change (a revert) names the foreign record's change.
                    body = {k: change.id if k.endswith("change_id") else v for k, v in body.items()}
        url = _put(url, name, value)
    return method, url, body, headers


def _put(url: str, name: str, value: str) -> str:
    """Fill one {name} (or {name:type}) placeholder of a path."""
    return PATH_PARAM.sub(lambda m: value if m.group(1) == name else m.group(0), url)


def _name_field(entity: EntitySpec) -> str:
    """The record's name; for an entity without one (an order, a line), a field it may change."""
    named = [s.name for s in entity.fields.values() if s.required and s.kind == "text"]
    changeable = [s.name for s in entity.fields.values() if s.on_update and s.kind != "uuid"]
    return (named or changeable)[0]


# -- GraphQL generation --------------------------------------------------------------------------
def _unwrap(t: Any) -> tuple[Any, bool, bool]:
    """(named type, required, list)."""
    required = isinstance(t, GraphQLNonNull)
    if required:
        t = t.of_type
    is_list = isinstance(t, GraphQLList)
    if is_list:
        t = t.of_type
        if isinstance(t, GraphQLNonNull):
            t = t.of_type
    return t, required, is_list


def _is_id(t: Any) -> bool:
    named, _, _ = _unwrap(t)
    return isinstance(named, GraphQLScalarType) and named.name == "ID"


def field_kind(field_name: str) -> str | None:
    lowered = field_name.lower()
    hits = [k for k in GQL_FIELD_KINDS if k in lowered]
    return GQL_FIELD_KINDS[max(hits, key=len)] if hits else None


def argument_kind(field_name: str, argument: str, entity_hint: str | None) -> str:
    subject = entity_hint or field_kind(field_name)
    if argument in GQL_ARGUMENT_KINDS:
        return GQL_ARGUMENT_KINDS[argument]
    if argument in GQL_CHANGE_ARGUMENTS and subject in ENTITIES:
        return change_kind(subject)
    if argument in ("id", "recordId") and subject is not None:
        return subject
    raise UndeclaredKind(f"{field_name}: what does the ID argument {argument!r} name?")


@dataclass
class IdSlot:
    path: tuple[Any, ...]  # argument path, e.g. ("input", "changes", 0, "id")
    kind: str
    required: bool


def _id_slots(
    field_name: str,
    args: Mapping[str, Any],
    prefix: tuple[Any, ...],
    entity_hint: str | None,
    parent_required: bool,
) -> Iterator[IdSlot]:
    for name, arg in args.items():
        named, required, is_list = _unwrap(arg.type)
        path = (*prefix, name, 0) if is_list else (*prefix, name)
        if _is_id(arg.type) and name in GQL_UNLINKED_ARGUMENTS:
            continue
        if _is_id(arg.type):
            kind = argument_kind(field_name, name, entity_hint)
            yield IdSlot(path, kind, required and parent_required)
        elif isinstance(named, GraphQLInputObjectType):
            hint = entity_hint
            if "entity" in named.fields and "id" in named.fields:
                hint = "*"  # the entity is chosen per probe (sync push)
            yield from _id_slots(field_name, named.fields, path, hint, required and parent_required)


def _fill(
    field_name: str,
    t: GraphQLInputType,
    name: str,
    ids: Mapping[tuple[Any, ...], str],
    path: tuple[Any, ...],
    entity: EntitySpec | None,
) -> Any:
    named, _, is_list = _unwrap(t)
    inner_path = (*path, 0) if is_list else path
    if isinstance(named, GraphQLInputObjectType):
        value: Json = {}
        for fname, f in named.fields.items():
            sub = (*inner_path, fname)
            needed = isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
            wanted = any(p[: len(sub)] == sub for p in ids)
            # versions get the record's true one (see _set_versions): only scope may refuse
            versioned = fname in ("version", "baseVersion") and any(
                p[: len(inner_path)] == inner_path for p in ids
            )
            if needed or wanted or versioned or _rewrites(field_name, fname, entity):
                value[fname] = _fill(field_name, f.type, fname, ids, sub, entity)
        return [value] if is_list else value
    if inner_path in ids:
        return [ids[inner_path]] if is_list else ids[inner_path]
    if is_list:
        return []
    if isinstance(named, GraphQLEnumType):
        # A sync push's op: a delete is the change a leak would show most plainly.
        return "DELETE" if "DELETE" in named.values else next(iter(named.values))
    return _scalar(named.name, name, entity)


def _rewrites(field_name: str, fname: str, entity: EntitySpec | None) -> bool:
    """An update also tries to change the record's name (a no-op update proves little)."""
    return (
        field_name.startswith("update")
        and entity is not None
        and fname == _camel(_name_field(entity))
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _scalar(type_name: str, name: str, entity: EntitySpec | None) -> Any:
    if entity is not None:
        specs = {_camel(s.name): s for s in entity.fields.values()}
        if name in specs:
            if specs[name].kind == "text":
                return "ProbeHijack"
            return field_value(specs[name], "ProbeHijack")
    if name == "entity" and entity is not None:
        return entity.name
    if name == "clientId":
        return "probe-1"
    if name == "deviceId":
        return str(uuid.uuid4())
    if type_name == "Int":
        return 1
    if type_name == "Boolean":
        return False
    if type_name in ("Date",):
        return "2030-01-01"
    if type_name == "JSON":
        return {}
    return FILLERS.get(name, "probe")


def _selection(t: GraphQLOutputType, depth: int = 2) -> str:
    named = get_named_type(t)
    if not isinstance(named, GraphQLObjectType):
        return ""
    parts: list[str] = []
    for name, f in named.fields.items():
        if any(isinstance(a.type, GraphQLNonNull) for a in f.args.values()):
            continue
        inner = get_named_type(f.type)
        if isinstance(inner, GraphQLObjectType):
            if depth > 1 and not inner.name.endswith("Connection"):
                sub = _selection(f.type, depth - 1)
                if sub:
                    parts.append(f"{name} {sub}")
        else:
            parts.append(name)
    return "{ " + " ".join(parts) + " }" if parts else ""


def _entity_of(field_name: str, kinds: tuple[str, ...]) -> EntitySpec | None:
    for kind in (field_kind(field_name), *kinds):
        if kind is not None and kind.split(".")[0] in ENTITIES:
            return ENTITIES[kind.split(".")[0]]
    return None


def gql_probes(schema: Any) -> Iterator[Probe]:
    """Single-record query fields and mutations taking an ID, each ID slot a foreign object."""
    roots = (("query", schema.query_type), ("mutation", schema.mutation_type))
    for operation, root in roots:
        for name, f in root.fields.items():
            _, _, returns_list = _unwrap(f.type)
            returns = get_named_type(f.type)
            if operation == "query" and (returns_list or returns.name.endswith("Connection")):
                continue
            slots = list(_id_slots(name, f.args, (), None, True))
            if not slots:
                continue
            yield from _gql_field_probes(operation, name, f, slots)


def _gql_field_probes(
    operation: str, name: str, f: GraphQLField, slots: list[IdSlot]
) -> Iterator[Probe]:
    required = [s for s in slots if s.required]
    groups = [required] if required else [[s] for s in slots]
    for group in groups:
        wildcard = any(s.kind == "*" or "*" in s.kind for s in group)
        entities = list(ENTITIES) if wildcard else [None]
        for entity_name in entities:
            chosen = [
                IdSlot(s.path, entity_name if entity_name and s.kind == "*" else s.kind, s.required)
                for s in group
            ]
            yield _gql_probe(operation, name, f, chosen, entity_name)


def _gql_probe(
    operation: str, name: str, f: GraphQLField, slots: list[IdSlot], entity_name: str | None
) -> Probe:
    kinds = tuple(dict.fromkeys(s.kind for s in slots))
    entity = ENTITIES[entity_name] if entity_name else _entity_of(name, kinds)
    placeholders = {s.path: f"@@{s.kind}@@" for s in slots}
    variables: Json = {}
    declared: list[str] = []
    for arg_name, arg in f.args.items():
        needed = isinstance(arg.type, GraphQLNonNull)
        wanted = any(p[0] == arg_name for p in placeholders)
        if not (needed or wanted):
            continue
        variables[arg_name] = _fill(name, arg.type, arg_name, placeholders, (arg_name,), entity)
        declared.append(f"${arg_name}: {arg.type}")
    selection = _selection(f.type)
    args = ", ".join(f"{a}: ${a}" for a in variables)
    document = (
        f"{operation} Probe({', '.join(declared)}) {{ {name}({args}) {selection} }}"
        if declared
        else f"{operation} Probe {{ {name} {selection} }}"
    )
    if entity_name:
        _plural_entities(variables)
    suffix = f" ({entity_name})" if entity_name else ""
    return Probe(
        surface=f"{operation} {name}{suffix}",
        kinds=kinds,
        mutates=operation == "mutation",
        gql=(document, variables),
    )


def _plural_entities(value: Any) -> None:
    """Sync changes name their entity by its collection name (`contacts`)."""
    for node in _objects(value):
        if "id" in node and node.get("entity") in ENTITIES:
            node["entity"] = ENTITIES[node["entity"]].plural


def gql_variables(probe: Probe, targets: Mapping[str, Target], versions: Mapping[str, int]) -> Json:
    assert probe.gql is not None
    text = json.dumps(probe.gql[1])
    for kind in probe.kinds:
        text = text.replace(f"@@{kind}@@", targets[kind].id)
    variables: Json = json.loads(text)
    _set_versions(variables, probe, versions)
    return variables


def _set_versions(value: Any, probe: Probe, versions: Mapping[str, int]) -> None:
    """`version` / `baseVersion` get the record's true version: only scope may refuse."""
    record = next((k for k in probe.kinds if k in ENTITIES), None)
    if record is None:
        return
    if isinstance(value, dict):
        for key in list(value):
            if key in ("version", "baseVersion"):
                value[key] = versions.get(record, 1)
            else:
                _set_versions(value[key], probe, versions)
    elif isinstance(value, list):
        for item in value:
            _set_versions(item, probe, versions)
