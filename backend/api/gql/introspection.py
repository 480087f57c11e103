"""Introspection (`__schema`, `__type`) only for signed-in callers; `__typename` stays open.
The SDL itself is public in the repository (graphql/schema.graphql)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import FieldNode, GraphQLError, ValidationRule
from strawberry.extensions import SchemaExtension

from backend.api.gql.context import GraphQLContext

_INTROSPECTION = frozenset({"__schema", "__type"})


class SignedInIntrospectionRule(ValidationRule):
    """Refuses every introspection field, wherever it is (operations, fragments, aliases):
    validation visits every definition of the document."""

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        if node.name.value in _INTROSPECTION:
            self.report_error(
                GraphQLError(
                    "Introspection requires a signed-in caller",
                    node,
                    extensions={"code": "UNAUTHENTICATED"},
                )
            )


class SignedInIntrospection(SchemaExtension):
    """Adds the rule for callers without a valid token. The rule set differs between the two
    kinds of caller, so the validation cache (keyed on document and rules) keeps them apart."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if not isinstance(context, GraphQLContext) or context.request_context is None:
            self.execution_context.validation_rules = (
                *self.execution_context.validation_rules,
                SignedInIntrospectionRule,
            )
        yield
