"""Knowledge articles: create, read, update (keeping every version), delete.

A reader sees the published articles (policy `article` read) and the drafts of the audiences
it may edit; anything else is the same 404 as a missing article. Bodies are Markdown, stored
and returned as text: the server never renders them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, false, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.errors import FieldProblem, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from backend.knowledge.access import KnowledgeAccess, knowledge_access
from backend.knowledge.models import AUDIENCES, STATUSES, Article, ArticleVersion

MAX_TITLE, MAX_BODY, MAX_TAGS, MAX_TAG = 200, 100_000, 30, 50
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
CONTENT = ("title", "body", "tags", "status", "audience", "language")
articles = table_of(Article)
versions = table_of(ArticleVersion)
PUBLIC_COLUMNS = (articles.c.id, articles.c.title, articles.c.body, articles.c.tags)
COLUMNS = (
    articles.c.id,
    articles.c.version,
    *(articles.c[name] for name in CONTENT),
    articles.c.author_id,
    articles.c.created_at,
    articles.c.updated_at,
)


def readable(access: KnowledgeAccess) -> ColumnElement[bool]:
    """The articles the caller may read (SQL)."""
    published = articles.c.status == "published"
    drafts = and_(articles.c.status == "draft", articles.c.audience.in_(access.draft_audiences))
    if not access.reads_published:
        return drafts if access.draft_audiences else false()
    return or_(published, drafts) if access.draft_audiences else published


def _checked(data: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    problems: list[FieldProblem] = []
    values: dict[str, Any] = {}

    def bad(field: str, code: str, message: str) -> None:
        problems.append(FieldProblem(field, code, message))

    for name in CONTENT:
        if name not in data:
            if creating and name in ("title", "body", "language"):
                bad(name, "required", "required")
            continue
        value = data[name]
        if name in ("title", "body"):
            limit = MAX_TITLE if name == "title" else MAX_BODY
            if not isinstance(value, str) or not value.strip():
                bad(name, "required", "a non-empty text")
            elif len(value) > limit:
                bad(name, "too_long", f"at most {limit} characters")
            else:
                values[name] = value.strip() if name == "title" else value
        elif name == "tags":
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                bad(name, "invalid", "a list of texts")
            elif len(value) > MAX_TAGS or any(not t.strip() or len(t) > MAX_TAG for t in value):
                bad(name, "invalid", f"at most {MAX_TAGS} tags of 1-{MAX_TAG} characters")
            else:
                values[name] = list(dict.fromkeys(t.strip().lower() for t in value))
        elif name in ("status", "audience"):
            choices = STATUSES if name == "status" else AUDIENCES
            if value not in choices:
                bad(name, "invalid_choice", f"one of {', '.join(choices)}")
            else:
                values[name] = value
        elif not isinstance(value, str) or not _LANGUAGE.match(value):
            bad(name, "invalid_language", 'a language tag, e.g. "en", "de" or "pt-BR"')
        else:
            values[name] = value
    if problems:
        raise ValidationFailed.of(problems)
    if creating:
        values.setdefault("status", "draft")
        values.setdefault("audience", "internal")
        values.setdefault("tags", [])
    return values


def parse_id(value: str | uuid.UUID) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(value)
    except ValueError:
        raise NotFound("article not found") from None


def _refuse(action: str, audience: str) -> Forbidden:
    return Forbidden(f"you may not {action} {audience} articles", field="audience")


async def create_article(ctx: RequestContext, data: Mapping[str, Any]) -> dict[str, Any]:
    values = _checked(data, creating=True)
    async with ctx.session.transaction() as conn:
        access = await knowledge_access(ctx, conn)
        if not access.may("create", values["audience"]):
            raise _refuse("create", values["audience"])
        row = (
            (
                await conn.execute(
                    insert(articles)
                    .values(tenant_id=ctx.tenant_id, id=uuid7(), author_id=ctx.user_id, **values)
                    .returning(*COLUMNS)
                )
            )
            .mappings()
            .one()
        )
        await _keep_version(conn, ctx, dict(row))
        return dict(row)


async def get_article(ctx: RequestContext, article_id: str) -> dict[str, Any]:
    key = parse_id(article_id)
    async with ctx.session.transaction() as conn:
        access = await knowledge_access(ctx, conn)
        stmt = select(*COLUMNS).where(articles.c.id == key, readable(access))
        row = (await conn.execute(stmt)).mappings().first()
    if row is None:
        raise NotFound("article not found")
    return dict(row)


async def update_article(
    ctx: RequestContext, article_id: str, data: Mapping[str, Any], version: int
) -> dict[str, Any]:
    key = parse_id(article_id)
    values = _checked(data, creating=False)
    async with ctx.session.transaction() as conn:
        access = await knowledge_access(ctx, conn)
        stmt = select(*COLUMNS).where(articles.c.id == key, readable(access)).with_for_update()
        current = (await conn.execute(stmt)).mappings().first()
        if current is None:
            raise NotFound("article not found")
        # Both the audience it has and the one it gets must be the caller's to edit.
        for audience in {current["audience"], values.get("audience", current["audience"])}:
            if not access.may("update", audience):
                raise _refuse("edit", audience)
        if current["version"] != version:
            raise PreconditionFailed(
                f"article is at version {current['version']}; reload and retry", field="version"
            )
        if all(current[k] == v for k, v in values.items()):
            return dict(current)  # nothing changed: no new version
        row = (
            (
                await conn.execute(
                    update(articles)
                    .where(articles.c.id == key)
                    .values(**values, version=articles.c.version + 1, updated_at=func.now())
                    .returning(*COLUMNS)
                )
            )
            .mappings()
            .one()
        )
        await _keep_version(conn, ctx, dict(row))
        return dict(row)


async def delete_article(ctx: RequestContext, article_id: str, version: int | None) -> None:
    key = parse_id(article_id)
    async with ctx.session.transaction() as conn:
        access = await knowledge_access(ctx, conn)
        stmt = select(*COLUMNS).where(articles.c.id == key, readable(access)).with_for_update()
        current = (await conn.execute(stmt)).mappings().first()
        if current is None:
            raise NotFound("article not found")
        if not access.may("delete", current["audience"]):
            raise _refuse("delete", current["audience"])
        if version is not None and current["version"] != version:
            raise PreconditionFailed(
                f"article is at version {current['version']}; reload and retry", field="version"
            )
        await conn.execute(delete(articles).where(articles.c.id == key))


async def article_versions(ctx: RequestContext, article_id: str) -> list[dict[str, Any]]:
    """Every saved state of a readable article, newest first."""
    await get_article(ctx, article_id)  # 404 unless the caller may read it now
    async with ctx.session.transaction() as conn:
        stmt = (
            select(
                versions.c.article_version.label("version"),
                *(versions.c[name] for name in CONTENT),
                versions.c.edited_by,
                versions.c.created_at.label("saved_at"),
            )
            .where(
                versions.c.tenant_id == ctx.tenant_id, versions.c.article_id == parse_id(article_id)
            )
            .order_by(versions.c.article_version.desc())
        )
        return [dict(r) for r in (await conn.execute(stmt)).mappings()]


async def _keep_version(conn: AsyncConnection, ctx: RequestContext, row: dict[str, Any]) -> None:
    await conn.execute(
        insert(versions).values(
            tenant_id=ctx.tenant_id,
            id=uuid7(),
            article_id=row["id"],
            article_version=row["version"],
            edited_by=ctx.user_id,
            **{name: row[name] for name in CONTENT},
        )
    )
