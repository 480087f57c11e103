"""Fuzzing the REST API from its own OpenAPI document with schemathesis, in-process.

Every case schemathesis generates (valid and invalid) is sent through the real app
(fuzz_helpers.AppThread) and its answer checked: no 5xx, no stack trace, every error an
`application/problem+json` with a `code`, and the answer as the document describes it (status,
content type, body schema). Failures are collected, not raised at the first one, so that one run
lists every distinct (route, failure) pair.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx
import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from schemathesis import BaseSchema, CheckContext, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.fuzz_helpers import (
    STACK_TRACE_MARKERS,
    AnyCase,
    AppThread,
    FuzzTally,
    Operation,
    httpx_kwargs,
    operations_of,
)

BASE_URL = "http://testserver"
PROBLEM_JSON = "application/problem+json"
# OAuth 2.0 protocol endpoints answer errors as RFC 6749 section 5.2 and RFC 6750 section 3.1
# require (application/json with an `error` member), which is what OAuth client libraries read;
# they are checked for that. The authorization endpoint is a page in the user's browser: its
# errors are HTML pages (RFC 6749 section 4.1.2.1 forbids redirecting to an unchecked client).
OAUTH_PROTOCOL = ("/oauth/token", "/oauth/revoke", "/oauth/introspect", "/oauth/userinfo")
BROWSER_PAGES = ("/oauth/authorize",)
CONFORMANCE = ("status_code_conformance", "content_type_conformance", "response_schema_conformance")


@schemathesis.check
def no_stack_trace(
    ctx: CheckContext, response: schemathesis.Response, case: AnyCase
) -> bool | None:
    """No answer shows the server's insides."""
    text = response.text_lossy()
    for marker in STACK_TRACE_MARKERS:
        if marker in text:
            raise AssertionError(f"the body carries {marker!r}")
    return None


@schemathesis.check
def errors_are_problems(
    ctx: CheckContext, response: schemathesis.Response, case: AnyCase
) -> bool | None:
    """Every REST error is application/problem+json with a machine-readable `code`."""
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    try:
        body: Any = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    path = case.operation.path
    if path in OAUTH_PROTOCOL:
        if content_type != "application/json" or not isinstance(body, dict) or "error" not in body:
            raise AssertionError(f"OAuth error is {content_type!r}, not RFC 6749 JSON")
        return None
    if path in BROWSER_PAGES and content_type == "text/html":
        return None
    if content_type != PROBLEM_JSON:
        raise AssertionError(f"{response.status_code} answered as {content_type!r}")
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        raise AssertionError(f"{response.status_code} problem without a `code`")
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    no_stack_trace,
    errors_are_problems,
]


def load_openapi(app: AppThread, *, mode: str = "all") -> BaseSchema:
    """The app's own OpenAPI document; `mode="positive"` generates only valid input."""
    response = app.request("GET", "/schema/openapi.json")
    assert response.status_code == 200, response.text
    config = schemathesis.Config.from_dict({"generation": {"mode": mode}})
    document = record_links(closed_request_bodies(response.json()))
    schema = schemathesis.openapi.from_dict(document, config=config)
    # The GraphQL endpoint is fuzzed from its own schema (test_fuzz_graphql.py).
    return schema.exclude(path="/graphql")


def closed_request_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """The document with `additionalProperties: false` on every object a request body uses.

    The app refuses unknown fields in a body (400 unknown_field), but the generated document
    does not say so, and schemathesis would then add random extra keys to nearly every "valid"
    body, so that creates and updates would hardly ever reach the handlers. (A finding of this
    fuzzer: the document should say it itself.)"""
    components = document.get("components", {}).get("schemas", {})
    seen: set[str] = set()

    def close(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                close(item)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in seen and name in components:
                seen.add(name)
                close(components[name])
            return
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            close(value)

    for item in document.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                close(operation["requestBody"])
    return document


def record_links(document: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI links from each create (201) to the get, patch, delete and history of the record
    it made, carrying its id and its ETag as If-Match, so that workflows chain
    create -> get -> patch -> delete on real records."""
    paths = document.get("paths", {})
    for path, item in paths.items():
        created = item.get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        for sub, sub_item in paths.items():
            head, _, param = sub.rpartition("/")
            if head != path or not (param.startswith("{") and param.endswith("}")):
                continue
            name = param[1:-1]
            links = created.setdefault("links", {})
            for method in ("get", "patch", "delete"):
                target = sub_item.get(method)
                if target is None or "operationId" not in target:
                    continue
                parameters = {name: "$response.body#/id"}
                if any(p.get("name") == "If-Match" for p in target.get("parameters", [])):
                    parameters["header.If-Match"] = "$response.header.ETag"
                links[f"{method}_{name}"] = {
                    "operationId": target["operationId"],
                    "parameters": parameters,
                }
    return document


def operations(schema: BaseSchema) -> list[Operation]:
    return operations_of(schema)


def _short(failure: Failure) -> str:
    first = failure.message.strip().splitlines()[0] if failure.message.strip() else ""
    return f"{failure.title}: {first}"[:300]


def send_and_check(
    app: AppThread, case: AnyCase, headers: dict[str, str], tally: FuzzTally
) -> httpx.Response | None:
    """Send one case through the app, check the answer, and tally what went wrong."""
    assert app.client is not None
    try:
        kwargs = httpx_kwargs(case.as_transport_kwargs(base_url=BASE_URL, headers=headers))
        request = app.client.build_request(**kwargs)
    except (httpx.InvalidURL, UnicodeEncodeError, TypeError, ValueError):
        hypothesis.reject()  # not sendable over HTTP at all (e.g. a header httpx refuses)
    tally.cases += 1
    where = f"{case.method.upper()} {case.operation.path}"
    try:
        response = app.run(app.client.send(request))
    except Exception as exc:  # noqa: BLE001 - an exception out of the app is a server error
        tally.server_errors += 1
        tally.record(where, f"exception {type(exc).__name__}: {exc}"[:300], case.as_curl_command())
        return None
    tally.statuses[where].add(response.status_code)
    if response.status_code >= 500:
        tally.server_errors += 1
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except FailureGroup as group:
        names = {check for failure in group.exceptions for check in failure.checks}
        if names & set(CONFORMANCE) or any(
            f.title.endswith("conformance") for f in group.exceptions
        ):
            tally.nonconforming += 1
        curl = case.as_curl_command()
        for failure in group.exceptions:
            tally.record(where, f"[{response.status_code}] {_short(failure)}", curl)
    except AssertionError as exc:
        tally.record(where, f"[{response.status_code}] {exc}"[:300], case.as_curl_command())
    return response


def fuzz_operation(
    app: AppThread,
    operation: Operation,
    headers: dict[str, str],
    tally: FuzzTally,
    *,
    max_examples: int,
    derandomize: bool,
) -> None:
    """Up to `max_examples` cases for one operation: valid ones, invalid ones (schemathesis's
    negative mode) and valid ones with one value made hostile."""
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        hostile_cases(operation),
    )

    @hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=hypothesis.Verbosity.quiet,
    )
    @hypothesis.given(case=strategy)
    def run(case: AnyCase) -> None:
        send_and_check(app, case, headers, tally)

    run()


# Values that have broken web backends before: what PostgreSQL cannot store (NUL, lone
# surrogates), sizes past any column or integer range, and characters that change meaning
# downstream (formula, path, SQL, bidi override).
HOSTILE_STRINGS = (
    "\x00",
    "a\x00b",
    "\ud800",
    "\uffff",
    "\u202egnp.exe",
    "=cmd|' /C calc'!A0",
    "' OR '1'='1' --",
    "../../../../etc/passwd",
    "%00%ff",
    "x" * 300,
    "y" * 70_000,
    "2147483648",
    "-9223372036854775809",
    "1e309",
    "NaN",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999+14:00",
    "00000000-0000-0000-0000-000000000000",
)
HOSTILE_NUMBERS = (2**31, 2**63, -(2**63) - 1, 10**30, -1, 0, 1e308, -0.0)

Leaf = tuple[str, tuple[Any, ...]]  # (where: "query" / "body" / "path", key path inside it)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, (*path, i))]
    return [(path, value)]


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@st.composite
def hostile_cases(draw: st.DrawFn, operation: Operation) -> AnyCase:
    """A valid case with one of its scalar values (query, path or body) made hostile."""
    case: AnyCase = draw(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    spots: list[tuple[str, tuple[Any, ...], Any]] = []
    for where in ("query", "path_parameters", "body"):
        container = getattr(case, where, None)
        if isinstance(container, dict | list):
            spots += [(where, path, v) for path, v in _leaves(container) if path]
    if not spots:
        return case
    where, path, old = draw(st.sampled_from(spots))
    pool: tuple[Any, ...] = HOSTILE_STRINGS
    if where == "body" and isinstance(old, int | float) and not isinstance(old, bool):
        pool = HOSTILE_NUMBERS + HOSTILE_STRINGS[:3]
    new = draw(st.sampled_from(pool))
    if where == "path_parameters" and isinstance(new, str) and "\x00" not in new:
        new = new[:2000]  # a path stays a sendable URL
    setattr(case, where, _replace(getattr(case, where), path, new))
    return case


def run_workflows(
    app: AppThread,
    schema: BaseSchema,
    headers: dict[str, str],
    tally: FuzzTally,
    *,
    scenarios: int,
    steps: int,
    derandomize: bool,
) -> int:
    """Stateful fuzzing: schemathesis chains calls along the links it infers from the document
    (create -> get -> patch -> delete, a list's ids into the item routes, ...), so that cases
    reach real records of the tenant and not only 404s. Returns the scenarios run."""
    base = schema.as_state_machine()
    started = 0

    class Workflow(base):  # type: ignore[valid-type,misc]
        def setup(self) -> None:
            nonlocal started
            started += 1

        def call(self, case: AnyCase, **kwargs: Any) -> schemathesis.Response:
            response = send_and_check(app, case, headers, tally)
            if response is None:  # already recorded as a server error
                hypothesis.reject()
            return schemathesis.Response.from_any(response)

        def validate_response(
            self, response: Any, case: AnyCase, *args: Any, **kwargs: Any
        ) -> None:
            """Checked (and failures collected) in `call`."""

    settings = hypothesis.settings(
        max_examples=scenarios,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        derandomize=derandomize,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=hypothesis.Verbosity.quiet,
    )
    for _ in range(5):
        # The server's state is not Hypothesis's to replay: the same choices give other
        # answers once records exist (schemathesis's own runner ends a suite the same way).
        with contextlib.suppress(Flaky):
            Workflow.run(settings=settings)
        if started >= scenarios:
            break
    return started
