"""REST for the knowledge base (`/api/v1/knowledge/articles`), call scripts and their runs
(`/api/v1/knowledge/scripts`), and the public article search (`/public/{slug}/articles`).
Parse -> call a service -> shape."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody, QueryParameter
from msgspec import UNSET, UnsetType

from backend.api.origin import request_origin
from backend.api.rest.records import IfMatch, parse_if_match
from backend.context import RequestContext
from backend.knowledge import articles, scripts
from backend.knowledge.public import NoSuchTenant, public_search
from backend.knowledge.search import search_articles

Ctx = NamedDependency[RequestContext]


class ArticleBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: str | UnsetType = UNSET
    body: str | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET
    status: str | UnsetType = UNSET
    audience: str | UnsetType = UNSET
    language: str | UnsetType = UNSET


class ScriptBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    steps: Any = UNSET  # checked step by step (backend/knowledge/graph.py), naming the step


class RunBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    subject_type: str
    subject_id: str
    answers: Any


def _given(data: msgspec.Struct) -> dict[str, Any]:
    return {k: v for k, v in msgspec.structs.asdict(data).items() if v is not UNSET}


def _tagged(record: dict[str, Any], status: int = 200) -> Response[Any]:
    return Response(record, status_code=status, headers={"ETag": f'"{record["version"]}"'})


def _version(if_match: str | None) -> int:
    version = parse_if_match(if_match, required=True)
    assert version is not None
    return version


class ArticlesController(Controller):
    path = "/api/v1/knowledge/articles"
    tags = ["knowledge"]

    @get("/", summary="Articles you may read; with q: ranked full-text search, best first")
    async def search(
        self,
        ctx: Ctx,
        q: Annotated[str | None, QueryParameter(description="search text, ≤ 200 chars")] = None,
        limit: Annotated[int | None, QueryParameter(description="1-50 (default 20)")] = None,
    ) -> dict[str, Any]:
        return {"items": await search_articles(ctx, q, limit)}

    @post("/", summary="Write an article (Markdown body)", status_code=201)
    async def create(self, ctx: Ctx, data: JSONBody[ArticleBody]) -> Response[Any]:
        return _tagged(await articles.create_article(ctx, _given(data)), 201)

    @get("/{article_id:str}", summary="One article")
    async def read(self, ctx: Ctx, article_id: FromPath[str]) -> Response[Any]:
        return _tagged(await articles.get_article(ctx, article_id))

    @patch("/{article_id:str}", summary="Edit an article (If-Match); the old version is kept")
    async def edit(
        self,
        ctx: Ctx,
        article_id: FromPath[str],
        data: JSONBody[ArticleBody],
        if_match: IfMatch = None,
    ) -> Response[Any]:
        return _tagged(
            await articles.update_article(ctx, article_id, _given(data), _version(if_match))
        )

    @delete("/{article_id:str}", summary="Delete an article and its versions", status_code=204)
    async def remove(self, ctx: Ctx, article_id: FromPath[str], if_match: IfMatch = None) -> None:
        await articles.delete_article(ctx, article_id, parse_if_match(if_match, required=False))

    @get("/{article_id:str}/versions", summary="Every version of an article, newest first")
    async def versions(self, ctx: Ctx, article_id: FromPath[str]) -> dict[str, Any]:
        return {"items": await articles.article_versions(ctx, article_id)}


class ScriptsController(Controller):
    path = "/api/v1/knowledge/scripts"
    tags = ["knowledge"]

    @get("/", summary="Call scripts")
    async def list_all(self, ctx: Ctx) -> dict[str, Any]:
        return {"items": await scripts.list_scripts(ctx)}

    @post("/", summary="Write a call script (steps checked)", status_code=201)
    async def create(self, ctx: Ctx, data: JSONBody[ScriptBody]) -> Response[Any]:
        return _tagged(await scripts.create_script(ctx, _given(data)), 201)

    @get("/{script_id:str}", summary="One call script")
    async def read(self, ctx: Ctx, script_id: FromPath[str]) -> Response[Any]:
        return _tagged(await scripts.get_script(ctx, script_id))

    @patch("/{script_id:str}", summary="Edit a call script (If-Match)")
    async def edit(
        self,
        ctx: Ctx,
        script_id: FromPath[str],
        data: JSONBody[ScriptBody],
        if_match: IfMatch = None,
    ) -> Response[Any]:
        return _tagged(
            await scripts.update_script(ctx, script_id, _given(data), _version(if_match))
        )

    @delete("/{script_id:str}", summary="Delete a call script and its runs", status_code=204)
    async def remove(self, ctx: Ctx, script_id: FromPath[str]) -> None:
        await scripts.delete_script(ctx, script_id)

    @post("/{script_id:str}/runs", summary="Record a run: answers checked against the steps")
    async def run(
        self, ctx: Ctx, script_id: FromPath[str], data: JSONBody[RunBody]
    ) -> Response[Any]:
        run = await scripts.run_script(ctx, script_id, msgspec.structs.asdict(data))
        return Response(run, status_code=201)

    @get("/{script_id:str}/runs", summary="The latest runs of a call script")
    async def runs(self, ctx: Ctx, script_id: FromPath[str]) -> dict[str, Any]:
        return {"items": await scripts.list_runs(ctx, script_id)}


class PublicArticlesController(Controller):
    path = "/public/{tenant_slug:str}/articles"
    tags = ["self-service"]

    @get("/", summary="Search a tenant's public articles (no sign-in; rate limited)")
    async def search(
        self,
        state: State,
        request: Request[Any, Any, Any],
        tenant_slug: FromPath[str],
        q: Annotated[str | None, QueryParameter(description="search text, ≤ 200 chars")] = None,
    ) -> dict[str, Any]:
        source = request_origin(request).ip
        try:
            items = await public_search(state.services.db, tenant_slug, q, source)
        except NoSuchTenant:
            raise NotFoundException() from None  # the very answer of an unknown path
        return {"items": items}


KNOWLEDGE_CONTROLLERS = (ArticlesController, ScriptsController)
