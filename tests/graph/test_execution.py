"""graph.execution.Executor: its fast path for plain leaf fields answers exactly as the
unmodified executor does: the same data and the same errors (message, path, locations)."""

from __future__ import annotations

import asyncio
import enum
import inspect
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, NewType

import pytest
import strawberry
from graphql import GraphQLError, GraphQLFormattedError, GraphQLObjectType, GraphQLResolveInfo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strawberry.extensions import SchemaExtension
from strawberry.permission import BasePermission
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext as StrawberryExecutionContext
from strawberry.types import ExecutionResult

from bench.graphql_dashboard import DASHBOARD
from graph.execution import Executor
from graph.plans import FastPaths
from graph.schema import build_schema
from graph.schema import schema as enclii_schema
from resolvers.context import Context
from tests.factories import add_release, add_runtime, make_environment, make_project, make_service
from tests.helpers import execute_in_process

BASE: Final = StrawberryGraphQLCoreExecutionContext

# -- a synthetic schema with every kind of leaf ---------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Foreign(enum.Enum):
    """Not the schema's enum: Color's type must refuse it, or not, the same way twice."""

    RED = "red"
    GREEN = "green"


def _shaky(value: Any) -> Any:
    """A custom scalar's serialize: None for "", refusal for an int, else its text."""
    if isinstance(value, int):
        raise ValueError(f"Shaky cannot represent {value!r}")
    return None if value == "" else str(value)


Shaky = NewType("Shaky", str)


@strawberry.type
class Leaf:
    label: str
    weight: int | None
    color: Color | None


@strawberry.type
class Item:
    text: str
    maybe_text: str | None
    count: int
    maybe_count: int | None
    ratio: float
    maybe_ratio: float | None
    flag: bool
    maybe_flag: bool | None
    ident: strawberry.ID
    maybe_ident: strawberry.ID | None
    at: datetime
    maybe_at: datetime | None
    color: Color
    maybe_color: Color | None
    child: Leaf
    maybe_child: Leaf | None
    children: list[Leaf]
    maybe_kids: list[Leaf] | None  # a failing item nulls the list, not the item
    data: JSON | None  # serializes any value as it is
    shaky: Shaky

    @strawberry.field
    def shout(self) -> str | None:
        """A resolver of its own, reading one of the attributes."""
        value = getattr(self, "text", None)
        return value.upper() if isinstance(value, str) else None

    @strawberry.field
    async def later(self) -> int:
        await asyncio.sleep(0)
        return 7

    @strawberry.field
    def echo(
        self,
        word: str,
        times: int = 1,
        loud: bool | None = None,
        key: strawberry.ID | None = None,
        scale: float | None = None,
    ) -> str:
        """Scalar arguments, given, defaulted and left out."""
        said = word * times
        return f"{said.upper() if loud else said}/{key!r}/{scale!r}"

    @strawberry.field
    def pick(self, color: Color, colors: list[Color] | None = None) -> str:
        """Arguments Strawberry converts (enums)."""
        return f"{color.name}/{[c.name for c in colors or []]}"

    @strawberry.field
    def where(self, info: strawberry.Info) -> str:
        """The resolver's Info: its field and path."""
        return f"{info.field_name}@{'.'.join(str(p) for p in info.path.as_list())}"

    @strawberry.field
    def fails(self) -> str | None:
        raise ValueError("the resolver failed")

    @strawberry.field
    def kid(self, info: strawberry.Info, index: int = 0) -> Leaf | None:
        """A link with a resolver of its own: an argument, and the info, which it reads."""
        if info.field_name != "kid" or info.path.key not in ("kid", "k2"):
            raise AssertionError(f"wrong info: {info.field_name} at {info.path.as_list()}")
        kids = getattr(self, "kids", None)
        return kids[index] if isinstance(kids, list) and len(kids) > index else None

    @strawberry.field
    def kids(self) -> list[Leaf]:
        """A list link with a resolver of its own, non-null all the way down."""
        return getattr(self, "kids", None)  # type: ignore[return-value]  # anything

    @strawberry.field
    def root_kind(self, root: Any) -> str:
        """The source, given by name."""
        return f"{type(root).__name__}/{getattr(root, 'count', None)!r}"


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Cat(Named):
    lives: int


@strawberry.type
class Dog(Named):
    good: bool | None


@strawberry.type
class Query:
    version: str
    maybe_number: int | None
    item: Item
    maybe_item: Item | None
    items: list[Item]
    pets: list[Named]

    @strawberry.field
    def hello(self, name: str | None = None) -> str:
        """A root resolver (no parent object) with an optional argument."""
        return f"hello {name!r}"


class Quiet(strawberry.Schema):
    def process_errors(
        self,
        errors: list[GraphQLError],
        execution_context: StrawberryExecutionContext | None = None,
    ) -> None:
        """Errors are what these tests compare, not incidents to log (with tracebacks)."""


def synthetic(
    executor: type[StrawberryGraphQLCoreExecutionContext],
    extensions: list[type[SchemaExtension]] | None = None,
) -> strawberry.Schema:
    return Quiet(
        query=Query,
        types=[Cat, Dog],
        extensions=extensions or [],
        execution_context_class=executor,
        config=StrawberryConfig(
            scalar_map={Shaky: strawberry.scalar(name="Shaky", serialize=_shaky, parse_value=str)}
        ),
    )


FAST = synthetic(Executor)
PLAIN = synthetic(BASE)

# -- values: recipes, built afresh for each run (a coroutine can be awaited only once) -----


class Opaque:
    """Something no scalar accepts, with a stable repr for the error messages."""

    def __repr__(self) -> str:
        return "Opaque()"


class Oops(Exception):
    """An exception of a class of ours: String would take it as its str()."""


@dataclass(frozen=True)
class Awaiting:
    """The attribute holds a coroutine that returns ``value``."""

    value: Any


@dataclass(frozen=True)
class Failing:
    """The attribute holds a coroutine that raises."""

    message: str


@dataclass(frozen=True)
class Missing:
    """The source object has no such attribute."""


@dataclass(frozen=True)
class Obj:
    """A source object of a plain class, with these attributes (Missing ones left out)."""

    attrs: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Pet:
    """An instance of the Strawberry class ``kind`` (interfaces check isinstance)."""

    kind: type[Cat] | type[Dog]
    attrs: tuple[tuple[str, Any], ...]


class Source:
    """A plain object: the fields read its attributes."""


async def _returning(value: Any) -> Any:
    return value


async def _raising(message: str) -> Any:
    raise ValueError(message)


def build(recipe: Any, coroutines: list[Coroutine[Any, Any, Any]]) -> Any:
    if isinstance(recipe, Awaiting):
        coroutine = _returning(build(recipe.value, coroutines))
        coroutines.append(coroutine)
        return coroutine
    if isinstance(recipe, Failing):
        coroutine = _raising(recipe.message)
        coroutines.append(coroutine)
        return coroutine
    if isinstance(recipe, Obj):
        obj = Source()
        for name, value in recipe.attrs:
            if not isinstance(value, Missing):
                setattr(obj, name, build(value, coroutines))
        return obj
    if isinstance(recipe, Pet):
        return recipe.kind(**{name: build(value, coroutines) for name, value in recipe.attrs})
    if isinstance(recipe, list):
        return [build(value, coroutines) for value in recipe]
    return recipe


def anything() -> st.SearchStrategy[Any]:
    """Values of every kind, most of them wrong for any one field."""
    return st.one_of(
        st.none(),
        st.text(max_size=4),
        st.integers(min_value=-(2**40), max_value=2**40),
        st.sampled_from([2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 10**30]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.datetimes(),
        st.sampled_from([*Color, *Foreign]),
        st.builds(Opaque),
        st.builds(ValueError, st.sampled_from(["held", "an exception"])),
        st.builds(Oops, st.sampled_from(["held", "ours"])),
        st.lists(st.integers(0, 9), max_size=2),
        st.dictionaries(st.text(max_size=2), st.integers(0, 9), max_size=1),
    )


VALID: Final[dict[str, st.SearchStrategy[Any]]] = {
    "str": st.text(max_size=6),
    "int": st.integers(min_value=-(2**31), max_value=2**31 - 1),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "bool": st.booleans(),
    "ID": st.one_of(st.text(max_size=6), st.integers(0, 10**6)),
    "datetime": st.datetimes(timezones=st.sampled_from([None, UTC])),
    "enum": st.sampled_from(list(Color)),
    "json": st.one_of(st.dictionaries(st.text(max_size=2), st.integers(), max_size=2), st.text()),
    "shaky": st.one_of(st.text(max_size=3), st.integers(0, 2)),
}


def leaf(kind: str) -> st.SearchStrategy[Any]:
    """A value for a leaf field of ``kind``: often right, sometimes anything, sometimes a
    coroutine of either, a failing coroutine, or no attribute at all."""
    plain = st.one_of(VALID[kind], VALID[kind], anything())
    return st.one_of(
        plain,
        plain,
        plain.map(Awaiting),
        st.just(Failing("the awaitable failed")),
        st.just(Missing()),
    )


def obj(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Obj]:
    return st.fixed_dictionaries(fields).map(lambda attrs: Obj(tuple(attrs.items())))


LEAF_FIELDS: Final = {"label": "str", "weight": "int", "color": "enum"}
ITEM_LEAVES: Final = {
    "text": "str",
    "maybe_text": "str",
    "count": "int",
    "maybe_count": "int",
    "ratio": "float",
    "maybe_ratio": "float",
    "flag": "bool",
    "maybe_flag": "bool",
    "ident": "ID",
    "maybe_ident": "ID",
    "at": "datetime",
    "maybe_at": "datetime",
    "color": "enum",
    "maybe_color": "enum",
    "data": "json",
    "shaky": "shaky",
}

leaves = obj({name: leaf(kind) for name, kind in LEAF_FIELDS.items()})
# An object field holds an object, null, a coroutine of an object, or something else.
an_object = st.one_of(leaves, leaves, st.none(), leaves.map(Awaiting), anything())
a_list = st.one_of(
    st.lists(st.one_of(leaves, leaves, st.none()), max_size=3),
    st.lists(leaves, max_size=2).map(Awaiting),
    st.none(),
)
items = obj(
    {
        **{name: leaf(kind) for name, kind in ITEM_LEAVES.items()},
        "child": an_object,
        "maybe_child": an_object,
        "children": a_list,
        "kids": a_list,
        "maybe_kids": a_list,
    }
)
pets = st.lists(
    st.one_of(
        st.fixed_dictionaries({"name": leaf("str"), "lives": leaf("int")}).map(
            lambda attrs: Pet(Cat, tuple(attrs.items()))
        ),
        st.fixed_dictionaries({"name": leaf("str"), "good": leaf("bool")}).map(
            lambda attrs: Pet(Dog, tuple(attrs.items()))
        ),
    ),
    max_size=3,
)
roots = obj(
    {
        "version": leaf("str"),
        "maybe_number": leaf("int"),
        "item": st.one_of(items, items, st.none()),
        "maybe_item": st.one_of(items, items.map(Awaiting), st.none()),
        "items": st.one_of(st.lists(st.one_of(items, items, st.none()), max_size=3), st.none()),
        "pets": st.one_of(pets, pets, st.none()),
    }
)

# -- documents -------------------------------------------------------------------------------

ALL_ITEM_LEAVES: Final = """
    text maybeText count maybeCount ratio maybeRatio flag maybeFlag
    ident maybeIdent at maybeAt color maybeColor data shaky
"""

DOCUMENTS: Final = {
    "every field": f"""
        query Every {{
          __typename version maybeNumber hello h2: hello(name: "you")
          item {{
            __typename {ALL_ITEM_LEAVES} shout later where fails rootKind
            echo(word: "ab", times: 2) pick(color: RED, colors: [BLUE, RED])
            child {{ label weight color }}
            maybeChild {{ __typename label weight color }}
            children {{ label weight color }}
            kid {{ label color }} k2: kid(index: 1) {{ weight }} kids {{ label weight }}
            maybeKids {{ label color }}
          }}
          maybeItem {{ {ALL_ITEM_LEAVES} }}
          items {{ {ALL_ITEM_LEAVES} maybeChild {{ label }} kid {{ label }} }}
          pets {{ __typename name ... on Cat {{ lives }} ... on Dog {{ good }} }}
        }}
    """,
    "aliases, repeats and fragments": """
        query Shapes {
          v1: version v2: version version
          first: maybeItem { a: text b: maybeText text text ...Counts }
          second: maybeItem { ... on Item { ratio flag } ...Counts maybeCount }
          items { ...Counts ...Counts other: count label: text }
          maybeItem { maybeChild { ...LeafParts l2: label } }
          pets { ...on Named { name n: name } ...on Cat { name lives } }
        }
        fragment Counts on Item { count maybeCount c: count }
        fragment LeafParts on Leaf { label weight }
    """,
    "skip and include": """
        query Directives($yes: Boolean!, $no: Boolean!) {
          version @skip(if: $yes)
          maybeNumber @include(if: $yes)
          maybeItem {
            text @include(if: $no)
            count @skip(if: $no)
            maybeCount @include(if: $yes)
            ratio @skip(if: $yes)
            ... @include(if: $yes) { flag ident }
            ... @skip(if: $yes) { maybeFlag }
            ...Named @include(if: $yes)
            __typename @skip(if: $no)
          }
          item @include(if: $yes) { maybeText at }
        }
        fragment Named on Item { color maybeColor }
    """,
    "only the resolver fields": """
        query Resolved($word: String!, $key: ID) {
          maybeItem {
            shout later w1: where where fails
            e1: echo(word: $word) e2: echo(word: "x", loud: true, key: $key, scale: 2)
            e3: echo(word: $word, times: 3, key: 5, scale: 0.5) p: pick(color: BLUE)
          }
          items { where echo(word: "i") }
        }
    """,
}
VARIABLES: Final = {"yes": True, "no": False, "word": "w", "key": "k"}


# -- running one document with one executor --------------------------------------------------


# The data (in order, see ordered()) and the errors, as the client would get them.
Outcome = tuple[Any, list[GraphQLFormattedError]]


def ordered(value: Any) -> Any:
    """``value`` with every dict as its list of items: dicts compare equal in any order,
    and a response's keys must come in the order of the selection."""
    if isinstance(value, dict):
        return [(key, ordered(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [ordered(item) for item in value]
    return value


def outcome(result: ExecutionResult) -> Outcome:
    return ordered(result.data), [error.formatted for error in result.errors or []]


async def run(schema: strawberry.Schema, document: str, recipe: Any) -> Outcome:
    coroutines: list[Coroutine[Any, Any, Any]] = []
    root = build(recipe, coroutines)
    try:
        result = await schema.execute(document, variable_values=VARIABLES, root_value=root)
        # Let what graphql-core settles in the background (after a bubbling error) finish.
        for _ in range(5):
            await asyncio.sleep(0)
    finally:
        # A coroutine whose field was never reached (its parent failed first) was never
        # awaited, by either executor; closing it keeps Python from warning about it.
        for coroutine in coroutines:
            if inspect.getcoroutinestate(coroutine) == inspect.CORO_CREATED:
                coroutine.close()
    return outcome(result)


# -- the differential test -------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recipe=roots)
async def test_fast_path_answers_exactly_as_graphql_core(recipe: Obj) -> None:
    for name, document in DOCUMENTS.items():
        expected = await run(PLAIN, document, recipe)
        got = await run(FAST, document, recipe)
        assert got == expected, name


def _valid_item(**overrides: Any) -> Obj:
    values: dict[str, Any] = {
        "text": "hello",
        "maybe_text": None,
        "count": 3,
        "maybe_count": 4,
        "ratio": 0.5,
        "maybe_ratio": None,
        "flag": True,
        "maybe_flag": False,
        "ident": 42,
        "maybe_ident": "x",
        "at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        "maybe_at": None,
        "color": Color.BLUE,
        "maybe_color": None,
        "child": Obj((("label", "c"), ("weight", None), ("color", Color.RED))),
        "maybe_child": None,
        "children": [],
        "kids": [],
        "maybe_kids": None,
        "data": {"k": [1]},
        "shaky": "s",
    }
    values.update(overrides)
    return Obj(tuple(values.items()))


def _root(**items: Any) -> Obj:
    values: dict[str, Any] = {
        "version": "1",
        "maybe_number": None,
        "item": _valid_item(),
        "maybe_item": _valid_item(),
        "items": [],
        "pets": [],
    }
    values.update(items)
    return Obj(tuple(values.items()))


@pytest.mark.parametrize(
    ("case", "item", "fails"),
    [
        ("null in a non-null field", _valid_item(count=None), True),
        ("a str in an Int field", _valid_item(maybe_count="three"), True),
        ("an int too big for Int", _valid_item(count=2**31), True),
        # String takes any object of a class of ours as its str(); a builtin one it refuses.
        ("an object in a String field", _valid_item(text=Opaque()), False),
        ("a list in a String field", _valid_item(text=[1, 2]), True),
        ("nan in a Float field", _valid_item(maybe_ratio=float("nan")), True),
        ("another enum's member", _valid_item(color=Foreign.GREEN), True),
        ("a str in a DateTime field", _valid_item(maybe_at="yesterday"), True),
        ("a coroutine in a leaf field", _valid_item(text=Awaiting("later")), False),
        ("a coroutine of a wrong value", _valid_item(count=Awaiting("nope")), True),
        ("a coroutine that fails", _valid_item(maybe_text=Failing("no text")), True),
        ("a missing attribute", _valid_item(maybe_flag=Missing()), True),
        ("a missing attribute in a String field", _valid_item(text=Missing()), True),
        ("an exception held in a String field", _valid_item(maybe_text=ValueError("held")), True),
        ("an exception held in an ID field", _valid_item(ident=ValueError("held")), True),
        ("an exception of ours in a String field", _valid_item(text=Oops("held")), True),
        ("an exception held in a JSON field", _valid_item(data=ValueError("held")), True),
        ("a missing attribute in a JSON field", _valid_item(data=Missing()), True),
        ("a custom scalar that serializes to null", _valid_item(shaky=""), True),
        ("a custom scalar that refuses", _valid_item(shaky=7), True),
    ],
)
async def test_known_edge_cases_answer_as_graphql_core(case: str, item: Obj, fails: bool) -> None:
    """The cases the fast path must hand to the general one, each on its own (the
    property test above finds them mixed)."""
    document = DOCUMENTS["every field"]
    expected = await run(PLAIN, document, _root(maybe_item=item, items=[item, item]))
    got = await run(FAST, document, _root(maybe_item=item, items=[item, item]))
    assert got == expected
    # `item` (valid) always has the error of its resolver `fails`; the case is in the others.
    own = [e for e in expected[1] if e.get("path", [""])[0] in ("maybeItem", "items")]
    assert bool(own) == fails, case


def _leaf(label: Any = "l", weight: Any = None, color: Any = None) -> Obj:
    return Obj((("label", label), ("weight", weight), ("color", color)))


LINKS: Final = """
    query Links {
      maybeItem {
        child { label } maybeChild { label weight } children { label }
        kid { label } k2: kid(index: 1) { color } kids { label }
        maybeKids { label color }
      }
      items { maybeChild { label } maybeKids { label } }
    }
"""


@pytest.mark.parametrize(
    ("case", "item"),
    [
        ("a failing item nulls a nullable list", _valid_item(maybe_kids=[_leaf(Failing("no"))])),
        ("null in a list of non-null items", _valid_item(maybe_kids=[_leaf(), None])),
        ("an awaitable item", _valid_item(maybe_kids=[_leaf(), Awaiting(_leaf("later"))])),
        ("an item that fails late", _valid_item(maybe_kids=[Awaiting(_leaf(Failing("late")))])),
        ("a failing item in a non-null list", _valid_item(kids=[_leaf(), _leaf(label=None)])),
        ("a list held in a coroutine", _valid_item(kids=Awaiting([_leaf("a"), _leaf("b")]))),
        ("a tuple, not a list", _valid_item(maybe_kids=(_leaf(), _leaf("t")))),
        ("no list at all", _valid_item(maybe_kids="not a list")),
        ("an exception for an object", _valid_item(maybe_child=ValueError("held"))),
        ("a str for an object", _valid_item(child="text")),
        ("an object that fails late", _valid_item(maybe_child=Awaiting(_leaf(Failing("x"))))),
        ("null for a non-null object", _valid_item(child=None)),
        ("an object's non-null field fails", _valid_item(child=_leaf(label=7.5))),
        ("no attribute for a link", _valid_item(maybe_child=Missing())),
        ("a resolver's object", _valid_item(kids=[_leaf("k0"), _leaf("k1", color=Color.RED)])),
    ],
)
async def test_links_answer_as_graphql_core(case: str, item: Obj) -> None:
    """Links (object and list fields) the fast path completes itself, and the values it
    must hand to graphql-core: each case once, alone (the property test mixes them)."""
    recipe = _root(maybe_item=item, items=[item, _valid_item()])
    expected = await run(PLAIN, LINKS, recipe)
    got = await run(FAST, LINKS, recipe)
    assert got == expected, case


# -- the fast path is really taken, and only where it may be ----------------------------------


class Counting(Executor):
    """The Executor, recording which fields took graphql-core's general path: resolved by
    graphql-core, or read on the fast path and completed by graphql-core."""

    general: list[tuple[str | int, ...]] = []

    def execute_field(self, *args: Any, **kwargs: Any) -> Any:
        path = args[3] if len(args) > 3 else kwargs["path"]
        Counting.general.append(tuple(path.as_list()))
        return super().execute_field(*args, **kwargs)

    def _complete_resolved(self, *args: Any, **kwargs: Any) -> Any:
        Counting.general.append(tuple(args[3].as_list()))
        return super()._complete_resolved(*args, **kwargs)


async def test_plain_leaves_and_links_skip_the_general_path_and_nothing_else_does() -> None:
    counting = synthetic(Counting)
    Counting.general = []
    recipe = _root(maybe_item=_valid_item(maybe_count=None, ratio=Awaiting(1.5)))
    fields = "__typename text maybeText maybeCount ratio shout child { label } count color"
    data, errors = await run(counting, f"{{ maybeItem {{ {fields} }} }}", recipe)
    assert Counting.general == [
        ("maybeItem", "__typename"),
        ("maybeItem", "ratio"),  # an awaitable
        ("maybeItem", "shout"),  # a leaf with a resolver of its own
    ]  # maybeItem and child (plain objects), text (a str), maybeText and maybeCount (null
    # where null is allowed), count (an int), color (a member of the enum's own class) and
    # child's label (a str): the fast paths
    assert errors == []
    assert data == ordered(
        {
            "maybeItem": {
                "__typename": "Item",
                "text": "hello",
                "maybeText": None,
                "maybeCount": None,
                "ratio": 1.5,
                "shout": "HELLO",
                "child": {"label": "c"},
                "count": 3,
                "color": "BLUE",
            }
        }
    )

    Counting.general = []
    recipe = _root(maybe_item=_valid_item(count=None, maybe_count="four"))
    data, errors = await run(counting, "{ maybeItem { text maybeCount count } }", recipe)
    # A str in an Int field: Int refuses it, reported where the fast path read it; null in
    # a non-null field: graphql-core completes it (and reports it).
    assert Counting.general == [("maybeItem", "count")]
    assert data == ordered({"maybeItem": None})
    assert [e["path"] for e in errors] == [["maybeItem", "maybeCount"], ["maybeItem", "count"]]


class SeeEveryField(SchemaExtension):
    """Middleware: a schema extension with a resolve hook, which must see every field."""

    seen: list[tuple[str | int, ...]] = []

    def resolve(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo[Any],
        *args: Any,
        **kw: Any,
    ) -> Any:
        SeeEveryField.seen.append(tuple(info.path.as_list()))
        return _next(root, info, *args, **kw)


async def test_middleware_turns_the_fast_path_off() -> None:
    document = "{ version maybeItem { text count maybeText } }"
    recipe = _root()
    SeeEveryField.seen = []
    expected = await run(synthetic(BASE, [SeeEveryField]), document, recipe)
    seen_by_base = SeeEveryField.seen
    SeeEveryField.seen = []
    got = await run(synthetic(Executor, [SeeEveryField]), document, recipe)
    assert got == expected
    assert got == (
        ordered({"version": "1", "maybeItem": {"text": "hello", "count": 3, "maybeText": None}}),
        [],
    )
    assert SeeEveryField.seen == seen_by_base
    assert ("maybeItem", "text") in SeeEveryField.seen
    assert len(SeeEveryField.seen) == 5


class Deny(BasePermission):
    message = "not for you"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


@strawberry.type
class Guarded:
    public: str
    secret: str | None = strawberry.field(permission_classes=[Deny])


@strawberry.type
class GuardedQuery:
    @strawberry.field
    def guarded(self) -> Guarded:
        return Guarded(public="p", secret="s")


async def test_a_field_with_permission_classes_is_not_read_directly() -> None:
    query = "{ guarded { public secret } }"
    expected = outcome(
        await strawberry.Schema(query=GuardedQuery, execution_context_class=BASE).execute(query)
    )
    got = outcome(
        await strawberry.Schema(query=GuardedQuery, execution_context_class=Executor).execute(query)
    )
    assert expected[0] == ordered({"guarded": {"public": "p", "secret": None}})
    assert [e["path"] for e in expected[1]] == [["guarded", "secret"]]
    assert got == expected


@dataclass
class _Holder:
    maybe_item: Any


class Unreadable:
    text = "fine"

    @property
    def maybe_count(self) -> int:
        raise ValueError("cannot read maybe_count")


async def test_an_attribute_that_raises_fails_only_its_field() -> None:
    query = "{ maybeItem { text maybeCount } }"
    expected = outcome(await PLAIN.execute(query, root_value=_Holder(Unreadable())))
    got = outcome(await FAST.execute(query, root_value=_Holder(Unreadable())))
    assert expected[1][0]["path"] == ["maybeItem", "maybeCount"]
    assert got == expected


# -- the real schema -------------------------------------------------------------------------


def test_the_enclii_schema_executes_with_the_fast_executor() -> None:
    assert enclii_schema.execution_context_class is Executor
    assert build_schema().execution_context_class is Executor


PROJECT: Final = "query P($slug: String!) { project(slug: $slug) { id name slug createdAt } }"


async def test_middleware_on_the_enclii_schema_sees_every_field(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = await make_project(ctx, "shop")
    expected = await _execute(ctx, PROJECT)
    monkeypatch.setattr(enclii_schema, "extensions", (*enclii_schema.extensions, SeeEveryField))
    SeeEveryField.seen = []
    got = await _execute(ctx, PROJECT)
    assert got == expected
    assert got["data"]["project"]["id"] == project.id
    assert got["data"]["project"]["name"] == "Shop"
    assert [p for p in SeeEveryField.seen if p[0] == "project"] == [
        ("project",),
        ("project", "id"),
        ("project", "name"),
        ("project", "slug"),
        ("project", "createdAt"),
    ]


async def _execute(ctx: Context, query: str, **variables: Any) -> dict[str, Any]:
    result = await execute_in_process(ctx, query, variables or {"slug": "shop"})
    # JSON, as the client gets it: the comparison sees exactly what would be sent.
    body = {"data": result.data, "errors": [e.formatted for e in result.errors or []]}
    loaded: dict[str, Any] = json.loads(json.dumps(body))
    return loaded


async def test_the_dashboard_is_the_same_on_both_executors(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = await make_project(ctx, "bench")
    envs = ["dev", "stage", "prod"]
    for env in envs:
        await make_environment(ctx, project, env)
    for i in range(7):
        env = envs[i % 3]
        service = await make_service(
            ctx, "bench", env, f"svc-{i:03d}", routes=[(f"svc-{i:03d}.{env}.example.com", "/")]
        )
        if i % 3 != 2:  # some without a release or runtime: null object fields
            release = await add_release(ctx, service)
            if i % 3 == 0:
                await add_runtime(ctx, service, release)

    fast = await _execute(ctx, DASHBOARD, slug="bench")
    # The same schema, extensions and all, on the unmodified executor.
    monkeypatch.setattr(enclii_schema, "execution_context_class", BASE)
    assert enclii_schema.execution_context_class is BASE
    plain = await _execute(ctx, DASHBOARD, slug="bench")

    assert json.dumps(fast) == json.dumps(plain)  # in order, as sent
    assert fast["errors"] == []
    environments = fast["data"]["project"]["environments"]["nodes"]
    assert [e["name"] for e in environments] == envs
    services = [s for e in environments for s in e["services"]["nodes"]]
    assert sorted(s["name"] for s in services) == [f"svc-{i:03d}" for i in range(7)]
    assert sum(s["latestRelease"] is None for s in services) == 2
    assert sum(s["runtime"] is None for s in services) == 4
    assert all(s["routes"]["nodes"][0]["path"] == "/" for s in services)


@pytest.mark.parametrize(
    ("type_name", "field_name", "kind"),
    [
        ("Project", "environments", "link"),
        ("Environment", "services", "link"),
        ("ServiceConnection", "nodes", "link"),
        ("Service", "latestRelease", "link"),
        ("Service", "runtime", "link"),
        ("Service", "routes", "link"),
        ("RouteConnection", "nodes", "link"),
        ("Service", "name", "leaf"),
        ("Release", "createdAt", "leaf"),
        ("Runtime", "status", "enum"),
    ],
)
def test_the_dashboards_fields_take_the_fast_paths(
    type_name: str, field_name: str, kind: str
) -> None:
    """The fast paths switch themselves off when Strawberry changes a detail they rest on
    (graph/plans.py): answers stay right, the dashboard gets slow. This notices."""
    graphql_schema = enclii_schema._schema
    object_type = graphql_schema.type_map[type_name]
    assert isinstance(object_type, GraphQLObjectType)
    field = object_type.fields[field_name]
    paths = FastPaths.of(graphql_schema)
    if kind == "link":
        assert paths.link_shape(field) is not None
        return
    plan = paths.leaf_plan(field)
    assert plan is not None
    if kind == "enum":
        assert plan.members is not None
        assert set(plan.names.values()) == set(object_type.fields[field_name].type.of_type.values)
