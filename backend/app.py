"""create_app(): plugins and routers only."""

from __future__ import annotations

from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from opentelemetry.sdk.trace import TracerProvider

from backend.api.boundary import BoundaryMiddleware
from backend.api.hygiene import security_headers_hook
from backend.api.idempotency import IdempotencyMiddleware
from backend.api.metrics import REQUESTS, metrics, watch_pool
from backend.api.rest.openapi_errors import ErrorDocs
from backend.api.rest.problems import EXCEPTION_HANDLERS
from backend.api.rest.routes import rest_handlers
from backend.api.rest.swagger import LocalSwaggerPlugin
from backend.api.tracing import tracing_middleware
from backend.runtime import Services

MAX_BODY_BYTES = 1_000_000


def create_app(services: Services, tracer_provider: TracerProvider | None = None) -> Litestar:
    """The app over `services`; traced when OTEL_* asks for it (or into `tracer_provider`)."""
    from backend.api.gql.controller import graphql_controller
    from backend.history.checkpoints import default_store
    from backend.history.scheduler import AuditScheduler

    audit = AuditScheduler(
        services.db,
        services.keys,
        default_store(services.settings.data_dir),
        seal_interval=services.settings.seal_interval_seconds,
        checkpoint_interval=services.settings.checkpoint_interval_seconds,
    )

    from backend.crm.cases.scheduler import SlaScheduler

    sla = SlaScheduler(services.db, services.settings.sla_check_interval_seconds)
    # The policy-version listener first: until it listens, transactions read the version.
    startup = [services.db.policy_versions.start, audit.start, sla.start]
    shutdown = [audit.stop, sla.stop]
    shutdown.append(services.imports.stop)  # background CSV imports: marked interrupted
    if services.tokens.revocations is not None:  # hear other processes' revocations at once
        startup.append(services.tokens.revocations.start)
        shutdown.append(services.tokens.revocations.stop)
    if services.backups is not None:
        from backend.backups.scheduler import BackupScheduler

        backups = BackupScheduler(
            services.backups,
            services.settings.backup_interval_seconds,
            tenants=services.settings.backup_tenants,
        )
        startup.append(backups.start)
        shutdown.append(backups.stop)

    watch_pool(services.db)
    traced = tracing_middleware(services.db, tracer_provider)

    async def close_database() -> None:
        await services.db.dispose()

    return Litestar(
        route_handlers=[*rest_handlers(), graphql_controller(), metrics],
        state=State({"services": services}),
        exception_handlers=EXCEPTION_HANDLERS,
        # Strings PostgreSQL cannot store, repeated JSON keys and non-JSON bodies are refused
        # first (backend/api/boundary.py); retried POSTs (Idempotency-Key) get the first
        # answer (backend/api/idempotency.py).
        middleware=[
            *traced,  # OpenTelemetry, when OTEL_* asks for it
            REQUESTS.middleware,  # request rate, latency, errors by route template: /metrics
            BoundaryMiddleware,
            DefineMiddleware(IdempotencyMiddleware, services=services),
        ],
        before_send=[security_headers_hook(trust_proxy=services.settings.trust_proxy)],
        on_startup=startup,
        on_shutdown=[*shutdown, close_database],
        # Brotli for clients that accept it (phones on thin links), gzip for the rest.
        compression_config=CompressionConfig(
            backend="brotli", brotli_gzip_fallback=True, minimum_size=1024
        ),
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="Caravan CRM",
            version="1.0.0",
            path="/schema",
            render_plugins=[LocalSwaggerPlugin()],
        ),
        # Every operation's error answers (problem+json) in that document.
        plugins=[ErrorDocs()],
        debug=False,
    )
