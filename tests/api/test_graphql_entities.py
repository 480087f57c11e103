"""GraphQL generated from the entity registry (issue 14): every registered entity gets its type,
Filter and Order, connection, queries, mutations with `{x, record, errors}` payloads, revert
mutations and its relations both ways; field descriptions come from the spec; an entity added
to the registry is served without GraphQL code; api/gql has no import loop."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType, get_named_type
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, event
from sqlalchemy.dialects.postgresql import UUID
from strawberry.tools import merge_types

from backend.api.gql.entities import build_entities, entity_roots
from backend.api.gql.errors import camel
from backend.api.gql.schema import schema
from backend.crm.accounts.service import ACCOUNT
from backend.crm.registry import ENTITIES, SERVICES
from backend.records.fields import FieldSpec
from backend.records.listing import choice_filters, range_params
from backend.records.service import RecordService
from backend.records.spec import EntitySpec, Relation
from backend.runtime import Services
from tests.conftest import TenantUser, gql, new_tenant

GQL = Path(__file__).resolve().parents[2] / "backend" / "api" / "gql"
SAMPLES: dict[str, Any] = {
    "text": "Sample",
    "email": "sample@example.com",
    "url": "https://example.com",
    "phone": "+49 30 1234567",
    "country": "DE",
    "currency": "EUR",
    "decimal": "12.50",
    "integer": 1,
    "date": "2027-01-15",
    "datetime": "2027-01-15T09:30:00+01:00",
    "tags": ["sample"],
}
HISTORY = "history(first: 1) { edges { node { id } } }"
RELATIONS = [(spec, relation) for spec in ENTITIES.values() for relation in spec.relations]
# Links a client can write (not those only the server sets, e.g. a lead's conversion links).
WRITABLE_RELATIONS = [(s, r) for s, r in RELATIONS if s.fields[r.column].on_create]


def _type(name: str) -> GraphQLObjectType:
    found = schema._schema.type_map[name]
    assert isinstance(found, GraphQLObjectType), name
    return found


def _sample(field: FieldSpec, spec: EntitySpec | None = None) -> Any:
    if spec is not None and field.name in spec.unique_fields and field.kind == "text":
        return f"Sample-{uuid.uuid4().hex[:12]}"  # unique per tenant (a product's sku)
    if field.kind == "boolean":
        return False
    return field.choices[0] if field.kind == "choice" else SAMPLES[field.kind]


async def _required_input(
    client: httpx.AsyncClient, tenant: TenantUser, spec: EntitySpec, **links: str
) -> dict[str, Any]:
    """The required fields and the numbers (a product's price: its lines' default); a required
    reference names a parent made first (the same way)."""
    values: dict[str, Any] = {}
    for f in spec.fields.values():
        wanted = f.required or f.kind == "decimal"
        if not (wanted and f.on_create) or camel(f.name) in links:
            continue
        target = spec.references.get(f.name)
        if isinstance(target, EntitySpec):
            values[camel(f.name)] = await _create(client, tenant, target)
        else:
            values[camel(f.name)] = _sample(f, spec)
    return {**values, **links}


def _editable(spec: EntitySpec) -> tuple[FieldSpec, Any]:
    """A field to change and its new value: text if the entity has any, else a number, else a
    currency (an order)."""
    changed = {"text": "Changed", "decimal": "13.00", "currency": "USD"}
    fields = [f for f in spec.fields.values() if f.on_update and f.kind in changed]
    field = sorted(fields, key=lambda f: list(changed).index(f.kind))[0]
    return field, changed[field.kind]


@pytest.mark.parametrize("spec", ENTITIES.values(), ids=list(ENTITIES))
def test_every_registered_entity_has_its_graphql(spec: EntitySpec) -> None:
    name = spec.graphql_name
    for type_name in (name, f"{name}Connection", f"{name}Edge", f"{name}Payload"):
        _type(type_name)
    node = _type(name)
    assert {camel(f) for f in spec.fields} <= set(node.fields)
    assert {"id", "version", "createdAt", "updatedAt", "withheldFields", "history"} <= set(
        node.fields
    )
    filter_type = schema._schema.type_map[f"{name}Filter"]
    assert isinstance(filter_type, GraphQLInputObjectType)
    filter_fields = set(filter_type.fields)
    assert filter_fields == {
        "q",
        "updatedSince",
        *(camel(c) for c in spec.filter_columns),
        *(camel(p) for p in range_params(spec)),
        *(camel(c) for c in choice_filters(spec)),
        *(camel(c) for c in spec.list_filters),
    }
    order = schema._schema.type_map[f"{name}OrderField"]
    assert isinstance(order, GraphQLEnumType)
    assert set(order.values) == {c.upper() for c in spec.sort_columns}
    for input_name in (f"Create{name}Input", f"Update{name}Input"):
        assert input_name in schema._schema.type_map
    query = _type("Query").fields
    assert get_named_type(query[camel(spec.name)].type).name == name
    assert set(query[camel(spec.plural)].args) == {"first", "after", "filter", "orderBy"}
    mutation = _type("Mutation").fields
    for operation in ("create", "update", "revert"):
        assert get_named_type(mutation[f"{operation}{name}"].type).name == f"{name}Payload"
    assert get_named_type(mutation[f"revert{name}Change"].type).name == f"{name}Payload"
    assert get_named_type(mutation[f"delete{name}"].type).name == "DeletePayload"
    payload = _type(f"{name}Payload").fields
    assert set(payload) == {camel(spec.name), "record", "errors"}


@pytest.mark.parametrize(
    ("spec", "relation"), RELATIONS, ids=[f"{s.name}.{r.column}" for s, r in RELATIONS]
)
def test_declared_relations_are_fields_both_ways(spec: EntitySpec, relation: Relation) -> None:
    target = spec.target(relation)
    to_one = _type(spec.graphql_name).fields[camel(relation.field_name)]
    assert isinstance(to_one.type, GraphQLObjectType)  # nullable: the link may be empty
    assert to_one.type.name == target.graphql_name
    to_many = _type(target.graphql_name).fields[camel(relation.reverse_name or spec.plural)]
    assert get_named_type(to_many.type).name == f"{spec.graphql_name}Connection"
    assert set(to_many.args) == {"first"}


def test_field_descriptions_come_from_the_spec() -> None:
    described = [(s, f) for s in ENTITIES.values() for f in s.fields.values() if f.description]
    assert described, "some fields carry a description"
    for spec, field in described:
        description = _type(spec.graphql_name).fields[camel(field.name)].description
        assert description is not None and description.startswith(field.description)
    stage = _type("Opportunity").fields["stage"].description
    assert stage is not None and "One of: prospecting," in stage


def test_an_entity_added_to_the_registry_is_served_without_graphql_code() -> None:
    lead_table = Table(
        "leads_probe",
        MetaData(),
        Column("id", UUID(as_uuid=True), primary_key=True),
        Column("version", Integer),
        Column("company", String(200), nullable=False),
        Column("account_id", UUID(as_uuid=True)),
        Column("owner_id", UUID(as_uuid=True)),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )
    lead = EntitySpec(
        name="lead",
        plural="leads",
        table=lead_table,
        fields=EntitySpec.field_map(
            FieldSpec("company", max_length=200, required=True, description="Who it is."),
            FieldSpec("account_id", kind="uuid"),
            FieldSpec("owner_id", kind="uuid", on_create=False),
        ),
        filter_columns=("owner_id", "account_id"),
        references={"account_id": ACCOUNT},
        relations=(Relation("account_id"),),
    )
    entities = build_entities({**SERVICES, "lead": RecordService(lead)})
    query, mutation = entity_roots(entities)
    sdl = strawberry.Schema(
        query=merge_types("Query", (query,)), mutation=merge_types("Mutation", (mutation,))
    ).as_str()
    for expected in (
        "type Lead {",
        '"""Who it is."""\n  company: String',
        "account: Account",
        "leads(first: Int! = 20): LeadConnection!",  # on Account
        "input LeadFilter {",
        "enum LeadOrderField {",
        "lead(id: ID!): Lead",
        "leads(first: Int! = 50, after: String = null, filter: LeadFilter = null, "
        "orderBy: LeadOrder = null): LeadConnection!",
        "createLead(input: CreateLeadInput!): LeadPayload!",
        "updateLead(input: UpdateLeadInput!): LeadPayload!",
        "deleteLead(input: DeleteInput!): DeletePayload!",
        "revertLeadChange(input: RevertChangeInput!): LeadPayload!",
        "revertLead(input: RevertRecordInput!): LeadPayload!",
        "type LeadPayload {\n  lead: Lead\n  errors: [FieldError!]!",
    ):
        assert expected in sdl, expected


def test_a_relation_must_name_an_entity() -> None:
    with pytest.raises(ValueError, match="must be a reference to an entity"):
        EntitySpec(
            name="probe",
            plural="probes",
            table=ACCOUNT.table,
            fields={},
            relations=(Relation("owner_id"),),
        )


def _module_imports(path: Path) -> tuple[set[str], list[int]]:
    """The backend.api.gql modules a file imports at module level, and the lines of imports
    made inside functions."""
    tree = ast.parse(path.read_text())
    top: set[str] = set()
    nested: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nested += [
                n.lineno for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)
            ]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("backend.api.gql"):
            top.add(node.module or "")
    return top, nested


def test_api_gql_has_no_import_loop_and_no_imports_inside_functions() -> None:
    graph: dict[str, set[str]] = {}
    for path in sorted(GQL.rglob("*.py")):
        parts = path.relative_to(GQL.parents[2]).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        imports, nested = _module_imports(path)
        assert not nested, f"{path}: imports inside functions at lines {nested}"
        graph[module] = imports

    def visit(module: str, stack: tuple[str, ...]) -> None:
        assert module not in stack, f"import loop: {' -> '.join((*stack, module))}"
        for imported in graph.get(module, ()):
            if imported != module and not module.startswith(imported + "."):
                visit(imported, (*stack, module))

    for module in graph:
        visit(module, ())


async def test_payloads_answer_the_record_also_as_record(
    services: Services, client: httpx.AsyncClient
) -> None:
    """For every entity: create, update and revert answer `{x, record, errors}` with `record`
    the same as `x`; a refused write answers both as null with the errors."""
    tenant = await new_tenant(services, client, "gqlrecord")
    for spec in ENTITIES.values():
        name, key = spec.graphql_name, camel(spec.name)
        field, new_value = _editable(spec)
        selection = f"{{ {key} {{ id version }} record {{ id version }} errors {{ field code }} }}"

        async def call(
            operation: str, input_type: str, values: dict[str, Any], selection: str = selection
        ) -> dict[str, Any]:
            document = f"mutation($i: {input_type}!) {{ {operation}(input: $i) {selection} }}"
            result = await gql(client, tenant, document, {"i": values})
            assert "errors" not in result, result
            payload: dict[str, Any] = result["data"][operation]
            return payload

        required = await _required_input(client, tenant, spec)
        created = await call(f"create{name}", f"Create{name}Input", required)
        assert created["errors"] == [] and created[key] == created["record"] is not None
        record_id = created[key]["id"]
        change = {"id": record_id, "version": 1, camel(field.name): new_value}
        updated = await call(f"update{name}", f"Update{name}Input", change)
        assert updated["errors"] == [] and updated["record"] == {"id": record_id, "version": 2}
        stale = await call(f"update{name}", f"Update{name}Input", change)
        assert stale[key] is None and stale["record"] is None
        assert [e["field"] for e in stale["errors"]] == ["version"], stale

        history = await gql(
            client,
            tenant,
            f"query($id: ID!) {{ {key}(id: $id) {{ {HISTORY} }} }}",
            {"id": record_id},
        )
        change_id = history["data"][key]["history"]["edges"][0]["node"]["id"]
        reverted = await call(
            f"revert{name}Change",
            "RevertChangeInput",
            {"recordId": record_id, "changeId": change_id},
        )
        assert reverted["errors"] == [] and reverted[key] == reverted["record"]
        assert reverted["record"]["version"] == 3
        unknown = {"recordId": str(uuid.uuid4()), "changeId": change_id}
        missing = await gql(
            client,
            tenant,
            f"mutation($i: RevertChangeInput!) {{ revert{name}Change(input: $i) {selection} }}",
            {"i": unknown},
        )
        assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"  # not a payload error


async def _create(
    client: httpx.AsyncClient, tenant: TenantUser, spec: EntitySpec, **links: str
) -> str:
    name = spec.graphql_name
    result = await gql(
        client,
        tenant,
        f"mutation($i: Create{name}Input!) {{ create{name}(input: $i) {{ record {{ id }} }} }}",
        {"i": await _required_input(client, tenant, spec, **links)},
    )
    record_id: str = result["data"][f"create{name}"]["record"]["id"]
    return record_id


@pytest.mark.parametrize(
    ("spec", "relation"),
    WRITABLE_RELATIONS,
    ids=[f"{s.name}.{r.column}" for s, r in WRITABLE_RELATIONS],
)
async def test_nested_relations_cost_the_same_statements_for_any_page(
    services: Services, client: httpx.AsyncClient, spec: EntitySpec, relation: Relation
) -> None:
    """Parents with their children with their parent again: one statement per level and link
    (DataLoaders), however many records the pages hold."""
    tenant = await new_tenant(services, client, "gqlnest")
    parent = spec.target(relation)
    # Parents first: with a link within one entity (a tree) they are the first page too.
    parent_ids = [await _create(client, tenant, parent) for _ in range(3)]
    for parent_id in parent_ids:
        for _ in range(3):
            await _create(client, tenant, spec, **{camel(relation.column): parent_id})
    children = camel(relation.reverse_name or spec.plural)
    document = (
        f"{{ {camel(parent.plural)}(first: %d) {{ edges {{ node {{ id {children}(first: %d) "
        f"{{ edges {{ node {{ id {camel(relation.field_name)} {{ id }} }} }} }} }} }} }} }}"
    )
    counted = [0]

    def count(*_: Any) -> None:
        counted[0] += 1

    engine = services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    found: dict[tuple[int, int], int] = {}
    try:
        # The first request warms caches; a periodic re-check (the policy version, at most
        # every 2 s) may add a statement to any one request, so each size keeps its fewest.
        for sizes in ((1, 1), (1, 1), (3, 3), (3, 3), (1, 1), (3, 3)):
            counted[0] = 0
            result = await gql(client, tenant, document % sizes)
            assert "errors" not in result, result
            edges = result["data"][camel(parent.plural)]["edges"]
            assert len(edges) == sizes[0]
            assert all(len(e["node"][children]["edges"]) == sizes[1] for e in edges)
            found[sizes] = min(found.get(sizes, counted[0]), counted[0])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert found[(3, 3)] == found[(1, 1)], found
