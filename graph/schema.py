"""The one GraphQL schema of Enclii, with its query limits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_limit
from strawberry.extensions.query_depth_limiter import create_validator as depth_limit
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from graph.cost import QueryCost
from graph.execution import Executor
from graph.extensions import ErrorCodes, SharedReads
from graph.mutations import Mutation
from graph.queries import Query
from graph.subscriptions import Subscription
from graph.types import nodes
from graph.types.scalars import AwareDateTime

MAX_DEPTH: Final = 15
MAX_TOKENS: Final = 4000
MAX_ALIASES: Final = 30
DOCUMENT_CACHE_SIZE: Final = 256

# The depth and alias rules are built once. Strawberry's QueryDepthLimiter and
# MaxAliasesLimiter each make a new rule class per instance, that is per request; the rules
# are part of ValidationCache's key, so with them every request missed the cache and was
# validated again (5 ms of the dashboard query's 54 on a 2 vCPU Xeon).
QUERY_LIMIT_RULES: Final = (depth_limit(MAX_DEPTH, None), alias_limit(MAX_ALIASES))


class QueryLimits(AddValidationRules):
    """Depth and alias limits, as stable validation rules so validation stays cached."""

    def __init__(self) -> None:
        super().__init__(list(QUERY_LIMIT_RULES))


class EncliiSchema(strawberry.Schema):
    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        # `execute` answers HTTP requests; a subscription there would run its generator as
        # a query and fail as an internal error. Refused, it is a 400 that says so
        # ("subscriptions are not allowed when using POST"); they are served on websockets.
        if allowed_operation_types is not None:
            allowed_operation_types = set(allowed_operation_types) - {OperationType.SUBSCRIPTION}
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected failures are answers, not incidents; ErrorCodes logs the unexpected ones
        # once, with the request ID.
        return None


def build_schema() -> strawberry.Schema:
    return EncliiSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # Every Node type, so node(id) can return any of them.
        types=list(nodes.NODE_TYPES.values()),
        extensions=[
            # Clients send the same documents over and over (the CLI, the UI, dashboards).
            lambda: ParserCache(maxsize=DOCUMENT_CACHE_SIZE),
            QueryLimits,
            lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            QueryCost,
            SharedReads,
            ErrorCodes,
        ],
        config=StrawberryConfig(auto_camel_case=True, scalar_map={datetime: AwareDateTime}),
        execution_context_class=Executor,
    )


schema = build_schema()
