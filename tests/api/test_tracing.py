"""OpenTelemetry: off by default; when on, one span per request named by route template (never
the raw path, never the query string) with the SQL statements as child spans."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from backend.api.tracing import tracing_middleware, tracing_requested
from backend.app import create_app
from backend.runtime import Services, build_services
from tests.conftest import new_tenant


def test_tracing_is_off_unless_otel_variables_ask_for_it() -> None:
    assert not tracing_requested({})
    assert not tracing_requested({"OTEL_TRACES_EXPORTER": "none"})
    assert tracing_requested({"OTEL_TRACES_EXPORTER": "console"})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})


async def test_off_by_default_adds_no_plugin(services: Services) -> None:
    assert tracing_middleware(services.db, env={}) == []


async def test_a_request_is_one_span_by_route_with_its_sql_beneath(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "tracing")
    made = await client.post(
        "/api/v1/contacts",
        headers=admin.headers,
        json={"last_name": "Traced", "email": "t@x.example"},
    )
    record_id = made.json()["id"]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # Its own engine: the instrumented one is disposed with it, the suite's stays untraced.
    own = build_services(services.settings, services.db.engine.url.render_as_string(False))
    try:
        app = create_app(dataclasses.replace(services, db=own.db), tracer_provider=provider)
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as traced:
            got = await traced.get(
                f"/api/v1/contacts/{record_id}?fields=last_name", headers=admin.headers
            )
            assert got.status_code == 200, got.text
    finally:
        await own.db.dispose()
    spans = exporter.get_finished_spans()
    (request,) = [s for s in spans if s.parent is None]
    assert request.name.startswith("GET /api/v1/contacts/{")
    attributes: dict[str, Any] = dict(request.attributes or {})
    assert record_id not in str(attributes) and "fields=" not in str(attributes)
    sql = [s for s in spans if s.attributes and "db.statement" in s.attributes]
    assert sql, [s.name for s in spans]
    assert all(s.context.trace_id == request.context.trace_id for s in sql)
    assert not any("t@x.example" in str(s.attributes) for s in spans)
