"""REST routes for one entity, built from its service: parse -> call the service -> shape.

Handlers are made by a factory so every entity gets the same list/get/create/update/delete
contract. Their signatures are set explicitly (request-body type, filter query parameters) so
Litestar validates them and documents them in OpenAPI.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT, HTTP_304_NOT_MODIFIED

from backend.api.rest.bodies import create_body, update_body
from backend.api.rest.sparse import encode_with_etag, parse_fields, sparse
from backend.context import RequestContext
from backend.errors import BadRequest, PreconditionRequired
from backend.history import reading
from backend.history.revert import revert_change, revert_record
from backend.records.listing import build_list_query, choice_filters, range_params
from backend.records.service import Page, Record, RecordService

_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


def etag(record: Record) -> str:
    return f'"{record["version"]}"'


def none_match(header: str, tag: str) -> bool:
    """RFC 9110 If-None-Match: `*` or a list of (weakly compared) entity tags."""
    candidates = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in candidates or tag in candidates


def parse_if_match(value: str | None, *, required: bool) -> int | None:
    if value is None:
        if required:
            raise PreconditionRequired(
                "send If-Match with the record version you edited",
                field="If-Match",
                code="if_match_required",
            )
        return None
    match = _IF_MATCH.match(value)
    if match is None:
        raise BadRequest(
            'If-Match must be a record version, e.g. "3"', field="If-Match", code="invalid_if_match"
        )
    return int(match.group(1))


class RevertBody(msgspec.Struct, forbid_unknown_fields=True):
    before_change_id: str


def _json_body(struct: type[msgspec.Struct]) -> Any:
    """`JSONBody[struct]` for a type only known at run time."""
    return JSONBody[struct]  # type: ignore[valid-type, misc]


def page_body(page: Page) -> dict[str, Any]:
    return {"items": page.items, "next": page.next_cursor}


def _with_signature(
    fn: Callable[..., Any], params: list[inspect.Parameter], returns: Any
) -> Callable[..., Any]:
    """Give a factory-made handler the exact signature Litestar should parse and document."""
    fn.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    fn.__annotations__ = {p.name: p.annotation for p in params} | {"return": returns}
    return fn


def _query(name: str, annotation: Any, description: str) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[annotation | None, QueryParameter(description=description)],
    )


IfMatch = Annotated[str | None, HeaderParameter(name="If-Match", required=False)]
IfNoneMatch = Annotated[str | None, HeaderParameter(name="If-None-Match", required=False)]


def record_router(service: RecordService, type_name: str, provide_context: Provide) -> Router:
    spec = service.spec
    create_type = create_body(spec, type_name)
    update_type = update_body(spec, type_name)
    ctx_param = inspect.Parameter(
        "ctx", inspect.Parameter.KEYWORD_ONLY, annotation=NamedDependency[RequestContext]
    )
    tags = [spec.plural]
    ranges, choices = range_params(spec), choice_filters(spec)

    async def list_records(
        ctx: RequestContext, request: Request[Any, Any, Any], **params: Any
    ) -> Response[Any]:
        fields = parse_fields(spec, params.get("fields"))
        query = build_list_query(
            spec,
            limit=params.get("limit"),
            after=params.get("after"),
            search=params.get("q"),
            filters={name: params.get(name) for name in spec.filter_columns},
            updated_since=params.get("updated_since"),
            sort=params.get("sort"),
            custom_filters={
                name: value
                for name, value in request.query_params.items()
                if name.startswith("custom.")
            },
            ranges={name: params.get(name) for name in ranges},
            choices={name: params.get(name) for name in choices},
            entity_filters={name: params.get(name) for name in spec.list_filters},
        )
        page = await service.list(ctx, query)
        body = page_body(replace(page, items=[sparse(r, fields) for r in page.items]))
        content, tag = encode_with_etag(body)
        if_none_match = params.get("if_none_match")
        if if_none_match is not None and none_match(if_none_match, tag.removeprefix("W/")):
            return Response(None, status_code=HTTP_304_NOT_MODIFIED, headers={"ETag": tag})
        return Response(content, media_type="application/json", headers={"ETag": tag})

    list_params = [
        ctx_param,
        inspect.Parameter(
            "request", inspect.Parameter.KEYWORD_ONLY, annotation=Request[Any, Any, Any]
        ),
        _query("limit", int, description="page size, 1-200 (default 50)"),
        _query("after", str, description="the `next` cursor of the previous page"),
        _query("q", str, description="search text"),
        _query("updated_since", str, description="ISO 8601 date-time"),
        _query(
            "sort", str, description=f"one of {', '.join(spec.sort_columns)}; '-' for descending"
        ),
        *(_query(name, str, description="UUID") for name in spec.filter_columns),
        *(
            _query(name, str, description=_range_description(name, column, bound, kind))
            for name, (column, bound, kind) in ranges.items()
        ),
        *(
            _query(name, str, description=f"exactly one of {', '.join(values)}")
            for name, values in choices.items()
        ),
        *(_query(name, str, description=f.description) for name, f in spec.list_filters.items()),
        _query("fields", str, description="comma-separated fields to return (id, version kept)"),
        inspect.Parameter(
            "if_none_match", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=IfNoneMatch
        ),
    ]
    list_handler = get("/", summary=f"List {spec.plural}", tags=tags)(
        _with_signature(list_records, list_params, Response[Any])
    )

    @get("/{record_id:str}", summary=f"Get one {spec.name}", tags=tags)
    async def get_record(
        ctx: NamedDependency[RequestContext],
        record_id: FromPath[str],
        if_none_match: IfNoneMatch = None,
        fields: Annotated[
            str | None,
            QueryParameter(description="comma-separated fields to return (id, version kept)"),
        ] = None,
    ) -> Response[Any]:
        wanted = parse_fields(spec, fields)
        record = await service.get(ctx, record_id)
        tag = etag(record)
        if if_none_match is not None and none_match(if_none_match, tag):
            return Response(None, status_code=HTTP_304_NOT_MODIFIED, headers={"ETag": tag})
        return Response(sparse(record, wanted), headers={"ETag": tag})

    async def create_record(ctx: RequestContext, data: msgspec.Struct) -> Response[Any]:
        record = await service.create(ctx, _provided(data))
        return Response(
            record,
            status_code=HTTP_201_CREATED,
            headers={"ETag": etag(record), "Location": f"/api/v1/{spec.plural}/{record['id']}"},
        )

    create_handler = post("/", summary=f"Create a {spec.name}", tags=tags, status_code=201)(
        _with_signature(
            create_record,
            [
                ctx_param,
                inspect.Parameter(
                    "data", inspect.Parameter.KEYWORD_ONLY, annotation=_json_body(create_type)
                ),
            ],
            Response[Any],
        )
    )

    async def update_record(
        ctx: RequestContext, record_id: str, data: msgspec.Struct, if_match: str | None
    ) -> Response[Any]:
        version = parse_if_match(if_match, required=True)
        assert version is not None
        record = await service.update(ctx, record_id, _provided(data), version)
        return Response(record, headers={"ETag": etag(record)})

    update_handler = patch("/{record_id:str}", summary=f"Update a {spec.name}", tags=tags)(
        _with_signature(
            update_record,
            [
                ctx_param,
                inspect.Parameter(
                    "record_id", inspect.Parameter.KEYWORD_ONLY, annotation=FromPath[str]
                ),
                inspect.Parameter(
                    "data", inspect.Parameter.KEYWORD_ONLY, annotation=_json_body(update_type)
                ),
                inspect.Parameter(
                    "if_match",
                    inspect.Parameter.KEYWORD_ONLY,
                    default=None,
                    annotation=IfMatch,
                ),
            ],
            Response[Any],
        )
    )

    @delete(
        "/{record_id:str}",
        summary=f"Delete a {spec.name}",
        tags=tags,
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_record(
        ctx: NamedDependency[RequestContext],
        record_id: FromPath[str],
        if_match: IfMatch = None,
    ) -> None:
        await service.delete(ctx, record_id, parse_if_match(if_match, required=False))

    @get("/{record_id:str}/history", summary=f"Change history of a {spec.name}", tags=tags)
    async def history(
        ctx: NamedDependency[RequestContext],
        record_id: FromPath[str],
        limit: Annotated[int | None, QueryParameter(description="1-200 (default 50)")] = None,
        after: Annotated[str | None, QueryParameter(description="the `next` cursor")] = None,
    ) -> dict[str, Any]:
        page = await reading.record_history(ctx, spec.name, record_id, after=after, limit=limit)
        return {"items": page.items, "next": page.next_cursor}

    @post(
        "/{record_id:str}/history/{change_id:str}/revert",
        summary=f"Undo one change of a {spec.name} (a delete: undelete)",
        tags=tags,
        status_code=200,
    )
    async def revert(
        ctx: NamedDependency[RequestContext],
        record_id: FromPath[str],
        change_id: FromPath[str],
        if_match: IfMatch = None,
    ) -> Response[Any]:
        version = parse_if_match(if_match, required=False)
        record = await revert_change(ctx, spec.name, record_id, change_id, version)
        return Response(record, headers={"ETag": etag(record)})

    @post(
        "/{record_id:str}/revert",
        summary=f"Put a whole {spec.name} back as it was just before a change (or undelete it)",
        tags=tags,
        status_code=200,
    )
    async def revert_record_to(
        ctx: NamedDependency[RequestContext],
        record_id: FromPath[str],
        data: JSONBody[RevertBody],
        if_match: IfMatch = None,
    ) -> Response[Any]:
        version = parse_if_match(if_match, required=False)
        record = await revert_record(ctx, spec.name, record_id, data.before_change_id, version)
        return Response(record, headers={"ETag": etag(record)})

    return Router(
        path=f"/api/v1/{spec.plural}",
        route_handlers=[
            list_handler,
            get_record,
            create_handler,
            update_handler,
            delete_record,
            history,
            revert,
            revert_record_to,
        ],
        dependencies={"ctx": provide_context},
    )


def _range_description(name: str, column: str, bound: int, kind: str) -> str:
    what = {"decimal": "a number", "integer": "an integer", "date": "a date (YYYY-MM-DD)"}
    end = "lowest" if bound == 0 else "highest"
    return f"{what.get(kind, 'an ISO 8601 date-time')}: the {end} {column} listed (inclusive)"


def _provided(data: msgspec.Struct) -> dict[str, Any]:
    """The fields the client sent (msgspec leaves the others UNSET)."""
    return {
        name: msgspec.to_builtins(value) if isinstance(value, list) else value
        for name, value in msgspec.structs.asdict(data).items()
        if value is not msgspec.UNSET
    }
