"""The GraphQL endpoint at /graphql, on Litestar through Strawberry's integration.

Every answer is JSON a GraphQL client can read: request errors that Strawberry raises as
text/plain HTTP errors (malformed JSON, missing query, wrong method or content type, batches)
become `{"errors": [{"message", "extensions": {"code"}}]}` with the same status
(backend/api/gql/http_errors.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError
from litestar import Request, Response, route
from litestar.datastructures import Headers, State
from litestar.types import ControllerRouterHandler
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.parse_content_type import parse_content_type
from strawberry.litestar import make_graphql_controller
from strawberry.types import ExecutionResult

from backend.api.gql.context import GraphQLContext, build_context
from backend.api.gql.errors import convert_errors
from backend.api.gql.http_errors import EXCEPTION_HANDLERS, request_error
from backend.api.gql.persisted import (
    PersistedQueries,
    PersistedQueryMismatch,
    PersistedQueryNotFound,
    PersistedQuerySignInRequired,
    load_operations,
)
from backend.api.gql.schema import schema
from backend.persisted_queries import store as persisted_store


async def graphql_context(headers: Headers, state: State) -> GraphQLContext:
    return await build_context(
        state.services, headers.get("authorization"), headers.get("x-request-id")
    )


def graphql_controller() -> ControllerRouterHandler:
    base = make_graphql_controller(
        schema,
        path="/graphql",
        context_getter=graphql_context,
        graphql_ide=None,
        allow_queries_via_get=False,
    )

    persisted = PersistedQueries(load_operations())

    class Controller(base):  # type: ignore[valid-type,misc]
        exception_handlers = EXCEPTION_HANDLERS

        async def execute_request(
            self, request: Request[Any, Any, Any], context: Any, root_value: Any
        ) -> Response[Any]:
            if request.method != "POST":  # queries via GET are off; mutations never go by GET
                return request_error(405, "GraphQL requests are sent with POST")
            try:
                response: Response[Any] = await self.run(
                    request, context=context, root_value=root_value
                )
            except HTTPException as exc:
                return request_error(exc.status_code, exc.reason)
            return response

        @route(
            http_method=["PUT", "PATCH", "DELETE"],
            status_code=405,
            include_in_schema=False,
        )
        async def other_methods(self) -> Response[Any]:
            return request_error(405, "GraphQL requests are sent with POST")

        async def parse_http_body(self, request_adapter: Any) -> Any:
            content_type, _ = parse_content_type(request_adapter.content_type or "")
            if content_type.lower() != "application/json":
                raise HTTPException(415, "GraphQL requests are sent as application/json")
            return await super().parse_http_body(request_adapter)

        async def execute_single(
            self,
            request: Request[Any, Any, Any],
            request_adapter: Any,
            sub_response: Any,
            context: Any,
            root_value: Any,
            request_data: GraphQLRequestData,
        ) -> ExecutionResult:
            # A persisted-query hash stands for its document (backend/api/gql/persisted.py).
            signed_in = context.request_context if isinstance(context, GraphQLContext) else None
            tenant = signed_in.tenant_id if signed_in is not None else None
            try:
                query = await persisted_store.resolve(
                    persisted,
                    context.services.db,
                    request_data.query,
                    request_data.extensions,
                    tenant,
                )
            except PersistedQueryMismatch as exc:
                raise HTTPException(400, str(exc)) from None
            except PersistedQuerySignInRequired:
                refused = context.auth_error
                return ExecutionResult(
                    data=None, errors=[GraphQLError(refused.detail, original_error=refused)]
                )
            except PersistedQueryNotFound:
                return ExecutionResult(
                    data=None,
                    errors=[
                        GraphQLError(
                            "PersistedQueryNotFound",
                            extensions={"code": "PERSISTED_QUERY_NOT_FOUND"},
                        )
                    ],
                )
            result: ExecutionResult = await super().execute_single(
                request,
                request_adapter,
                sub_response,
                context,
                root_value,
                replace(request_data, query=query),
            )
            return result

        def parse_json(self, data: str | bytes) -> Any:
            # Strawberry assumes an object or list: any other JSON value (or non-UTF-8 bytes)
            # would otherwise end in a 500.
            try:
                parsed = super().parse_json(data)
            except (UnicodeDecodeError, RecursionError):
                raise HTTPException(400, "Unable to parse request body as JSON") from None
            if not isinstance(parsed, dict | list):
                raise HTTPException(400, "The request body must be a JSON object")
            return parsed

        async def process_result(
            self, request: Request[Any, Any, Any], result: ExecutionResult
        ) -> GraphQLHTTPResponse:
            # Every error, including those raised before execution (syntax, validation), gets
            # an extensions.code; unexpected ones are masked.
            if result.errors:
                result.errors = convert_errors(result.errors)
            return process_result(result)

    return Controller
