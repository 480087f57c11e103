"""One transaction per GraphQL operation, rolled back when the result carries any error.

GraphQL answers errors with HTTP 200, so without this a mutation that raised after a write
would still commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from strawberry.extensions import SchemaExtension


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
