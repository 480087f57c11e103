"""REST: exports and the tenant's export rules. Parse -> ExportService -> shape."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream

from backend.context import RequestContext
from backend.exports.request import ExportRequest
from backend.exports.rules import RuleSet
from backend.exports.service import ExportService

Ctx = NamedDependency[RequestContext]


class ExportBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    entity: str
    format: str = "csv"
    fields: list[str] | None = None
    filter: dict[str, str | None] = msgspec.field(default_factory=dict)


class DenyBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    reason: str | None = None


def _exports(request: Request[Any, Any, Any]) -> ExportService:
    service: ExportService = request.app.state.services.exports
    return service


class ExportsController(Controller):
    path = "/api/v1/exports"
    tags = ["exports"]

    @post(
        "/",
        summary="Request an export (decided, audited; ready or pending approval)",
        status_code=201,
    )
    async def create(
        self, ctx: Ctx, request: Request[Any, Any, Any], data: JSONBody[ExportBody]
    ) -> dict[str, Any]:
        wanted = ExportRequest(data.entity, data.format, data.fields, data.filter)
        return await _exports(request).create(ctx, wanted)

    @get("/", summary="Exports: mine, or all of the tenant's for admins; newest first")
    async def list_exports(
        self,
        ctx: Ctx,
        request: Request[Any, Any, Any],
        limit: Annotated[int | None, QueryParameter(description="1-200 (default 50)")] = None,
    ) -> dict[str, Any]:
        items = await _exports(request).list(ctx, limit or 50)
        return {"items": items, "next": None}

    @get("/{export_id:str}", summary="One export: its status and, once decided, the reason")
    async def get_export(
        self, ctx: Ctx, request: Request[Any, Any, Any], export_id: FromPath[str]
    ) -> dict[str, Any]:
        return await _exports(request).get(ctx, export_id)

    @post(
        "/{export_id:str}/approve",
        summary="Approve a pending export (another admin)",
        status_code=200,
    )
    async def approve(
        self, ctx: Ctx, request: Request[Any, Any, Any], export_id: FromPath[str]
    ) -> dict[str, Any]:
        return await _exports(request).approve(ctx, export_id)

    @post("/{export_id:str}/deny", summary="Deny a pending export (admins)", status_code=200)
    async def deny(
        self,
        ctx: Ctx,
        request: Request[Any, Any, Any],
        export_id: FromPath[str],
        data: JSONBody[DenyBody],
    ) -> dict[str, Any]:
        return await _exports(request).deny(ctx, export_id, data.reason)

    @post(
        "/{export_id:str}/link", summary="A short-lived, single-use download link", status_code=200
    )
    async def link(
        self, ctx: Ctx, request: Request[Any, Any, Any], export_id: FromPath[str]
    ) -> dict[str, Any]:
        return await _exports(request).link(ctx, export_id)

    @get("/download/{token:str}", summary="Download an export once, with its link")
    async def download(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Stream:
        file = await _exports(request).download(token)
        return Stream(
            file.chunks,
            media_type=file.media_type,
            headers={
                "Content-Disposition": f'attachment; filename="{file.filename}"',
                "Cache-Control": "no-store",
            },
        )


class ExportRulesController(Controller):
    path = "/api/v1/export-rules"
    tags = ["exports"]

    @get("/", summary="The tenant's export rules and read budget (admins)")
    async def get_rules(self, ctx: Ctx, request: Request[Any, Any, Any]) -> RuleSet:
        return await _exports(request).rules(ctx)

    @put("/", summary="Replace the tenant's export rules and read budget (admins)")
    async def put_rules(
        self, ctx: Ctx, request: Request[Any, Any, Any], data: JSONBody[RuleSet]
    ) -> RuleSet:
        return await _exports(request).set_rules(ctx, data)
