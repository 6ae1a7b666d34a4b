"""What the executor's fast paths know of a schema, worked out once per schema.

A field qualifies for a fast path only when Strawberry itself would do nothing but what
the fast path does: read an attribute (a field without a resolver of its own), or call
its resolver with its arguments as graphql-core coerced them. graph.execution uses these
plans; graph/execution.py's module note says when they are taken.

Knowing that rests on Strawberry details: its marker on default resolvers (``_is_default``),
the name of its resolver wrapper (``_resolver``), its exception handlers
(``schema_converter._exception_handler_specs``) and the name of the type check it
generates. Should Strawberry change one, the fast paths that rest on it switch themselves
off, and tests/graph/test_execution.py notices the ones that do not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import EnumMeta
from typing import Any, Final

import strawberry
from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLFieldResolver,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
)
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import StrawberryOptional
from strawberry.types.field import StrawberryField

DEFINITION: Final = GraphQLCoreConverter.DEFINITION_BACKREF
# Values that are never awaitable; for any other type the awaitable check runs.
PLAIN_TYPES: Final = frozenset({str, int, float, bool, datetime})


@dataclass(frozen=True, slots=True)
class LeafPlan:
    """How to resolve a plain leaf field without the general machinery."""

    field: GraphQLField
    attribute: str
    leaf_type: GraphQLScalarType | GraphQLEnumType
    nullable: bool
    unchanged: type | None  # values of exactly this type coerce to themselves
    members: type | None = None  # values of exactly this enum class may coerce to:
    names: dict[Any, str] = dataclasses.field(default_factory=dict)  # their names here


def plain_attribute(field: GraphQLField) -> str | None:
    """The attribute ``field`` reads when Strawberry itself would only read it, without an
    info object: its resolver is marked as the default one (no resolver, no field
    extensions, no permission classes, no exception handlers); else None."""
    if not getattr(field.resolve, "_is_default", False):
        return None
    definition = (field.extensions or {}).get(DEFINITION)
    if (
        not isinstance(definition, StrawberryField)
        or definition.default_resolver is not getattr
        # Strawberry marks a field without a resolver of its own as default even when
        # permission classes, field extensions or exception handlers guard it: those must
        # run. is_basic_field (no resolver, no extensions) is what rules them out.
        or not definition.is_basic_field
        or definition.permission_classes
    ):
        return None
    return definition.python_name


def leaf_plan(field: GraphQLField) -> LeafPlan | None:
    """The plan for ``field`` when it is a plain attribute of a scalar or enum type, else
    None."""
    attribute = plain_attribute(field)
    if attribute is None:
        return None
    nullable = not isinstance(field.type, GraphQLNonNull)
    leaf = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    if not isinstance(leaf, (GraphQLScalarType, GraphQLEnumType)):
        return None
    members, names = _enum_names(leaf)
    return LeafPlan(field, attribute, leaf, nullable, UNCHANGED.get(leaf), members, names)


def _enum_names(leaf: GraphQLScalarType | GraphQLEnumType) -> tuple[type | None, dict[Any, str]]:
    """For a Strawberry enum: its Python class and each member's GraphQL name. Strawberry
    finds a member's name by a search through the type's values on every call (about
    1 µs); the answer for a member never changes. A value of the class that is no member
    (a combination of Flag members) is not in the table: Strawberry reports it as an
    error, on the general path."""
    wrapped = getattr(leaf, "wrapped_cls", None)
    if not isinstance(leaf, GraphQLEnumType) or not isinstance(wrapped, EnumMeta):
        return None, {}
    names: dict[Any, str] = {}
    member: Any
    for member in wrapped:
        try:
            names[member] = leaf.coerce_output_value(member)
        except Exception:
            continue  # no name: the general path reports it
    return wrapped, names


# graphql-core's String and ID give a str back as it is, and Boolean a bool; Int and Float
# check a range, and custom scalars may do anything.
UNCHANGED: Final[dict[GraphQLScalarType | GraphQLEnumType, type]] = {
    GraphQLString: str,
    GraphQLID: str,
    GraphQLBoolean: bool,
}


# Argument types Strawberry hands to a resolver as graphql-core coerced them.
PASSED_THROUGH: Final[tuple[object, ...]] = (int, str, float, bool, strawberry.ID)


@dataclass(frozen=True, slots=True)
class DirectCall:
    """A field's own resolver, called the way Strawberry would call it."""

    field: StrawberryField
    function: Callable[..., Any]
    parameters: dict[str, str]  # GraphQL argument name -> the function's parameter
    pass_self: bool
    source_as: tuple[str, ...]  # parameters that receive the source (root, parent)
    info_as: str | None
    info_class: Callable[..., Any]

    # ``info``: graphql-core's resolve info, or graph.execution's LazyInfo standing for it.
    # Positional-only: a resolver may well have arguments named "source" or "info".
    def __call__(self, source: Any, info: Any, /, **arguments: Any) -> Any:
        parameters = self.parameters
        kwargs = {parameters[name]: value for name, value in arguments.items()}
        for name in self.source_as:
            kwargs[name] = source
        if self.info_as is not None:
            kwargs[self.info_as] = self.info_class(_raw_info=info, _field=self.field)
        if self.pass_self:
            return self.function(source, **kwargs)
        return self.function(**kwargs)


def direct_call(field: GraphQLField, schema: strawberry.Schema) -> DirectCall | None:
    """The direct call for ``field`` when Strawberry's wrapper would do nothing but pass
    its arguments through, else None."""
    definition = (field.extensions or {}).get(DEFINITION)
    if not isinstance(definition, StrawberryField):
        return None
    resolver = definition.base_resolver
    if (
        resolver is None
        or definition.extensions
        or definition.is_subscription
        or definition.is_async
        or getattr(field.resolve, "__name__", "") != "_resolver"  # Strawberry's sync wrapper
        # Handlers turn exceptions into union members; unknown to this Strawberry: unsure.
        or getattr(schema.schema_converter, "_exception_handler_specs", True)
        or not callable(resolver.wrapped_func)
    ):
        return None
    parameters = {}
    for argument in definition.arguments:
        given = argument.type
        if type(given) is StrawberryOptional:  # not Maybe, which wraps values in Some
            given = given.of_type
        if not any(given is kind for kind in PASSED_THROUGH):
            return None
        name = schema.config.name_converter.from_argument(argument)
        if name == "info":  # Strawberry's wrapper fails on it (two values for `info`): as it
            return None
        parameters[name] = argument.python_name
    return DirectCall(
        field=definition,
        function=resolver.wrapped_func,
        parameters=parameters,
        pass_self=resolver.self_parameter is not None,
        source_as=tuple(
            p.name for p in (resolver.root_parameter, resolver.parent_parameter) if p is not None
        ),
        info_as=resolver.info_parameter.name if resolver.info_parameter is not None else None,
        info_class=schema.config.info_class,
    )


@dataclass(frozen=True, slots=True)
class LinkShape:
    """A field whose value is an object, or a list of objects, of one object type, and
    whose resolver is a plain attribute or a direct call."""

    field: GraphQLField
    attribute: str | None  # read this attribute, or:
    call: DirectCall | None  # call this
    nullable: bool
    is_list: bool
    item_type: GraphQLOutputType  # a list's items, with their non-null wrapper
    items_nullable: bool
    object_type: GraphQLObjectType


def link_shape(field: GraphQLField, call: DirectCall | None) -> LinkShape | None:
    attribute = None if call is not None else plain_attribute(field)
    if call is None and attribute is None:
        return None
    nullable = not isinstance(field.type, GraphQLNonNull)
    item_type = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    is_list = False
    if isinstance(item_type, GraphQLList):
        is_list, item_type = True, item_type.of_type
    items_nullable = not isinstance(item_type, GraphQLNonNull)
    named = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
    if not isinstance(named, GraphQLObjectType) or not known_type_check(named):
        return None
    return LinkShape(field, attribute, call, nullable, is_list, item_type, items_nullable, named)


def known_type_check(object_type: GraphQLObjectType) -> bool:
    """The type has no is_type_of, or Strawberry's own, which reads neither the info
    object nor anything awaitable; one of a type's own could do either."""
    check = object_type.is_type_of
    return check is None or check.__qualname__.endswith("_get_is_type_of.<locals>.is_type_of")


class FastPaths:
    """What the fast paths know of one schema, kept on the schema so that it goes with it:
    each field's leaf plan and link shape, each resolver's direct call, and which types'
    checks are Strawberry's own. It is also graphql-core's middleware seam, used to swap
    Strawberry's wrapper for the direct call on the fields that have one (only when there
    is no real middleware)."""

    def __init__(self, schema: GraphQLSchema) -> None:
        strawberry_schema = schema._strawberry_schema  # type: ignore[attr-defined]
        # id(resolve function) -> (the function, its direct call); id(field) -> (the
        # field, its plan). Fields are unhashable (they define __eq__); both live as long
        # as the schema, and are kept here to be sure of the ids.
        self._calls: dict[int, tuple[GraphQLFieldResolver, DirectCall]] = {}
        self._leaves: dict[int, tuple[GraphQLField, LeafPlan | None]] = {}
        self._links: dict[int, tuple[GraphQLField, LinkShape | None]] = {}
        self._checks: dict[int, tuple[GraphQLObjectType, bool]] = {}
        for named in schema.type_map.values():
            if isinstance(named, GraphQLObjectType) and not named.name.startswith("__"):
                for field in named.fields.values():
                    call = direct_call(field, strawberry_schema)
                    if call is not None and field.resolve is not None:
                        self._calls[id(field.resolve)] = (field.resolve, call)

    @staticmethod
    def of(schema: GraphQLSchema) -> FastPaths:
        known = getattr(schema, "_enclii_fast_paths", None)
        if not isinstance(known, FastPaths):
            known = FastPaths(schema)
            schema._enclii_fast_paths = known  # type: ignore[attr-defined]
        return known

    def leaf_plan(self, field: GraphQLField) -> LeafPlan | None:
        known = self._leaves.get(id(field))
        if known is None or known[0] is not field:
            known = self._leaves[id(field)] = (field, leaf_plan(field))
        return known[1]

    def link_shape(self, field: GraphQLField) -> LinkShape | None:
        known = self._links.get(id(field))
        if known is None or known[0] is not field:
            call = self._calls.get(id(field.resolve)) if field.resolve is not None else None
            direct = call[1] if call is not None and call[0] is field.resolve else None
            known = self._links[id(field)] = (field, link_shape(field, direct))
        return known[1]

    def known_type_check(self, object_type: GraphQLObjectType) -> bool:
        known = self._checks.get(id(object_type))
        if known is None or known[0] is not object_type:
            known = self._checks[id(object_type)] = (object_type, known_type_check(object_type))
        return known[1]

    def get_field_resolver(self, resolve: GraphQLFieldResolver) -> GraphQLFieldResolver:
        known = self._calls.get(id(resolve))
        if known is not None and known[0] is resolve:
            return known[1]
        return resolve
