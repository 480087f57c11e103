"""The GraphQL context: the same RequestContext the REST skin builds, plus DataLoaders."""

from __future__ import annotations

from typing import Any

from strawberry.litestar import BaseContext

from backend.api.auth_header import authenticate
from backend.context import RequestContext
from backend.errors import CaravanError
from backend.runtime import Services


class GraphQLContext(BaseContext, kw_only=True):
    services: Services
    request_context: RequestContext | None = None
    auth_error: CaravanError | None = None
    loaders: dict[str, Any] = {}

    def require(self) -> RequestContext:
        """The caller's context; UNAUTHENTICATED when the request carried no valid token."""
        if self.request_context is None:
            assert self.auth_error is not None
            raise self.auth_error
        return self.request_context


async def build_context(
    services: Services, authorization: str | None, request_id: str | None
) -> GraphQLContext:
    try:
        ctx = await authenticate(services, authorization, "graphql", request_id)
    except CaravanError as exc:
        return GraphQLContext(services=services, auth_error=exc, loaders={})
    return GraphQLContext(services=services, request_context=ctx, loaders={})
