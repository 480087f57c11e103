"""One transaction per GraphQL operation, rolled back when the result carries any error.

GraphQL answers errors with HTTP 200, so without this a mutation that raised after a write
would still commit. A mutation document is all-or-nothing: when one of its mutations fails
(a top-level error, or validation problems in its payload), none of them is saved, and a
document of several mutations gets a ROLLED_BACK error so that the payloads of the others are
not mistaken for saved records.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

ROLLED_BACK = GraphQLError(
    "a mutation in this operation failed, so none of its changes were saved",
    extensions={"code": "ROLLED_BACK"},
)


class OperationTransaction(SchemaExtension):
    async def on_operation(self) -> AsyncIterator[None]:
        ctx = self.execution_context.context.request_context
        if ctx is None:
            yield
            return
        async with ctx.session.request_scope() as session:
            yield
            result = self.execution_context.result
            if result is None or getattr(result, "errors", None):
                session.rollback_only = True
            data = getattr(result, "data", None)
            if (
                session.rollback_only
                and result is not None
                and isinstance(data, dict)
                and len(data) > 1
                and self.execution_context.operation_type is OperationType.MUTATION
            ):
                result.errors = [*(result.errors or []), ROLLED_BACK]
