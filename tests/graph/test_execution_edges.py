"""Edges of graph.execution's fast paths that a review found answering differently from
graphql-core's executor, each now run on both executors: when a link's sub-fields are
collected, what is settled when a list fails, how often a value or a type check is read,
resolver arguments that share a name with the executor's own parameters, custom scalars
and Flag enums, and copying the resolve info."""

from __future__ import annotations

import asyncio
import copy
import enum
import inspect
from collections.abc import Coroutine
from typing import Any, NewType

import strawberry
from strawberry.schema.config import StrawberryConfig

from graph.execution import Executor
from tests.graph.test_execution import (
    BASE,
    FAST,
    PLAIN,
    Awaiting,
    Outcome,
    Quiet,
    _leaf,
    _root,
    _valid_item,
    build,
    outcome,
)

EXECUTORS = {"graphql-core": BASE, "fast": Executor}


async def both(schema_of: Any, document: str, **kwargs: Any) -> list[Outcome]:
    """The outcome of ``document`` on graphql-core's executor and on the fast one."""
    return [
        outcome(await schema_of(executor).execute(document, **kwargs))
        for executor in EXECUTORS.values()
    ]


# -- a link's sub-fields are collected when it has a value -------------------------------


async def test_a_directive_that_fails_is_an_error_of_its_link_and_only_with_a_value() -> None:
    document = """
        query Q($v: Boolean = true) { maybeItem { text maybeChild { label @skip(if: $v) } } }
    """
    for child in (None, _leaf("here")):
        recipe = _root(maybe_item=_valid_item(maybe_child=child))
        results = []
        for schema in (PLAIN, FAST):
            root = build(recipe, [])
            # null for a non-null Boolean: only collecting maybeChild's fields finds it
            result = await schema.execute(document, variable_values={"v": None}, root_value=root)
            results.append(outcome(result))
        assert results[0] == results[1], child
        data, errors = results[1]
        assert data[0][1][0] == ("text", "hello")  # maybeItem itself stands
        if child is None:
            assert errors == []
        else:
            assert [e["path"] for e in errors] == [["maybeItem", "maybeChild"]]


async def test_a_root_link_without_a_value_collects_nothing() -> None:
    document = "query Q($v: Boolean = true) { maybeItem { text @skip(if: $v) } }"
    results = [
        outcome(
            await schema.execute(
                document, variable_values={"v": None}, root_value=build(_root(maybe_item=None), [])
            )
        )
        for schema in (PLAIN, FAST)
    ]
    assert results[0] == results[1] == ([("maybeItem", None)], [])


# -- a list that fails settles what is pending in the rest of it ---------------------------


async def test_a_failing_list_leaves_no_item_never_awaited() -> None:
    states = []
    for schema in (PLAIN, FAST):
        coroutines: list[Coroutine[Any, Any, Any]] = []
        # the first item fails a non-null field, which fails the non-null list at once
        root = build(
            _root(maybe_item=_valid_item(kids=[_leaf(label=None), Awaiting(_leaf("later"))])),
            coroutines,
        )
        result = await schema.execute("{ maybeItem { kids { label } } }", root_value=root)
        for _ in range(5):  # what graphql-core settles in the background
            await asyncio.sleep(0)
        states.append((outcome(result), [inspect.getcoroutinestate(c) for c in coroutines]))
        for coroutine in coroutines:
            if inspect.getcoroutinestate(coroutine) == inspect.CORO_CREATED:
                coroutine.close()
    assert states[0] == states[1]
    assert states[1][1] == [inspect.CORO_CLOSED]


# -- a type's own check, and a property, are asked once --------------------------------------

CHECKS: list[str] = []


class Row:
    def __init__(self, name: str, ok: Any = True) -> None:
        self.name, self.ok = name, ok


@strawberry.type
class Pet:
    name: str

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> Any:
        CHECKS.append(type(obj).__name__)
        return obj.ok  # True, False, or truthy but not True


@strawberry.type
class PetQuery:
    @strawberry.field
    def pet(self) -> Pet:
        return Row("rex", ok=1)  # type: ignore[return-value]

    @strawberry.field
    def bad(self) -> Pet | None:
        return Row("no", ok=False)  # type: ignore[return-value]

    @strawberry.field
    def good(self) -> Pet:
        return Row("yes")  # type: ignore[return-value]


async def test_a_types_own_check_is_asked_as_often_as_graphql_core_asks_it() -> None:
    for document in ("{ pet { name } }", "{ bad { name } }", "{ good { name } }"):
        counts = []
        for executor in EXECUTORS.values():
            CHECKS.clear()
            schema = Quiet(query=PetQuery, execution_context_class=executor)
            result = outcome(await schema.execute(document))
            counts.append((result, len(CHECKS)))
        assert counts[0] == counts[1], document
        assert counts[1][1] == 1


READS: list[str] = []


class Properties:
    @property
    def count(self) -> int:  # Int, but beyond 32 bits: refused
        READS.append("count")
        return 2**40

    @property
    def name(self) -> Any:  # String!, from a coroutine
        READS.append("name")

        async def load() -> str:
            return "loaded"

        return load()

    @property
    def flag(self) -> bool:  # Boolean, raises
        READS.append("flag")
        raise RuntimeError("cannot read flag")


@strawberry.type
class Thing:
    count: int | None
    name: str
    flag: bool | None


@strawberry.type
class ThingQuery:
    thing: Thing


async def test_a_leaf_is_read_once_whatever_its_value() -> None:
    seen = []
    for executor in EXECUTORS.values():
        READS.clear()
        schema = Quiet(query=ThingQuery, execution_context_class=executor)
        root = ThingQuery(thing=Properties())  # type: ignore[arg-type]
        result = outcome(await schema.execute("{ thing { count name flag } }", root_value=root))
        seen.append((result, list(READS)))
    assert seen[0] == seen[1]
    assert seen[1][1] == ["count", "name", "flag"]
    assert [e["path"] for e in seen[1][0][1]] == [["thing", "count"], ["thing", "flag"]]


# -- resolver arguments named like the executor's parameters ------------------------------


@strawberry.type
class Named:
    @strawberry.field
    def events(self, source: str | None = None) -> str:
        return f"events from {source}"

    @strawberry.field
    def clash(self, info: str | None = None) -> str:  # a GraphQL argument, not the info
        return f"clash {info}"


async def test_a_resolver_may_have_an_argument_named_source() -> None:
    def schema_of(executor: Any) -> Quiet:
        return Quiet(query=Named, execution_context_class=executor)

    plain, fast = await both(schema_of, '{ a: events(source: "git") b: events }')
    assert fast == plain == ([("a", "events from git"), ("b", "events from None")], [])
    # One named info fails in Strawberry's own wrapper, which gets two values for it: the
    # same error on both.
    plain, fast = await both(schema_of, '{ clash(info: "x") }')
    assert fast == plain
    assert fast[0] is None
    assert "multiple values for argument 'info'" in fast[1][0]["message"]


# -- custom scalars that answer later, and Flag enums ------------------------------------------


async def _later(value: Any) -> str:
    return f"<{value}>"


Late = NewType("Late", str)


@strawberry.type
class Tagged:
    tag: Late


@strawberry.type
class TaggedQuery:
    tagged: Tagged


async def test_a_scalar_that_serializes_to_an_awaitable_is_awaited() -> None:
    config = StrawberryConfig(
        scalar_map={Late: strawberry.scalar(name="Late", serialize=_later, parse_value=str)}
    )

    def schema_of(executor: Any) -> Quiet:
        return Quiet(query=TaggedQuery, execution_context_class=executor, config=config)

    root = TaggedQuery(tagged=Tagged(tag=Late("x")))
    plain, fast = await both(schema_of, "{ tagged { tag } }", root_value=root)
    assert fast == plain == ([("tagged", [("tag", "<x>")])], [])


@strawberry.enum
class Perm(enum.Flag):
    READ = 1
    WRITE = 2


@strawberry.type
class Grant:
    who: str
    perm: Perm | None


@strawberry.type
class GrantQuery:
    grant: Grant | None


async def test_a_flag_value_that_is_no_member_is_an_error_of_its_field() -> None:
    def schema_of(executor: Any) -> Quiet:
        return Quiet(query=GrantQuery, execution_context_class=executor)

    for perm, name in ((Perm.READ, "READ"), (Perm.READ | Perm.WRITE, None)):
        root = GrantQuery(grant=Grant(who="ann", perm=perm))
        plain, fast = await both(schema_of, "{ grant { who perm } }", root_value=root)
        assert fast == plain
        assert fast[0] == [("grant", [("who", "ann"), ("perm", name)])]
        assert [e["path"] for e in fast[1]] == ([] if name else [["grant", "perm"]])


# -- the resolve info a link's resolver is given can be copied ------------------------------


@strawberry.type
class Label:
    label: str


@strawberry.type
class Copier:
    @strawberry.field
    def child(self, info: strawberry.Info) -> Label:
        copied = copy.copy(info._raw_info)
        return Label(label=f"{copied.field_name} at {'.'.join(map(str, copied.path.as_list()))}")


@strawberry.type
class CopierQuery:
    item: Copier


async def test_a_links_resolve_info_can_be_copied() -> None:
    def schema_of(executor: Any) -> Quiet:
        return Quiet(query=CopierQuery, execution_context_class=executor)

    root = CopierQuery(item=Copier())
    plain, fast = await both(schema_of, "{ item { child { label } } }", root_value=root)
    assert fast == plain == ([("item", [("child", [("label", "child at item.child")])])], [])
