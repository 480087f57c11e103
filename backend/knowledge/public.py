"""Web self-service article search: no sign-in, one tenant by its slug, published public
articles only (id, title, body, tags, language: nothing about authors or other articles).

Rate limited per source address with the sign-in throttle's database counters
(backend/auth/throttle.py, shared by every server process): each search counts; past
`PUBLIC_SEARCH.free_failures` searches in its window (a minute), the address waits (doubling)
and gets 429 with Retry-After.
"""

from __future__ import annotations

from typing import Any

from backend.auth.throttle import Key, Policy, Throttle
from backend.db.session import Database
from backend.knowledge.articles import articles
from backend.knowledge.search import check_query, public_visible, ranked
from backend.tenants.lookup import tenant_id_for_slug

PUBLIC_SEARCH = Policy(
    free_failures=60, first_delay_seconds=5, max_delay_seconds=300, window_seconds=60
)
PUBLIC_RESULTS = 10
_COLUMNS = (
    articles.c.id,
    articles.c.title,
    articles.c.body,
    articles.c.tags,
    articles.c.language,
)


class NoSuchTenant(Exception):
    """Answered exactly like an unknown path."""


async def public_search(
    db: Database, slug: str, q: str | None, source_ip: str | None
) -> list[dict[str, Any]]:
    keys = [Key.of("public_articles", source_ip or "unknown", PUBLIC_SEARCH)]
    throttle = Throttle(db)
    # Every search counts, then a blocked source gets 429 before any work (or any hint
    # about the slug): the first `free_failures` searches of a window pass.
    await throttle.failed(keys)
    await throttle.check(keys)
    query = check_query(q)
    tenant_id = await tenant_id_for_slug(db, slug)
    if tenant_id is None:
        raise NoSuchTenant(slug)
    if not query:
        return []
    async with db.tenant_transaction(tenant_id) as conn:
        return await ranked(conn, tenant_id, query, public_visible(), PUBLIC_RESULTS, _COLUMNS)
