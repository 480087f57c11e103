"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.datastructures import State

from backend.runtime import Services


@get("/health", tags=["ops"], summary="The process is up")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready", tags=["ops"], summary="The database is reachable and migrated")
async def ready(state: State) -> Response[dict[str, Any]]:
    # Imported here: Alembic is only needed for this check, not on every start-up path.
    from backend.db.migrate import current_revisions, head_revisions

    services: Services = state.services
    try:
        async with services.db.plain_transaction() as conn:
            current = await current_revisions(conn)
    except Exception:  # noqa: BLE001 - any failure to reach the database means "not ready"
        return Response({"status": "unavailable", "database": "unreachable"}, status_code=503)
    heads = head_revisions()
    if current != heads:
        return Response(
            {
                "status": "unavailable",
                "database": "not migrated",
                "revision": sorted(current),
                "head": sorted(heads),
            },
            status_code=503,
        )
    return Response({"status": "ready", "revision": ",".join(sorted(current))})
