"""The executor: graphql-core's, with fast paths for the most common fields there are.

Most of a large response is leaf fields read straight off a view (``id``, ``name``,
``status``): a dashboard of 200 services has about 2,400 of them. graphql-core resolves each
like any other field: it makes a response path and a resolve info, calls Strawberry's
resolver, asks twice whether the result is awaitable and walks the type wrappers to
complete it, about 5 µs a field on a 2.6 GHz core. A field with no resolver of its own and a
scalar or enum type needs none of that: read the attribute and coerce it.

The fast path only ever takes the value it is sure of. Anything else (null, an awaitable,
a value the type refuses) goes the general way, so results and errors are exactly
graphql-core's; tests/graph/test_execution.py checks this against the unmodified executor.

Fields with a resolver of their own go through Strawberry's resolver wrapper, which
converts every argument, builds its Info and chains field extensions, about 8 µs a call;
the dashboard calls 600 of them. A resolver with no extensions, no exception handlers and
only scalar arguments (which Strawberry passes through unconverted) is called directly
instead, with the same arguments, through graphql-core's middleware seam.

An object of its own type, outside ``@defer``, goes straight to its fields, skipping four
graphql-core calls that only pass it on.

This overrides graphql-core's ``execute_fields`` (3.3), whose general branch it repeats, and
``complete_value``. If Strawberry stops marking default resolvers, renames its resolver
wrapper or its exception handlers, the fast paths for them switch themselves off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import strawberry
from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLFieldResolver,
    GraphQLID,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import StrawberryOptional
from strawberry.types.field import StrawberryField

DEFINITION: Final = GraphQLCoreConverter.DEFINITION_BACKREF
# Values that are never awaitable; for any other type the awaitable check runs.
PLAIN_TYPES: Final = frozenset({str, int, float, bool, datetime})


@dataclass(frozen=True, slots=True)
class LeafPlan:
    """How to resolve a plain leaf field without the general machinery."""

    attribute: str
    coerce: Any  # the leaf type's coerce_output_value
    nullable: bool
    unchanged: type | None  # values of exactly this type coerce to themselves


def leaf_plan(field: GraphQLField) -> LeafPlan | None:
    """The plan for ``field`` when it is a plain attribute of a scalar or enum type, else
    None. A field qualifies only when Strawberry itself would read the attribute without
    an info object: its resolver is marked as the default one (no resolver, no field
    extensions, no permission classes, no exception handlers)."""
    if not getattr(field.resolve, "_is_default", False):
        return None
    definition = (field.extensions or {}).get(DEFINITION)
    if (
        not isinstance(definition, StrawberryField)
        or definition.default_resolver is not getattr
        # Strawberry marks a field without a resolver as default even when permission
        # classes or field extensions guard it: those must run.
        or not definition.is_basic_field
        or definition.permission_classes
    ):
        return None
    nullable = not isinstance(field.type, GraphQLNonNull)
    leaf = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    if not isinstance(leaf, (GraphQLScalarType, GraphQLEnumType)):
        return None
    return LeafPlan(definition.python_name, leaf.coerce_output_value, nullable, UNCHANGED.get(leaf))


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

    def __call__(self, source: Any, info: GraphQLResolveInfo[Any], **arguments: Any) -> Any:
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
        parameters[schema.config.name_converter.from_argument(argument)] = argument.python_name
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


class FastPaths:
    """What the fast paths know of one schema, kept on the schema so that it goes with it:
    each field's leaf plan and each resolver's direct call. It is also graphql-core's
    middleware seam, used to swap Strawberry's wrapper for the direct call on the fields
    that have one (only when there is no real middleware)."""

    def __init__(self, schema: GraphQLSchema) -> None:
        strawberry_schema = schema._strawberry_schema  # type: ignore[attr-defined]
        # id(resolve function) -> (the function, its direct call); id(field) -> (the
        # field, its plan). Fields are unhashable (they define __eq__); both live as long
        # as the schema, and are kept here to be sure of the ids.
        self._calls: dict[int, tuple[GraphQLFieldResolver, DirectCall]] = {}
        self._leaves: dict[int, tuple[GraphQLField, LeafPlan | None]] = {}
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

    def get_field_resolver(self, resolve: GraphQLFieldResolver) -> GraphQLFieldResolver:
        known = self._calls.get(id(resolve))
        if known is not None and known[0] is resolve:
            return known[1]
        return resolve


# A selection's fields in order, each with its leaf plan (None: the general path).
Steps = tuple[tuple[str, FieldDetailsList, LeafPlan | None], ...]


class Executor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per operation: id(grouped field set) -> (the set, its steps or None). graphql-core
        # memoises a selection's grouped field set per operation, so every item of a list
        # of 200 services shares one, and one plan.
        self._steps: dict[int, tuple[GroupedFieldSet, Steps | None]] = {}
        middleware = self.middleware_manager
        # Strawberry always passes a manager; it matters when it holds middleware (a schema
        # extension with a resolve hook), which must see every field.
        self._fast = middleware is None or not middleware.middlewares
        self._paths = FastPaths.of(self.schema)
        if self._fast:
            self.middleware_manager = self._paths  # type: ignore[assignment]

    def _plan(self, parent_type: GraphQLObjectType, fields: GroupedFieldSet) -> Steps | None:
        steps = []
        for response_name, field_details_list in fields.items():
            field = parent_type.fields.get(field_details_list[0].node.name.value)
            plan = None if field is None else self._paths.leaf_plan(field)
            steps.append((response_name, field_details_list, plan))
        if all(plan is None for _, _, plan in steps):
            return None
        return tuple(steps)

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[Any]:
        # An object of its type, outside any @defer: straight to its fields. graphql-core
        # gets there through four calls (the non-null wrapper, the object, its collected
        # subfields, the incremental executor), each costing more than the check here; a
        # dashboard completes a thousand objects.
        object_type = (
            return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
        )
        if (
            self._fast
            and position_context is None
            and isinstance(object_type, GraphQLObjectType)
            and result is not None
            and result is not Undefined
            and not isinstance(result, Exception)
            and (object_type.is_type_of is None or object_type.is_type_of(result, info) is True)
        ):
            grouped_field_set, new_defer_usages, _ = self.collect_subfields(
                object_type, field_details_list
            )
            if not new_defer_usages:
                return self.execute_fields(object_type, result, path, grouped_field_set, None)
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if not self._fast:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        cached = self._steps.get(id(grouped_field_set))
        if cached is None or cached[0] is not grouped_field_set:
            cached = (grouped_field_set, self._plan(parent_type, grouped_field_set))
            self._steps[id(grouped_field_set)] = cached
        steps = cached[1]
        if steps is None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )

        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list, plan in steps:
                if plan is not None:
                    try:
                        # Undefined: no such attribute (String would coerce it to text).
                        value = getattr(source_value, plan.attribute, Undefined)
                    except Exception:  # a property that raised: reported at its field
                        value = Undefined
                    if type(value) is plan.unchanged:
                        results[response_name] = value
                        continue
                    if value is None:
                        if plan.nullable:
                            results[response_name] = None
                            continue
                    elif value is not Undefined and (
                        type(value) in PLAIN_TYPES
                        # An exception is a field error; String would coerce it to its text.
                        or not (is_awaitable(value) or isinstance(value, Exception))
                    ):
                        try:
                            coerced = plan.coerce(value)
                        except Exception:  # the general path reports it, located
                            coerced = None
                        if coerced is not None and coerced is not Undefined:
                            results[response_name] = coerced
                            continue
                # graphql-core's execute_fields, for one field.
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise

        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                field = awaitable_fields[0]
                results[field] = await results[field]
            else:
                awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()
