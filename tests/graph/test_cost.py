"""graph.cost: a query's worst-case node count, and its refusal (QUERY_TOO_COSTLY) before
any SQL runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse
from sqlalchemy import select

from graph.cost import MAX_NODES, worst_case_nodes
from graph.schema import schema
from resolvers.context import Context
from store.models import ApiToken
from tests.factories import add_release, make_environment, make_project, make_service
from tests.helpers import DEADLINE_S, Api, count_statements

NESTED = """
query {
  projects(first: %(n)s) { nodes {
    environments(first: %(n)s) { nodes {
      services(first: %(n)s) { nodes {
        releases(first: %(n)s) { nodes { id } }
      } }
    } }
  } }
}
"""
BIG = NESTED % {"n": 100}
SMALL = NESTED % {"n": 5}

WITH_VARIABLE = """
query($n: Int) {
  projects(first: $n) { nodes {
    environments(first: $n) { nodes {
      services(first: $n) { nodes {
        releases(first: $n) { nodes { id } }
      } }
    } }
  } }
}
"""

WITH_FRAGMENTS = """
query {
  projects(first: 100) { nodes { ...Envs } }
}
fragment Envs on Project {
  environments(first: 100) { nodes {
    ... on Environment {
      services(first: 100) { nodes { ...Releases } }
    }
  } }
}
fragment Releases on Service {
  ... { releases(first: 100) { nodes { id } } }
}
"""

WITH_DEFAULTS = """
query {
  projects { nodes {
    environments { nodes {
      services { nodes {
        releases { nodes { id } }
      } }
    } }
  } }
}
"""


def nodes_of(query: str, variables: dict[str, Any] | None = None, name: str | None = None) -> int:
    document = parse(query)
    operations = [
        d
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
        and (name is None or (d.name is not None and d.name.value == name))
    ]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return worst_case_nodes(schema._schema, operations[0], fragments, variables or {})


# -- worst_case_nodes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        ("{ projects(first: 7) { totalCount } }", None, 7),
        ("{ projects(first: 100) { totalCount pageInfo { hasNextPage } } }", None, 100),
        # Omitted or null: the default page of 50.
        ("{ projects { totalCount } }", None, 50),
        ("{ projects(first: null) { totalCount } }", None, 50),
        # Variables are read.
        ("query($n: Int) { projects(first: $n) { totalCount } }", {"n": 9}, 9),
        ("query($n: Int) { projects(first: $n) { totalCount } }", {"n": 0}, 0),
        ("query($n: Int) { projects(first: $n) { totalCount } }", {}, 50),
        # Siblings add up.
        ("{ a: projects(first: 3) { totalCount } b: projects(first: 4) { totalCount } }", None, 7),
        (
            "{ viewer { account { projects(first: 3) { totalCount } users(first: 4) { totalCount } } } }",
            None,
            7,
        ),
        # Fragments and inline fragments count like the fields they hold.
        ("{ ...P } fragment P on Query { projects(first: 7) { totalCount } }", None, 7),
        ("{ ... on Query { projects(first: 7) { totalCount } } }", None, 7),
        ("{ ... { projects(first: 7) { totalCount } } }", None, 7),
        (
            "{ ...P ... on Query { b: projects(first: 4) { totalCount } } } "
            "fragment P on Query { a: projects(first: 3) { totalCount } }",
            None,
            7,
        ),
        # Nothing that returns a page costs anything.
        ("{ viewer { user { id displayName } } __typename }", None, 0),
        ('mutation { createProject(input: {name: "x"}) { __typename } }', None, 0),
        ('subscription { events(projectId: "p") { sequence } }', None, 0),
    ],
)
def test_worst_case_of_flat_queries(
    query: str, variables: dict[str, Any] | None, expected: int
) -> None:
    assert nodes_of(query, variables) == expected


@pytest.mark.parametrize(("a", "b"), [(1, 1), (3, 7), (10, 100), (100, 50)])
@pytest.mark.parametrize("via", ["nodes", "edges"])
def test_a_nested_connection_costs_the_product_of_the_firsts(a: int, b: int, via: str) -> None:
    """Adding a connection below another adds first * first (each outer node has its own)."""

    def query(leaf: str) -> str:
        item = f"{{ node {{ {leaf} }} }}" if via == "edges" else f"{{ {leaf} }}"
        return f"{{ projects(first: {a}) {{ {via} {item} }} }}"

    without = nodes_of(query("id"))
    with_inner = nodes_of(query(f"environments(first: {b}) {{ totalCount }}"))
    assert with_inner - without == a * b


def test_three_levels_multiply() -> None:
    two = "{ projects(first: 4) { nodes { environments(first: 5) { nodes { %s } } } } }"
    added = nodes_of(two % "services(first: 6) { totalCount }") - nodes_of(two % "id")
    assert added == 4 * 5 * 6


def test_fragments_count_like_the_query_written_out() -> None:
    assert nodes_of(WITH_FRAGMENTS) == nodes_of(BIG)
    assert nodes_of(WITH_VARIABLE, {"n": 100}) == nodes_of(BIG)
    assert nodes_of(WITH_VARIABLE, {"n": 5}) == nodes_of(SMALL)
    assert nodes_of(WITH_DEFAULTS) == nodes_of(NESTED % {"n": 50})
    assert nodes_of(WITH_VARIABLE, {}) == nodes_of(NESTED % {"n": 50})


def test_the_big_query_is_over_the_limit_and_the_small_one_is_not() -> None:
    assert nodes_of(BIG) > MAX_NODES
    assert nodes_of(WITH_DEFAULTS) > MAX_NODES
    assert 0 < nodes_of(SMALL) < 5_000


def test_a_fragment_that_spreads_itself_is_counted_once() -> None:
    # Invalid GraphQL (validation refuses it), but counting must still end.
    query = "{ ...P } fragment P on Query { projects(first: 2) { totalCount } ...P }"
    assert nodes_of(query) == 2


def test_an_unknown_fragment_or_field_costs_nothing() -> None:
    assert nodes_of("{ ...Missing projects(first: 3) { totalCount } }") == 3
    assert nodes_of("{ nope(first: 100) { totalCount } projects(first: 3) { totalCount } }") == 3


def test_connection_nodes_are_counted_once() -> None:
    """graph/cost.py's docstring (and GitHub's node limit it follows): the worst case is
    the sum over connection fields of the product of the firsts on the way down. GitHub's
    own example, issues(first: 50) > labels(first: 60), is 50 + 50 * 60 = 3,050. The
    counter also adds every list field below a connection (``nodes``, ``edges``), so each
    connection counts twice (three times with both nodes and edges)."""
    assert nodes_of("{ projects(first: 100) { nodes { id } } }") == 100
    assert nodes_of("{ projects(first: 100) { nodes { id } edges { node { id } } } }") == 100
    github_example = (
        "{ projects(first: 50) { edges { node { environments(first: 60) "
        "{ edges { node { id } } } } } } }"
    )
    assert nodes_of(github_example) == 50 + 50 * 60
    assert nodes_of(BIG) == 100 + 100**2 + 100**3 + 100**4


def test_variable_default_for_first_is_counted() -> None:
    """``query($n: Int = 100) { projects(first: $n) … }`` without variables executes with
    first 100, but is counted with the default page of 50."""
    query = "query($n: Int = 100) { projects(first: $n) { totalCount } }"
    assert nodes_of(query, {}) == 100


def test_a_list_of_nodes_multiplies_what_is_below() -> None:
    """``nodes(ids:)`` returns up to 100 nodes and everything below repeats for each, but
    the counter takes a list as one: 100 projects * (100 environments + 100 * 60 services)
    = 610,000 worst-case nodes are counted as about 12,000, under the limit."""
    query = """
    query($ids: [ID!]!) {
      nodes(ids: $ids) { ... on Project {
        environments(first: 100) { nodes { services(first: 60) { nodes { id } } } }
      } }
    }
    """
    ids = [f"prj_{i:026d}" for i in range(100)]
    assert nodes_of(query, {"ids": ids}) > MAX_NODES


# -- through the API -----------------------------------------------------------------------


@pytest.fixture
async def warm_api(api: Api, ctx: Context) -> Api:
    """The API with its token already authenticated (cached) and its last use recorded,
    so a request that is refused before execution runs no SQL at all."""
    await api.data("{ viewer { user { id } } }")

    async def last_use_recorded() -> None:
        while True:
            async with ctx.store.read() as session:
                used = await session.scalar(
                    select(ApiToken.last_used_at).where(ApiToken.name == "bootstrap")
                )
            if used is not None:
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(last_use_recorded(), DEADLINE_S)
    return api


async def _refused(
    api: Api, ctx: Context, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    with count_statements(ctx.store) as statements:
        body = await api.execute(query, variables)
    assert statements == [], "a refused query must not touch the database"
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["limit"] == MAX_NODES
    nodes = error["extensions"]["nodes"]
    assert nodes > MAX_NODES
    assert error["message"] == (
        f"This query could return up to {nodes:,} nodes; the limit is {MAX_NODES:,}. "
        "Ask for fewer items per page (first) in nested lists."
    )
    return dict(error)


async def _allowed(
    api: Api, ctx: Context, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    with count_statements(ctx.store) as statements:
        data = await api.data(query, variables)
    assert statements, "an allowed query reads the store"
    return data


@pytest.fixture
async def one_of_each(ctx: Context) -> str:
    """A project with an environment, a service and a release: the release's ID."""
    await make_environment(ctx, await make_project(ctx, "shop"), "stage")
    release = await add_release(ctx, await make_service(ctx, "shop", "stage", "api"))
    return release.id


def _release_ids(data: dict[str, Any]) -> list[str]:
    return [
        release["id"]
        for project in data["projects"]["nodes"]
        for env in project["environments"]["nodes"]
        for service in env["services"]["nodes"]
        for release in service["releases"]["nodes"]
    ]


async def test_a_too_costly_query_is_refused_before_any_sql(
    warm_api: Api, ctx: Context, one_of_each: str
) -> None:
    error = await _refused(warm_api, ctx, BIG)
    assert error["extensions"]["nodes"] == nodes_of(BIG)


async def test_the_same_shape_with_small_pages_runs(
    warm_api: Api, ctx: Context, one_of_each: str
) -> None:
    assert _release_ids(await _allowed(warm_api, ctx, SMALL)) == [one_of_each]


async def test_variables_are_honoured(warm_api: Api, ctx: Context, one_of_each: str) -> None:
    error = await _refused(warm_api, ctx, WITH_VARIABLE, {"n": 100})
    assert error["extensions"]["nodes"] == nodes_of(BIG)
    data = await _allowed(warm_api, ctx, WITH_VARIABLE, {"n": 5})
    assert _release_ids(data) == [one_of_each]


async def test_fragments_and_inline_fragments_are_counted(
    warm_api: Api, ctx: Context, one_of_each: str
) -> None:
    error = await _refused(warm_api, ctx, WITH_FRAGMENTS)
    assert error["extensions"]["nodes"] == nodes_of(BIG)
    small = WITH_FRAGMENTS.replace("100", "5")
    assert _release_ids(await _allowed(warm_api, ctx, small)) == [one_of_each]


async def test_the_default_page_of_50_applies_when_first_is_omitted(
    warm_api: Api, ctx: Context, one_of_each: str
) -> None:
    error = await _refused(warm_api, ctx, WITH_DEFAULTS)
    assert error["extensions"]["nodes"] == nodes_of(NESTED % {"n": 50})
    # Three levels of 50 are within the limit.
    three = "{ projects { nodes { environments { nodes { services { nodes { id } } } } } } }"
    data = await _allowed(warm_api, ctx, three)
    assert data["projects"]["nodes"][0]["environments"]["nodes"][0]["services"]["nodes"]


async def test_only_the_chosen_operation_is_counted(
    warm_api: Api, ctx: Context, one_of_each: str
) -> None:
    document = BIG.replace("query {", "query Big {") + SMALL.replace("query {", "query Small {")
    response = await warm_api.client.post(
        "/graphql",
        json={"query": document, "operationName": "Small"},
        headers=warm_api.headers,
    )
    assert _release_ids(response.json()["data"]) == [one_of_each]
    with count_statements(ctx.store) as statements:
        response = await warm_api.client.post(
            "/graphql",
            json={"query": document, "operationName": "Big"},
            headers=warm_api.headers,
        )
    assert statements == []
    assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"


async def test_a_variable_default_of_first_is_counted(
    warm_api: Api, ctx: Context, one_of_each: str
) -> None:
    """Executed with first 100 at three levels (over a million worst-case nodes), but
    counted with 50 and run."""
    query = WITH_VARIABLE.replace("$n: Int", "$n: Int = 100").replace(
        "services(first: $n) { nodes {\n        releases(first: $n) { nodes { id } }\n      } }",
        "services(first: $n) { nodes { id } }",
    )
    assert "releases" not in query
    await _refused(warm_api, ctx, query)
