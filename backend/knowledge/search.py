"""Ranked article search in PostgreSQL, for agents, for case suggestions and for the public.

Candidates: the generated `document` tsvector (title A, tags B, body C, stemmed in each
article's language) matching any query word as stemmed by any supported configuration (one
constant tsquery, so the GIN index serves it), or a query word close to a title word by
trigrams (pg_trgm `<%`, the title's GIN trigram index), which is what finds "pasword reset".

Score, best first: ts_rank_cd of the query stemmed in the article's own language (cover
density: words near each other count more), a bonus when every query word matches, and the
trigram closeness of the query's words to the title's words (typos, and title hits).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import ColumnElement, and_, desc, literal, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.errors import ValidationFailed
from backend.knowledge.access import KnowledgeAccess, knowledge_access
from backend.knowledge.articles import COLUMNS, articles, readable

MAX_QUERY = 200
MAX_SUGGESTION_TEXT = 1000
MAX_RESULTS = 50
DEFAULT_RESULTS = 20
# The stemmers a query is also stemmed with (the languages knowledge_regconfig knows best).
CONFIGS = ("english", "german", "french", "spanish", "italian", "portuguese", "dutch", "simple")
_WORD = re.compile(r"\w+", re.UNICODE)
# How close (pg_trgm word_similarity) a query word must be to a title word to count:
# "shipmnet" ~ "shipment" is 0.56, while unrelated words of 4+ letters stay far below.
FUZZY_THRESHOLD = 0.5
MIN_FUZZY_WORD = 4  # shorter words make trigram noise ("how", "my")
MAX_FUZZY_WORDS = 12

# All query words OR-ed: websearch syntax AND-s them; an article with most of them still counts.
_ANY_WORD = "replace(websearch_to_tsquery({cfg}, :q)::text, ' & ', ' | ')::tsquery"
_ROW_CFG = "knowledge_regconfig(kb_articles.language)"


def check_query(q: str | None) -> str:
    q = (q or "").strip()
    if len(q) > MAX_QUERY:
        raise ValidationFailed.one("q", "too_long", f"at most {MAX_QUERY} characters")
    return q


def _fuzzy_words(q: str) -> list[str]:
    words = [w.lower() for w in _WORD.findall(q) if len(w) >= MIN_FUZZY_WORD]
    return list(dict.fromkeys(words))[:MAX_FUZZY_WORDS]


def _score(words: list[str]) -> ColumnElement[Any]:
    row_any = _ANY_WORD.format(cfg=_ROW_CFG)
    fuzzy = (
        "coalesce((select sum(s) from (select word_similarity(w, kb_articles.title) s"
        " from unnest(cast(:words as text[])) w) x where s >= :fuzzy), 0)"
    )
    return text(
        f"(ts_rank_cd(kb_articles.document, {row_any})"
        f" + case when kb_articles.document @@ websearch_to_tsquery({_ROW_CFG}, :q)"
        " then 0.5 else 0 end"
        f" + 0.3 * {fuzzy})"
    ).bindparams(words=words, fuzzy=FUZZY_THRESHOLD)  # type: ignore[return-value]


def _candidates(words: list[str]) -> ColumnElement[bool]:
    any_config = " || ".join(_ANY_WORD.format(cfg=f"'{c}'::regconfig") for c in CONFIGS)
    stemmed = text(f"kb_articles.document @@ ({any_config})")
    close = [literal(w).op("<%")(articles.c.title) for w in words]
    return or_(stemmed, *close)


async def ranked(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    q: str,
    visible: ColumnElement[bool],
    limit: int,
    columns: tuple[Any, ...] = COLUMNS,
) -> list[dict[str, Any]]:
    """The visible articles of `tenant_id` best matching `q`, best first (ties: newest)."""
    if not q.strip():
        return []
    words = _fuzzy_words(q)
    score = _score(words)
    stmt = (
        select(*columns)
        .where(articles.c.tenant_id == tenant_id, visible, _candidates(words))
        .order_by(desc(score), articles.c.updated_at.desc(), articles.c.id)
        .limit(max(1, min(limit, MAX_RESULTS)))
    )
    # `<%` compares with this setting (default 0.6); transaction-local.
    await conn.execute(
        text("select set_config('pg_trgm.word_similarity_threshold', :t, true)"),
        {"t": str(FUZZY_THRESHOLD)},
    )
    rows = (await conn.execute(stmt, {"q": q})).mappings().all()
    return [dict(r) for r in rows]


async def search_articles(
    ctx: RequestContext, q: str | None, limit: int | None = None
) -> list[dict[str, Any]]:
    """`GET /api/v1/knowledge/articles?q=`: the articles the caller may read, best first; no
    query: the newest first."""
    query = check_query(q)
    wanted = DEFAULT_RESULTS if limit is None else limit
    if not 1 <= wanted <= MAX_RESULTS:
        raise ValidationFailed.one("limit", "out_of_range", f"between 1 and {MAX_RESULTS}")
    async with ctx.session.transaction() as conn:
        access = await knowledge_access(ctx, conn)
        if query:
            return await ranked(conn, ctx.tenant_id, query, readable(access), wanted)
        stmt = (
            select(*COLUMNS)
            .where(articles.c.tenant_id == ctx.tenant_id, readable(access))
            .order_by(articles.c.updated_at.desc(), articles.c.id)
            .limit(wanted)
        )
        return [dict(r) for r in (await conn.execute(stmt)).mappings()]


async def suggest_articles(
    ctx: RequestContext, tenant_id: uuid.UUID, case_text: str, limit: int = 5
) -> list[dict[str, Any]]:
    """The best articles for free text (a case's subject and description, joined by a
    newline), among those the caller may read: the same ranking as the search. For
    `GET /api/v1/cases/{id}/suggestions`. `tenant_id` must be the caller's."""
    if tenant_id != ctx.tenant_id:
        return []
    async with ctx.session.transaction() as conn:
        access: KnowledgeAccess = await knowledge_access(ctx, conn)
        # A long description ranks on its start (its first words say what the case is about).
        query = " ".join(case_text.split())[:MAX_SUGGESTION_TEXT]
        return await ranked(conn, tenant_id, query, readable(access), limit)


def public_visible() -> ColumnElement[bool]:
    return and_(articles.c.status == "published", articles.c.audience == "public")
