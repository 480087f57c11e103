"""Property-based fuzzing of the GraphQL endpoint from the app's own schema (schemathesis, which
generates documents with hypothesis-graphql): every query and mutation field, signed in as a
tenant admin and without a token.

Checked on every answer: no 5xx, a JSON body with `data` or `errors`, every error with an
`extensions.code` and none of them INTERNAL_SERVER_ERROR (the masked form of an unhandled
exception: a GraphQL server error arrives with status 200), and no stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from graphql import StringValueNode, Visitor, parse, print_ast, visit
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.graphql import nodes

from backend.api.gql.schema import schema as strawberry_schema
from tests.conftest import Cluster
from tests.security.fuzz_helpers import (
    STACK_TRACE_MARKERS,
    AnyCase,
    AppThread,
    FuzzTally,
    Operation,
    fresh_tenant_token,
    operations_of,
)
from tests.security.fuzz_rest import HOSTILE_STRINGS

FAST_EXAMPLES = 4
SLOW_EXAMPLES = 30

# Strawberry's scalars beyond the built-in ones: valid and invalid literals for each.
_SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "Date": st.one_of(st.dates().map(str), st.text(max_size=12)),
    "DateTime": st.one_of(st.datetimes().map(lambda d: d.isoformat() + "Z"), st.text(max_size=30)),
    "Decimal": st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False).map(str), st.text(max_size=12)
    ),
}
for _name, _strategy in _SCALARS.items():
    schemathesis.graphql.scalar(_name, _strategy.map(nodes.String))
schemathesis.graphql.scalar(
    "JSON",
    st.one_of(
        st.text(max_size=20).map(nodes.String),
        st.integers().map(nodes.Int),
        st.booleans().map(nodes.Boolean),
        st.just(nodes.Null),
    ),
)


@pytest.fixture(scope="module")
def fuzz_app(cluster: Cluster) -> Iterator[AppThread]:
    app = AppThread(cluster)
    try:
        yield app
    finally:
        app.close()


def with_hostile_string(document: str, pick: int, value: str) -> str:
    """The document with its `pick`-th string literal (modulo their number) replaced."""
    tree = parse(document)
    seen = 0

    class Count(Visitor):
        def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
            nonlocal seen
            seen += 1

    visit(tree, Count())
    if not seen:
        return document
    target, index = pick % seen, -1

    class Replace(Visitor):
        def enter_string_value(self, node: StringValueNode, *_: Any) -> StringValueNode | None:
            nonlocal index
            index += 1
            return StringValueNode(value=value) if index == target else None

    return print_ast(visit(tree, Replace()))


@st.composite
def hostile_documents(draw: st.DrawFn, operation: Operation) -> AnyCase:
    """A generated document with one string literal made hostile (see HOSTILE_STRINGS)."""
    case: AnyCase = draw(operation.as_strategy())
    if isinstance(case.body, str):
        pick = draw(st.integers(min_value=0, max_value=50))
        case.body = with_hostile_string(case.body, pick, draw(st.sampled_from(HOSTILE_STRINGS)))
    return case


def graphql_problems(status: int, text: str) -> list[str]:
    """What is wrong with one GraphQL answer (nothing: an empty list)."""
    problems = [f"the body carries {m!r}" for m in STACK_TRACE_MARKERS if m in text]
    if status >= 500:
        problems.append(f"status {status}")
    try:
        body = json.loads(text)
    except ValueError:
        return [*problems, f"status {status} with a body that is not JSON"]
    if not isinstance(body, dict) or not ({"data", "errors"} & body.keys()):
        return [*problems, f"status {status}: neither data nor errors"]
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code is None:
            problems.append(f"an error without extensions.code: {error.get('message')!r}")
        elif code == "INTERNAL_SERVER_ERROR":
            problems.append(f"INTERNAL_SERVER_ERROR at {error.get('path')}")
    return problems


def fuzz_field(
    app: AppThread,
    operation: Operation,
    headers: dict[str, str],
    tally: FuzzTally,
    *,
    max_examples: int,
    derandomize: bool,
) -> None:
    @hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=hypothesis.Verbosity.quiet,
    )
    @hypothesis.given(case=st.one_of(operation.as_strategy(), hostile_documents(operation)))
    def run(case: AnyCase) -> None:
        tally.cases += 1
        # ASCII-escaped JSON, so that a lone surrogate reaches the server as `\ud800`.
        body = json.dumps({"query": case.body}).encode()
        sent = {**headers, "Content-Type": "application/json"}
        try:
            response = app.request("POST", "/graphql", content=body, headers=sent)
        except Exception as exc:  # noqa: BLE001 - an exception out of the app itself
            tally.server_errors += 1
            tally.record(
                operation.label, f"exception {type(exc).__name__}: {exc}"[:300], str(case.body)
            )
            return
        problems = graphql_problems(response.status_code, response.text)
        if response.status_code >= 500 or any("INTERNAL_SERVER_ERROR" in p for p in problems):
            tally.server_errors += 1
        if problems:
            tally.nonconforming += 1
        for problem in problems:
            tally.record(operation.label, problem, str(case.body))

    run()


def _fuzz(
    name: str, app: AppThread, headers: dict[str, str], examples: int, derandomize: bool
) -> FuzzTally:
    schema = schemathesis.graphql.from_file(str(strawberry_schema))
    tally = FuzzTally()
    fields = operations_of(schema)
    assert len(fields) > 50  # every query and mutation field
    for operation in fields:
        fuzz_field(app, operation, headers, tally, max_examples=examples, derandomize=derandomize)
    tally.publish(name)
    return tally


def test_graphql_fuzz_signed_in(fuzz_app: AppThread) -> None:
    token = fresh_tenant_token(fuzz_app, "gqlfuzz")
    tally = _fuzz(
        "graphql_signed_in", fuzz_app, {"Authorization": f"Bearer {token}"}, FAST_EXAMPLES, True
    )
    assert not tally.failures, tally.report()


def test_graphql_fuzz_anonymous(fuzz_app: AppThread) -> None:
    tally = _fuzz("graphql_anonymous", fuzz_app, {}, FAST_EXAMPLES // 2, True)
    assert not tally.failures, tally.report()


@pytest.mark.slow
def test_graphql_fuzz_signed_in_deep(fuzz_app: AppThread) -> None:
    token = fresh_tenant_token(fuzz_app, "gqldeep")
    tally = _fuzz(
        "graphql_deep", fuzz_app, {"Authorization": f"Bearer {token}"}, SLOW_EXAMPLES, False
    )
    assert not tally.failures, tally.report()


def test_graphql_checks_catch_a_masked_error() -> None:
    """The checks above would see a server error that GraphQL reports with status 200."""
    masked = {
        "data": None,
        "errors": [
            {
                "message": "Internal server error",
                "path": ["x"],
                "extensions": {"code": "INTERNAL_SERVER_ERROR"},
            }
        ],
    }
    assert graphql_problems(200, json.dumps(masked)) == ["INTERNAL_SERVER_ERROR at ['x']"]
    assert graphql_problems(200, 'Traceback (most recent call last):\n  File "x"') != []
    assert graphql_problems(400, "Bad request") == ["status 400 with a body that is not JSON"]
    assert graphql_problems(200, json.dumps({"data": {"x": 1}})) == []


def test_hostile_string_lands_in_the_document() -> None:
    document = with_hostile_string('{ a(x: "1", y: "2") { id } }', 1, "\x00")
    assert '"\\u0000"' in document and '"1"' in document
