"""A bound on what one GraphQL operation may pull: estimated before execution, refused over
MAX_COST with extensions.code QUERY_TOO_COSTLY.

Cost of a field = 1 + n x (cost of its selection), where n is its `first` argument (a list
page: the literal, the schema's default, or, for a variable, the largest page a client may
ask for) and 1 for every other field. So nested pages multiply: 200 contacts x 20
opportunities each is 4,000 records, and one query cannot walk the tenant.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    get_named_type,
)
from graphql.language import OperationType

from backend.records.listing import MAX_LIMIT

MAX_COST = 5000


def _page(node: FieldNode, field_def: Any) -> int:
    argument = field_def.args.get("first")
    if argument is None:
        return 1
    for given in node.arguments or ():
        if given.name.value == "first":
            if isinstance(given.value, IntValueNode):
                return max(0, int(given.value.value))
            return MAX_LIMIT  # a variable: assume the largest page
    default = argument.default_value
    return default if isinstance(default, int) else MAX_LIMIT


class QueryCostRule(ValidationRule):
    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        schema = self.context.schema
        root = {
            OperationType.QUERY: schema.query_type,
            OperationType.MUTATION: schema.mutation_type,
            OperationType.SUBSCRIPTION: schema.subscription_type,
        }[node.operation]
        cost = self._cost(node.selection_set, root, frozenset())
        if cost > MAX_COST:
            self.report_error(
                GraphQLError(
                    f"this query could return about {cost} records; the limit is {MAX_COST}: "
                    "ask for smaller pages or fewer nested lists",
                    node,
                    extensions={"code": "QUERY_TOO_COSTLY", "cost": cost, "maxCost": MAX_COST},
                )
            )

    def _cost(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        fragments: frozenset[str],
    ) -> int:
        if selection_set is None or parent is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                fields = (
                    parent.fields
                    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType)
                    else {}
                )
                field_def = fields.get(selection.name.value)
                if field_def is None:
                    total += 1  # __typename, or an unknown field another rule reports
                    continue
                inner = self._cost(
                    selection.selection_set, get_named_type(field_def.type), fragments
                )
                total += 1 + _page(selection, field_def) * inner
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.context.schema.get_type(condition.name.value) if condition else parent
                total += self._cost(selection.selection_set, target, fragments)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.context.get_fragment(name)
                if fragment is None or name in fragments:
                    continue  # unknown or cyclic: other rules report those
                target = self.context.schema.get_type(fragment.type_condition.name.value)
                total += self._cost(fragment.selection_set, target, fragments | {name})
        return total
