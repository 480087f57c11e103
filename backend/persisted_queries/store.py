"""The shared half of the persisted-query store (backend/api/gql/persisted.py keeps a bounded
per-process cache in front of it).

A document is content-addressed (its hash is its name), so a copy cached by any process is
never stale; only "which hashes does this tenant know" must be shared: registering writes the
row, and a hash a process has not cached is looked up here before answering
PersistedQueryNotFound. Each tenant keeps at most MAX_PER_TENANT documents and
MAX_TENANT_CHARS characters; the oldest registrations go first.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert

from backend.api.gql.persisted import (
    MAX_PER_TENANT,
    MAX_TENANT_CHARS,
    PersistedQueries,
    PersistedQueryNotFound,
    requested_hash,
)
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import Database
from backend.persisted_queries.models import PersistedQuery

_rows = table_of(PersistedQuery)

# The tenant's rows past either bound, newest first (ids are UUIDv7: time-ordered).
_PRUNE = text(
    """
    DELETE FROM persisted_queries WHERE tenant_id = :tenant AND id IN (
        SELECT id FROM (
            SELECT id,
                   row_number() OVER newest AS n,
                   sum(length(document)) OVER newest AS chars
            FROM persisted_queries WHERE tenant_id = :tenant
            WINDOW newest AS (ORDER BY id DESC)
        ) ranked WHERE n > :max_count OR chars > :max_chars
    )
    """
)


async def find(db: Database, tenant: uuid.UUID, digest: str) -> str | None:
    async with db.tenant_transaction(tenant) as conn:
        found = await conn.execute(
            select(_rows.c.document).where(_rows.c.tenant_id == tenant, _rows.c.sha256 == digest)
        )
        document: str | None = found.scalar_one_or_none()
        return document


async def register(db: Database, tenant: uuid.UUID, digest: str, document: str) -> None:
    async with db.tenant_transaction(tenant) as conn:
        added = await conn.execute(
            insert(_rows)
            .values(id=uuid7(), tenant_id=tenant, sha256=digest, document=document)
            .on_conflict_do_nothing(index_elements=["tenant_id", "sha256"])
            .returning(_rows.c.id)
        )
        if added.first() is not None:
            await conn.execute(
                _PRUNE,
                {"tenant": tenant, "max_count": MAX_PER_TENANT, "max_chars": MAX_TENANT_CHARS},
            )


async def resolve(
    cache: PersistedQueries,
    db: Database,
    query: str | None,
    extensions: dict[str, Any] | None,
    tenant: uuid.UUID | None,
) -> str | None:
    """`PersistedQueries.resolve`, shared across processes: a new registration is written to
    PostgreSQL, and a hash this process has not cached is looked up there."""
    digest = requested_hash(extensions)
    fresh = (
        tenant is not None
        and digest is not None
        and query is not None
        and not cache.knows(tenant, digest)
    )
    try:
        document = cache.resolve(query, extensions, tenant)
    except PersistedQueryNotFound:
        assert tenant is not None and digest is not None
        found = await find(db, tenant, digest)
        if found is None:
            raise
        cache.remember(tenant, digest, found)
        return found
    if fresh and document is not None and cache.registrable(digest or "", document):
        assert tenant is not None and digest is not None
        await register(db, tenant, digest, document)
    return document
