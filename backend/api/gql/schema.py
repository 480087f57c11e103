"""The Strawberry schema with its safety limits turned on."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from backend.api.gql.agenda import AgendaMutation, AgendaQuery
from backend.api.gql.auth_admin import AuthAdminMutation, AuthAdminQuery
from backend.api.gql.cost import QueryCostRule
from backend.api.gql.custom_fields import CustomFieldMutation, CustomFieldQuery
from backend.api.gql.entities import EntityMutation, EntityQuery
from backend.api.gql.exports import ExportMutation, ExportQuery
from backend.api.gql.history import HistoryQuery
from backend.api.gql.introspection import SignedInIntrospection
from backend.api.gql.leads import LeadsMutation
from backend.api.gql.lookup import LookupQuery
from backend.api.gql.policy import PolicyMutation, PolicyQuery
from backend.api.gql.quotes import QuoteMutation
from backend.api.gql.sales import SalesMutation, SalesQuery
from backend.api.gql.sync import SyncMutation, SyncQuery
from backend.api.gql.transaction import OperationTransaction

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 5000


class CaravanSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Client mistakes are not server errors; unexpected ones are logged where errors are
        shaped for the response (backend.api.gql.errors)."""


# Each capability contributes its own root fields; add its types here.
Query = merge_types(
    "Query",
    (
        EntityQuery,  # every registered entity
        PolicyQuery,
        AuthAdminQuery,
        HistoryQuery,
        LookupQuery,
        SyncQuery,
        ExportQuery,
        CustomFieldQuery,
        AgendaQuery,
        SalesQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        EntityMutation,  # every registered entity
        PolicyMutation,
        AuthAdminMutation,
        SyncMutation,
        ExportMutation,
        CustomFieldMutation,
        AgendaMutation,
        SalesMutation,
        LeadsMutation,
        QuoteMutation,
    ),
)

# The limiters' validation rules are built ONCE. QueryDepthLimiter and MaxAliasesLimiter make a
# new rule class each time they are constructed, and ValidationCache keys its (process-wide)
# cache on the rule classes: a factory building them per request never hit that cache.
LIMIT_RULES = (
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
    QueryCostRule,
)

schema = CaravanSchema(
    query=Query,
    mutation=Mutation,
    config=StrawberryConfig(disable_field_suggestions=True),
    extensions=[
        # Factories: a fresh extension per request; the rules and the parse/validation caches
        # (module-level in Strawberry, keyed by maxsize) are shared by every request.
        lambda: AddValidationRules(list(LIMIT_RULES)),
        SignedInIntrospection,
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        OperationTransaction,
    ],
)
