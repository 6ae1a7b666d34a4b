"""The one GraphQL schema of Enclii, with its query limits."""

from __future__ import annotations

from typing import Final

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig

from graph.extensions import ErrorCodes
from graph.mutations import Mutation
from graph.queries import Query
from graph.subscriptions import Subscription
from graph.types import nodes

MAX_DEPTH: Final = 15
MAX_TOKENS: Final = 4000
MAX_ALIASES: Final = 30


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # Every Node type, so node(id) can return any of them.
        types=list(nodes.NODE_TYPES.values()),
        extensions=[
            lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
            ErrorCodes,
        ],
        config=StrawberryConfig(auto_camel_case=True),
    )


schema = build_schema()
