"""REST: CSV imports (multipart; not in GraphQL). Parse the form -> ImportService -> shape."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath, QueryParameter

from backend.api.boundary import unstorable
from backend.context import RequestContext
from backend.errors import ValidationFailed
from backend.imports.csvfile import MAX_FILE_BYTES, FileTooLarge
from backend.imports.service import ImportRequest, ImportService

Ctx = NamedDependency[RequestContext]
# The form around the file (boundaries, the other fields) is small; the file itself is
# checked against MAX_FILE_BYTES, so both limits answer the same 413 `file_too_large`.
_FORM_SLACK = 64 * 1024
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


def _imports(request: Request[Any, Any, Any]) -> ImportService:
    service: ImportService = request.app.state.services.imports
    return service


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed.one(name, "invalid_type", "must be a form field, not a file")
    return value


def _flag(form: Any, name: str) -> bool:
    value = (_text(form, name) or "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise ValidationFailed.one(name, "invalid_type", "must be true or false")
    return value in _TRUE


def _filename(name: str | None) -> str | None:
    """The uploaded file's name, as the report shows it; None if it cannot be stored."""
    if not name or unstorable(name):
        return None
    return name[:255]


class ImportsController(Controller):
    path = "/api/v1/imports"
    tags = ["imports"]

    @post(
        "/",
        summary="Import a CSV file (multipart: file, entity, mapping, dry_run, on_duplicate)",
        status_code=201,
        request_max_body_size=MAX_FILE_BYTES + _FORM_SLACK,
    )
    async def create(self, ctx: Ctx, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        try:
            form = await request.form()
        except HTTPException as exc:
            if exc.status_code == 413:
                too_large = f"the file is over {MAX_FILE_BYTES} bytes"
                raise FileTooLarge(too_large, field="file") from None
            raise
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationFailed.one("file", "required", "send the CSV file as the `file` part")
        wanted = ImportRequest(
            entity=_text(form, "entity") or "",
            mapping=_text(form, "mapping"),
            dry_run=_flag(form, "dry_run"),
            on_duplicate=(_text(form, "on_duplicate") or "skip").strip(),
            filename=_filename(upload.filename),
            content=await upload.read(),
        )
        started, finished = await _imports(request).start(ctx, wanted)
        return Response(
            started,
            status_code=201 if finished else 202,
            headers={"Location": f"/api/v1/imports/{started['id']}"},
        )

    @get("/", summary="My imports, newest first")
    async def list_imports(
        self,
        ctx: Ctx,
        request: Request[Any, Any, Any],
        limit: Annotated[int | None, QueryParameter(description="1-200 (default 50)")] = None,
    ) -> dict[str, Any]:
        items = await _imports(request).list(ctx, limit or 50)
        return {"items": items, "next": None}

    @get("/{import_id:str}", summary="One of my imports: its progress and errors so far")
    async def get_import(
        self, ctx: Ctx, request: Request[Any, Any, Any], import_id: FromPath[str]
    ) -> dict[str, Any]:
        return await _imports(request).get(ctx, import_id)
