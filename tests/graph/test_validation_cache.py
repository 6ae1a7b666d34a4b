"""A document is validated once: the depth and alias rules are built once (QUERY_LIMIT_RULES),
so they are the same key of Strawberry's ValidationCache on every request; and the limits
still refuse documents over them, from the cache too."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import graphql
import pytest
import strawberry
import strawberry.schema.schema as strawberry_schema
from graphql import DocumentNode, GraphQLError
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, ValidationCache
from strawberry.types import ExecutionResult

from graph.schema import MAX_ALIASES, MAX_DEPTH, QUERY_LIMIT_RULES, QueryLimits
from resolvers.context import Context
from tests.helpers import execute_in_process

Validations = list[str]  # the operation name of each document graphql-core validated


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> Iterator[Validations]:
    """graphql-core's validate() as Strawberry calls it: ValidationCache caches
    strawberry.schema.schema.validate_document, which calls it on a miss only."""
    seen: Validations = []
    real = vars(strawberry_schema)["validate"]
    assert real is graphql.validate  # the seam: the name validate_document looks up

    def spy(
        graphql_schema: Any, document: DocumentNode, rules: Any, *args: Any, **kwargs: Any
    ) -> list[GraphQLError]:
        for definition in document.definitions:
            name = getattr(definition, "name", None)
            seen.append(name.value if name is not None else "")
        return real(graphql_schema, document, rules, *args, **kwargs)

    monkeypatch.setattr(strawberry_schema, "validate", spy)
    yield seen


def _unique(prefix: str) -> str:
    """An operation name no earlier test used: the cache outlives tests, and equal
    documents are equal keys."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _messages(result: ExecutionResult) -> list[str]:
    return [error.message for error in result.errors or []]


async def test_the_same_document_is_validated_once(ctx: Context, validations: Validations) -> None:
    name = _unique("Viewer")
    document = f"query {name} {{ viewer {{ user {{ id displayName }} }} }}"
    first = await execute_in_process(ctx, document)
    second = await execute_in_process(ctx, document)
    assert first.errors is None and second.errors is None
    assert first.data == second.data
    assert first.data is not None and first.data["viewer"]["user"]["id"] == ctx.actor.id
    assert validations == [name]

    # Another document is another key: validated, once too.
    other = _unique("Viewer")
    for _ in range(3):
        assert (
            await execute_in_process(ctx, f"query {other} {{ viewer {{ user {{ id }} }} }}")
        ).data
    assert validations == [name, other]


def test_the_limit_rules_are_built_once() -> None:
    assert QueryLimits().validation_rules == list(QUERY_LIMIT_RULES)
    assert QueryLimits().validation_rules == QueryLimits().validation_rules
    assert len(QUERY_LIMIT_RULES) == 2


@strawberry.type
class Tiny:
    @strawberry.field
    def hello(self) -> str:
        return "world"


@pytest.mark.parametrize(
    ("limits", "validated_per_run"),
    [
        # Strawberry's limiters make a new rule class per instance, that is per request:
        # the cache key changes every time (why graph.schema builds its rules once).
        (lambda: QueryDepthLimiter(max_depth=MAX_DEPTH), 1),
        (lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES), 1),
        (QueryLimits, 0),
    ],
    ids=["QueryDepthLimiter", "MaxAliasesLimiter", "QueryLimits"],
)
async def test_only_stable_rules_let_the_cache_hit(
    validations: Validations, limits: Callable[[], Any], validated_per_run: int
) -> None:
    """The spy sees cache misses: with per-request rules every run validates again."""
    tiny = strawberry.Schema(query=Tiny, extensions=[limits, lambda: ValidationCache(maxsize=8)])
    name = _unique("Hello")
    for _ in range(3):
        result = await tiny.execute(f"query {name} {{ hello }}")
        assert result.data == {"hello": "world"}
    assert validations == [name] * (1 + 2 * validated_per_run)


def _deep(name: str, levels: int) -> str:
    """Selection sets nested ``levels`` deep: project { environments { nodes { project …
    { id } } } } (every level a field of its own)."""
    cycle = ["environments(first: 1)", "nodes", "project"]
    fields = ['project(slug: "shop")'] + [cycle[i % 3] for i in range(levels - 1)]
    return f"query {name} {{ " + " { ".join(fields) + " { id" + " }" * levels + " }"


def _aliases(name: str, count: int) -> str:
    return f"query {name} {{ " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"


async def test_the_depth_limit_refuses_deeper_documents_every_time(
    ctx: Context, validations: Validations
) -> None:
    at_limit = _unique("AtLimit")
    result = await execute_in_process(ctx, _deep(at_limit, MAX_DEPTH))
    assert result.errors is None
    assert result.data == {"project": None}

    too_deep = _unique("TooDeep")
    document = _deep(too_deep, MAX_DEPTH + 1)
    for _ in range(2):  # the second answer comes from the cache, errors and all
        result = await execute_in_process(ctx, document)
        assert result.data is None
        assert _messages(result) == [f"'{too_deep}' exceeds maximum operation depth of {MAX_DEPTH}"]
        assert result.errors is not None
        assert result.errors[0].extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert validations == [at_limit, too_deep]


async def test_the_alias_limit_refuses_more_aliases_every_time(
    ctx: Context, validations: Validations
) -> None:
    at_limit = _unique("AtLimit")
    result = await execute_in_process(ctx, _aliases(at_limit, MAX_ALIASES))
    assert result.errors is None
    assert result.data == {f"a{i}": "Query" for i in range(MAX_ALIASES)}

    too_many = _unique("TooMany")
    document = _aliases(too_many, MAX_ALIASES + 1)
    for _ in range(2):
        result = await execute_in_process(ctx, document)
        assert result.data is None
        assert _messages(result) == [f"{MAX_ALIASES + 1} aliases found. Allowed: {MAX_ALIASES}"]
    assert validations == [at_limit, too_many]
