"""The GraphQL endpoint at /graphql, on Litestar through Strawberry's integration."""

from __future__ import annotations

from litestar.datastructures import Headers, State
from litestar.types import ControllerRouterHandler
from strawberry.litestar import make_graphql_controller

from backend.api.gql.context import GraphQLContext, build_context
from backend.api.gql.schema import schema


async def graphql_context(headers: Headers, state: State) -> GraphQLContext:
    return build_context(state.services, headers.get("authorization"), headers.get("x-request-id"))


def graphql_controller() -> ControllerRouterHandler:
    return make_graphql_controller(
        schema,
        path="/graphql",
        context_getter=graphql_context,
        graphql_ide=None,
        allow_queries_via_get=False,
    )
