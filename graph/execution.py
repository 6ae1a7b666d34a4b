"""The executor: graphql-core's, with fast paths for the most common fields there are.

Most of a large response is leaf fields read straight off a view (``id``, ``name``,
``status``): a dashboard of 200 services has about 2,400 of them. graphql-core resolves each
like any other field: it makes a response path and a resolve info, calls Strawberry's
resolver, asks twice whether the result is awaitable and walks the type wrappers to
complete it, about 5 µs a field on a 2.6 GHz core. A field with no resolver of its own and a
scalar or enum type needs none of that: read the attribute and coerce it.

The next most common are links: a field whose value is an object, or a list of objects,
of one object type (a service's ``latestRelease``, a connection's ``nodes``); the dashboard
has 800 links and 1,000 objects. When its resolver is a plain attribute or a direct call
(below), the link is resolved here and its object goes straight to its fields: no resolve
info unless the resolver reads it, no walk through the type wrappers, and one loop for the
items of a list.

Fields with a resolver of their own go through Strawberry's resolver wrapper, which
converts every argument, builds its Info and chains field extensions, about 8 µs a call;
the dashboard calls 600 of them. A resolver with no extensions, no exception handlers and
only scalar arguments (which Strawberry passes through unconverted) is called directly
instead, with the same arguments (graph.plans).

The fast paths only complete the values they are sure of. A value they are not sure of
(null in a non-null field, an awaitable, an exception, a value of another kind) is
completed by graphql-core, from the value already read: an attribute is read once, a
resolver called once, a type's own check asked as often as graphql-core asks it. Errors
are raised and located as graphql-core's ``execute_field`` and ``complete_iterable_value``
do it, whose error handling this repeats, and sub-fields are collected when an object
comes, as there. tests/graph/test_execution.py and test_execution_edges.py compare the
results and errors with the unmodified executor's. Middleware (a schema extension with a
resolve hook) must see every field, so it switches the fast paths off; ``@defer`` and
``@stream`` take graphql-core's way.

One difference is left: a resolver on the fast path that reads ``info._raw_info`` (not
Strawberry's public API) finds a ``LazyInfo`` standing for graphql-core's resolve info,
which it makes on first use.

This overrides graphql-core's ``execute_fields`` (3.3), whose general branch it repeats,
and ``complete_value``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from graphql import (
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import collect_iterator_awaitables, to_nodes
from graphql.execution.values import get_argument_values
from graphql.pyutils import AwaitableOrValue, Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graph.plans import PLAIN_TYPES, FastPaths, LeafPlan, LinkShape

# What a completed field is unless it is still pending: no need to ask if it is awaitable.
SETTLED: Final = frozenset({dict, list, type(None), *PLAIN_TYPES})

# Path is a named tuple whose constructor is a Python function; the tuple's own is not.
_new_path: Final = partial(tuple.__new__, Path)


@dataclass(frozen=True, slots=True)
class LinkPlan:
    """A link in one operation: its shape and its arguments (fixed for the operation, as
    its variables are). The fields selected on its objects are collected when an object
    comes, as graphql-core does: collecting can fail (a directive's variable), and that is
    an error of the field, only when it has a value."""

    shape: LinkShape
    arguments: dict[str, Any]


# A selection's fields in order, each with its plan (None: the general path).
Steps = tuple[tuple[str, FieldDetailsList, LeafPlan | LinkPlan | None], ...]


class LazyInfo:
    """A resolve info made only when a resolver reads it: most resolvers on the fast path
    return a value their parent prefetched and never look."""

    __slots__ = ("_details", "_executor", "_field", "_info", "_parent", "_path")

    def __init__(
        self,
        executor: Executor,
        field: GraphQLField,
        details: FieldDetailsList,
        parent: GraphQLObjectType,
        path: Path,
    ) -> None:
        self._executor = executor
        self._field = field
        self._details = details
        self._parent = parent
        self._path = path
        self._info: GraphQLResolveInfo[Any] | None = None

    def real(self) -> GraphQLResolveInfo[Any]:
        if self._info is None:
            self._info = self._executor.build_resolve_info(
                self._field, to_nodes(self._details), self._parent, self._path
            )
        return self._info

    def __getattr__(self, name: str) -> Any:
        if name in LazyInfo.__slots__:  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.real(), name)


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

    # -- planning ------------------------------------------------------------------------

    def _plan(self, parent_type: GraphQLObjectType, fields: GroupedFieldSet) -> Steps | None:
        steps = []
        for response_name, field_details_list in fields.items():
            field = parent_type.fields.get(field_details_list[0].node.name.value)
            plan: LeafPlan | LinkPlan | None = None
            if field is not None:
                plan = self._paths.leaf_plan(field) or self._link_plan(field, field_details_list)
            steps.append((response_name, field_details_list, plan))
        if all(plan is None for _, _, plan in steps):
            return None
        return tuple(steps)

    def _link_plan(self, field: GraphQLField, details: FieldDetailsList) -> LinkPlan | None:
        shape = self._paths.link_shape(field)
        if shape is None:
            return None
        # @stream hands out a list in parts: graphql-core's.
        if shape.is_list and any(
            directive.name.value == "stream"
            for detail in details
            for directive in detail.node.directives or ()
        ):
            return None
        node = details[0].node
        try:
            arguments = (
                get_argument_values(
                    field,
                    node,
                    self.variable_values,
                    details[0].fragment_variable_values,
                    self.hide_suggestions,
                )
                if field.args or node.arguments
                else {}
            )
        except Exception:  # the general path reports it at its field
            return None
        return LinkPlan(shape, arguments)

    # -- graphql-core's entry points -------------------------------------------------------

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
        # subfields, the incremental executor), each costing more than the check here.
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
            # A type's own check could read the info, await, or count its calls: only
            # Strawberry's is asked here (graphql-core asks again when it says no).
            and self._paths.known_type_check(object_type)
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
        # A link completes its objects here only outside @defer (position_context None).
        if steps is None or position_context is not None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )

        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list, plan in steps:
                if type(plan) is LeafPlan:
                    try:
                        value = getattr(source_value, plan.attribute)
                    except Exception as raw_error:  # no such attribute; a property raised
                        self._leaf_error(
                            raw_error, plan, field_details_list, path, response_name, parent_type
                        )
                        results[response_name] = None
                        continue
                    kind = type(value)
                    if kind is plan.unchanged:
                        results[response_name] = value
                        continue
                    if kind is plan.members:
                        name = plan.names.get(value)
                        if name is not None:
                            results[response_name] = name
                            continue
                    elif value is None:
                        if plan.nullable:
                            results[response_name] = None
                            continue
                    elif kind in SETTLED:  # neither awaitable nor an exception
                        try:
                            coerced = self.complete_leaf_value(plan.leaf_type, value)
                        except Exception as raw_error:  # the type refuses the value
                            self._leaf_error(
                                raw_error,
                                plan,
                                field_details_list,
                                path,
                                response_name,
                                parent_type,
                            )
                            results[response_name] = None
                            continue
                        if type(coerced) in SETTLED or not is_awaitable(coerced):
                            results[response_name] = coerced
                            continue
                        # A custom scalar that answers later: awaited at its field.
                        results[response_name] = self._await_field(
                            coerced,
                            plan.field.type,
                            field_details_list,
                            _new_path((path, response_name, parent_type.name)),
                        )
                        awaitable_fields.append(response_name)
                        continue
                    # Anything else (null where null is refused, an awaitable, an
                    # exception, another kind of value): graphql-core's completion of the
                    # value read, which is not read again.
                    field_path = _new_path((path, response_name, parent_type.name))
                    result = self._complete_resolved(
                        plan.field.type,
                        field_details_list,
                        LazyInfo(self, plan.field, field_details_list, parent_type, field_path),
                        field_path,
                        value,
                    )
                elif isinstance(plan, LinkPlan):
                    result = self._execute_link(
                        plan,
                        parent_type,
                        source_value,
                        field_details_list,
                        _new_path((path, response_name, parent_type.name)),
                    )
                else:
                    # graphql-core's execute_fields, for one field.
                    result = self.execute_field(
                        parent_type,
                        source_value,
                        field_details_list,
                        _new_path((path, response_name, parent_type.name)),
                        None,
                    )
                if result is not Undefined:
                    results[response_name] = result
                    # Fields give dicts (objects), lists or scalars unless they are pending.
                    if type(result) not in SETTLED and is_awaitable(result):
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

    def _leaf_error(
        self,
        raw_error: Exception,
        plan: LeafPlan,
        details: FieldDetailsList,
        path: Path | None,
        response_name: str,
        parent_type: GraphQLObjectType,
    ) -> None:
        """A leaf's error, located at it: its value is null, or (non-null) its parent's."""
        field_path = _new_path((path, response_name, parent_type.name))
        self.handle_field_error(raw_error, plan.field.type, details, field_path)

    # -- links -----------------------------------------------------------------------------

    def _execute_link(
        self,
        plan: LinkPlan,
        parent_type: GraphQLObjectType,
        source: Any,
        details: FieldDetailsList,
        path: Path,
    ) -> AwaitableOrValue[Any]:
        """graphql-core's execute_field for a link, completing a plain object, or a list
        of them, here; any other value by graphql-core's complete_value."""
        shape = plan.shape
        info = LazyInfo(self, shape.field, details, parent_type, path)
        try:
            if shape.call is not None:
                value = shape.call(source, info, **plan.arguments)
            else:
                value = getattr(source, shape.attribute)  # type: ignore[arg-type]
            if shape.is_list:
                if type(value) is list:
                    items = self._complete_items(shape, details, info, path, value)
                    if type(items) is not list and self.is_awaitable(items):
                        return self._await_field(items, shape.field.type, details, path)
                    return items
            elif self._is_object(shape.object_type, value, info):
                fields, new_defer_usages, _ = self.collect_subfields(shape.object_type, details)
                if not new_defer_usages:
                    completed = self.execute_fields(shape.object_type, value, path, fields, None)
                    if type(completed) is not dict and self.is_awaitable(completed):
                        return self._await_field(completed, shape.field.type, details, path)
                    return completed
            if value is None and shape.nullable:
                return None
        except Exception as raw_error:
            self.handle_field_error(raw_error, shape.field.type, details, path)
            return None
        return self._complete_resolved(shape.field.type, details, info, path, value)

    def _is_object(self, object_type: GraphQLObjectType, value: Any, info: LazyInfo) -> bool:
        """Whether graphql-core would complete ``value`` by executing its fields at once:
        it is no exception, nothing awaitable, and of the type (Strawberry's check, see
        graph.plans.link_shape)."""
        return (
            value is not None
            and value is not Undefined
            and type(value) not in PLAIN_TYPES
            and not isinstance(value, Exception)
            and not self.is_awaitable(value)
            and (
                object_type.is_type_of is None
                # Strawberry's check takes the info and never reads it.
                or object_type.is_type_of(value, info) is True  # type: ignore[arg-type]
            )
        )

    def _complete_items(
        self,
        shape: LinkShape,
        details: FieldDetailsList,
        info: LazyInfo,
        path: Path,
        items: list[Any],
    ) -> AwaitableOrValue[list[Any]]:
        """graphql-core's complete_iterable_value, for a list of objects of one type."""
        object_type = shape.object_type
        item_type = shape.item_type
        is_awaitable = self.is_awaitable
        completed_results: list[Any] = []
        awaitable_indices: list[int] = []
        iterator = iter(items)
        try:
            for index, item in enumerate(iterator):
                item_path = _new_path((path, index, None))
                if self._is_object(object_type, item, info):
                    try:
                        fields, new_defer_usages, _ = self.collect_subfields(object_type, details)
                        completed = (
                            Undefined
                            if new_defer_usages
                            else self.execute_fields(object_type, item, item_path, fields, None)
                        )
                    except Exception as raw_error:
                        self.handle_field_error(raw_error, item_type, details, item_path)
                        completed = None
                    if completed is not Undefined:  # else @defer: graphql-core's, below
                        if type(completed) is not dict and is_awaitable(completed):
                            completed = self._await_field(completed, item_type, details, item_path)
                            awaitable_indices.append(index)
                        completed_results.append(completed)
                        continue
                if item is None and shape.items_nullable:
                    completed_results.append(None)
                elif is_awaitable(item):
                    completed_results.append(
                        self.complete_awaitable_list_item_value(
                            item, item_type, details, info.real(), item_path, None
                        )
                    )
                    awaitable_indices.append(index)
                elif self.complete_list_item_value(
                    item, completed_results, item_type, details, info.real(), item_path, None
                ):
                    awaitable_indices.append(index)
        except Exception:
            # As graphql-core: what is pending, here and in the rest of the list, is settled
            # in the background rather than left never awaited.
            pending = [completed_results[i] for i in awaitable_indices]
            pending.extend(collect_iterator_awaitables(iterator, is_awaitable))
            if pending:
                self.settle_in_background(pending)
            raise

        if not awaitable_indices:
            return completed_results

        async def get_completed_results() -> list[Any]:
            if len(awaitable_indices) == 1:
                index = awaitable_indices[0]
                completed_results[index] = await completed_results[index]
            else:
                awaited = await gather_with_cancel(
                    *(completed_results[index] for index in awaitable_indices)
                )
                for index, sub_result in zip(awaitable_indices, awaited, strict=True):
                    completed_results[index] = sub_result
            return completed_results

        return get_completed_results()

    def _complete_resolved(
        self,
        return_type: GraphQLOutputType,
        details: FieldDetailsList,
        info: LazyInfo,
        path: Path,
        value: Any,
    ) -> AwaitableOrValue[Any]:
        """The rest of graphql-core's execute_field, once its resolver has given ``value``."""
        try:
            if self.is_awaitable(value):
                return self.complete_awaitable_value(
                    return_type, details, info.real(), path, value, None
                )
            completed = self.complete_value(return_type, details, info.real(), path, value, None)
            if self.is_awaitable(completed):
                return self._await_field(completed, return_type, details, path)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, details, path)
            return None
        return completed

    async def _await_field(
        self,
        completed: Awaitable[Any],
        return_type: GraphQLOutputType,
        details: FieldDetailsList,
        path: Path,
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, details, path)
            return None
