"""OpenTelemetry tracing: off unless the standard OTEL_* variables ask for it.

On when `OTEL_TRACES_EXPORTER` names an exporter (`otlp` or `console`) or an OTLP endpoint is
set (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); the SDK reads the rest
(service name, headers, sampling) from the same variables. Spans: one per request, named by
route template, and one per SQL statement (parameterised SQL only: values travel as bind
parameters and are never recorded). Query strings are dropped from the request span, since a
search or a phone lookup carries customer data in them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.types import ASGIApp, Middleware, Receive, Scope, Send
from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span

from backend.db.session import Database

_URL_ATTRIBUTES = ("http.url", "http.target", "url.full", "url.query")


def tracing_requested(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _exporter(env: Mapping[str, str]) -> SpanExporter:
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _span_name(scope: Any) -> tuple[str, dict[str, str]]:
    """The name at the start, before routing: the method only (a raw path holds ids)."""
    return str(scope.get("method", "HTTP")), {}


def _drop_url(span: Span, scope: Any) -> None:
    if span.is_recording():
        for attribute in _URL_ATTRIBUTES:
            span.set_attribute(attribute, "")


def _name_by_route(app: ASGIApp) -> ASGIApp:
    """After routing: name the request's span by its route template."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        span = trace.get_current_span()
        route = scope.get("path_template")
        if route and span.is_recording():
            span.update_name(f"{scope.get('method', '')} {route}".strip())
            span.set_attribute("http.route", route)
            for attribute in _URL_ATTRIBUTES:
                span.set_attribute(attribute, route)
        await app(scope, receive, send)

    return middleware


def tracing_middleware(
    db: Database, provider: TracerProvider | None = None, env: Mapping[str, str] | None = None
) -> list[Middleware]:
    """The middleware tracing requests, with this process's SQL traced too; none when tracing
    is off. `provider`: a provider of the caller's (tests); else one from OTEL_*. Litestar
    runs OpenTelemetry's middleware outside its router (so routing failures are traced too);
    a second one, inside, names each span by its route template once it is known."""
    env = os.environ if env is None else env
    if provider is None:
        if not tracing_requested(env):
            return []
        provider = TracerProvider(
            resource=Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "caravan")})
        )
        provider.add_span_processor(BatchSpanProcessor(_exporter(env)))
    # The instrumentation declares SQLAlchemy < 2.1; its engine events work on 2.1 (the
    # tracing test proves it), so its version check is skipped rather than tracing nothing.
    SQLAlchemyInstrumentor().instrument(
        engine=db.engine.sync_engine,
        tracer_provider=provider,
        enable_commenter=False,
        skip_dep_check=True,
    )
    config = OpenTelemetryConfig(
        tracer_provider=provider,
        scope_span_details_extractor=_span_name,
        server_request_hook_handler=_drop_url,
        exclude=["/metrics", "/health", "/ready"],
    )
    return [config.middleware, _name_by_route]
