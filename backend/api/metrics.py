"""Prometheus metrics at /metrics: request rate, latency and errors by route template (never
by raw path: ids would explode the series), the database pool, and the process itself.

Who may scrape: a caller presenting `CARAVAN_METRICS_TOKEN` as a bearer token when one is
configured; otherwise loopback callers only — and nobody behind a trusted proxy without a
token, since there every caller arrives from the proxy's (often loopback) address.
"""

from __future__ import annotations

import hmac
import ipaddress

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest
from sqlalchemy.pool import QueuePool

from backend.db.session import Database
from backend.errors import Forbidden, Unauthenticated
from backend.runtime import Services

PATH = "/metrics"

# Request metrics by route template (`/api/v1/contacts/{record_id:uuid}`), method and status.
REQUESTS = PrometheusConfig(
    app_name="caravan",
    prefix="caravan",
    group_path=True,
    exclude=[PATH],
    exclude_unhandled_paths=True,
)

_POOL_IN_USE = Gauge(
    "caravan_db_pool_connections_in_use", "Database connections checked out of the pool now"
)
_POOL_OPEN = Gauge(
    "caravan_db_pool_connections_open", "Database connections the pool holds open now"
)


def watch_pool(db: Database) -> None:
    """Report this process's pool (read at scrape time, nothing counted per request)."""
    pool = db.engine.sync_engine.pool
    if isinstance(pool, QueuePool):
        _POOL_IN_USE.set_function(lambda: float(pool.checkedout()))
        _POOL_OPEN.set_function(lambda: float(pool.checkedin() + pool.checkedout()))


def _may_scrape(request: Request[object, object, State], services: Services) -> None:
    token = services.settings.metrics_token
    if token is not None:
        presented = request.headers.get("authorization", "")
        if not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
            raise Unauthenticated("metrics need the metrics bearer token", code="metrics_token")
        return
    if services.settings.trust_proxy:
        raise Forbidden(
            "behind a proxy, metrics need CARAVAN_METRICS_TOKEN", code="metrics_forbidden"
        )
    host = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise Forbidden("metrics answer loopback callers only", code="metrics_forbidden")


@get(PATH, include_in_schema=False, sync_to_thread=False)
def metrics(request: Request[object, object, State], state: State) -> Response[bytes]:
    _may_scrape(request, state.services)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
