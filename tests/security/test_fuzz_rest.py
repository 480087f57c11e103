"""Property-based fuzzing of every REST operation in the OpenAPI document (schemathesis).

Signed in as a tenant admin (so authenticated routes are reached past the token check) and
without a token. The default run is bounded (a few cases per operation); the `slow` run goes
deeper. See fuzz_rest.py for what is checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import schemathesis
from schemathesis import CheckContext
from schemathesis.checks import run_checks_for

from tests.conftest import Cluster
from tests.security.fuzz_helpers import AppThread, FuzzTally, fresh_tenant_token
from tests.security.fuzz_rest import (
    errors_are_problems,
    fuzz_operation,
    load_openapi,
    no_stack_trace,
    operations,
    run_workflows,
)

FAST_SIGNED_IN = 5
FAST_ANONYMOUS = 2
SLOW_SIGNED_IN = 30
WORKFLOWS = 40
RECORD_ROUTES = r"^/api/v1/(accounts|contacts|opportunities|activities)(/|$)"


@pytest.fixture(scope="module")
def fuzz_app(cluster: Cluster) -> Iterator[AppThread]:
    app = AppThread(cluster)
    try:
        yield app
    finally:
        app.close()


def _fuzz(
    name: str, app: AppThread, headers: dict[str, str], examples: int, derandomize: bool
) -> FuzzTally:
    schema = load_openapi(app)
    tally = FuzzTally()
    for operation in operations(schema):
        fuzz_operation(
            app, operation, headers, tally, max_examples=examples, derandomize=derandomize
        )
    tally.publish(name)
    return tally


def test_rest_fuzz_signed_in(fuzz_app: AppThread) -> None:
    token = fresh_tenant_token(fuzz_app, "fuzz")
    tally = _fuzz(
        "rest_signed_in", fuzz_app, {"Authorization": f"Bearer {token}"}, FAST_SIGNED_IN, True
    )
    assert tally.cases > 100 * FAST_SIGNED_IN // 2
    assert not tally.failures, tally.report()


def test_rest_fuzz_anonymous(fuzz_app: AppThread) -> None:
    tally = _fuzz("rest_anonymous", fuzz_app, {}, FAST_ANONYMOUS, True)
    assert tally.cases > 100 * FAST_ANONYMOUS // 2
    # Without a token, no API route answers anything but an error (the export download link
    # carries its own token in the path).
    let_through = {
        where: codes
        for where, codes in tally.statuses.items()
        if " /api/v1/" in where
        and "/exports/download/" not in where
        and any(code < 400 for code in codes)
    }
    assert not let_through, let_through
    assert not tally.failures, tally.report()


def test_rest_record_workflows(fuzz_app: AppThread) -> None:
    """Create -> get -> patch -> delete (and history, revert) chains on the four record types."""
    token = fresh_tenant_token(fuzz_app, "flow")
    tally = FuzzTally()
    headers = {"Authorization": f"Bearer {token}"}
    # Valid input only, so that creates succeed and the chains go on to the item routes.
    schema = load_openapi(fuzz_app, mode="positive").include(path_regex=RECORD_ROUTES)
    ran = run_workflows(
        fuzz_app, schema, headers, tally, scenarios=WORKFLOWS, steps=10, derandomize=True
    )
    tally.publish("rest_workflows")
    assert ran >= WORKFLOWS
    # The chains reached records created before them (a 2xx on an item route: random ids only
    # ever get 404s).
    assert any(
        w.endswith("/{record_id}") and codes & {200, 204} for w, codes in tally.statuses.items()
    ), tally.statuses
    assert not tally.failures, tally.report()


@pytest.mark.slow
def test_rest_workflows_deep(fuzz_app: AppThread) -> None:
    """Longer workflows over every operation (roles, teams, clients, exports, sync...)."""
    token = fresh_tenant_token(fuzz_app, "flowdeep")
    tally = FuzzTally()
    headers = {"Authorization": f"Bearer {token}"}
    schema = load_openapi(fuzz_app, mode="positive")
    run_workflows(fuzz_app, schema, headers, tally, scenarios=100, steps=20, derandomize=False)
    tally.publish("rest_workflows_deep")
    assert not tally.failures, tally.report()


@pytest.mark.slow
def test_rest_fuzz_signed_in_deep(fuzz_app: AppThread) -> None:
    token = fresh_tenant_token(fuzz_app, "fuzzdeep")
    tally = _fuzz(
        "rest_deep", fuzz_app, {"Authorization": f"Bearer {token}"}, SLOW_SIGNED_IN, False
    )
    assert not tally.failures, tally.report()


def test_the_checks_catch_what_they_are_for(fuzz_app: AppThread) -> None:
    """The custom checks fail on the answers they exist to refuse (a fuzzer whose checks never
    fire would report 0 failures for nothing)."""
    operation = load_openapi(fuzz_app)["/api/v1/accounts"]["GET"]
    case = operation.Case()
    request = httpx.Request("GET", "http://testserver/api/v1/accounts")

    def answer(status: int, content_type: str, body: str) -> schemathesis.Response:
        headers = {"content-type": content_type}
        response = httpx.Response(status, headers=headers, text=body, request=request)
        response.elapsed = timedelta(milliseconds=1)  # as after a real exchange
        return schemathesis.Response.from_any(response)

    ctx = CheckContext(
        override=None, auth=None, headers=None, config=operation.schema.config.checks_config_for(),
        transport_kwargs=None, response_checks=run_checks_for(operation.schema).for_responses(),
    )  # fmt: skip
    problem = '{"type": "about:blank", "status": 404, "code": "not_found"}'
    assert errors_are_problems(ctx, answer(404, "application/problem+json", problem), case) is None
    with pytest.raises(AssertionError, match="text/plain"):
        errors_are_problems(ctx, answer(404, "text/plain", "not found"), case)
    with pytest.raises(AssertionError, match="without a `code`"):
        errors_are_problems(ctx, answer(400, "application/problem+json", "{}"), case)
    trace = 'Traceback (most recent call last):\n  File "/app/x.py", line 1'
    with pytest.raises(AssertionError, match="Traceback"):
        no_stack_trace(ctx, answer(500, "text/plain", trace), case)
    assert no_stack_trace(ctx, answer(200, "application/json", "{}"), case) is None
