"""The query's worst-case size, refused before anything runs.

Like GitHub's node limit: every connection field may return up to ``first`` nodes (50 when
not given), and everything below it repeats for each of them, so the worst case of a query
is the sum, over its connection fields, of the product of the ``first`` values on the way
down. A query whose worst case is over ``MAX_NODES`` is refused with QUERY_TOO_COSTLY,
saying by how much — before any SQL runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    value_from_ast,
)
from graphql.execution.values import get_variable_values
from graphql.type.definition import GraphQLNamedType, get_named_type
from strawberry.extensions import SchemaExtension

from resolvers.pagination import DEFAULT_PAGE

MAX_NODES: Final = 500_000


def _object_type(schema: GraphQLSchema, name: str) -> GraphQLObjectType | None:
    found = schema.get_type(name)
    return found if isinstance(found, GraphQLObjectType) else None


class _Counter:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def _fields(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType, seen: frozenset[str]
    ) -> Iterator[tuple[FieldNode, GraphQLNamedType]]:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection, parent
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                yield from self._fields(selection.selection_set, target or parent, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue
                target = self.schema.get_type(fragment.type_condition.name.value) or parent
                yield from self._fields(fragment.selection_set, target, seen | {name})

    def _first(self, field: FieldNode, definition: Any) -> int:
        for argument in field.arguments or ():
            if argument.name.value == "first":
                arg_def = definition.args.get("first")
                value = value_from_ast(argument.value, arg_def.type, self.variables)
                return int(value) if isinstance(value, int) else DEFAULT_PAGE
        default = definition.args.get("first")
        if default is not None and isinstance(default.default_value, int):
            return default.default_value
        return DEFAULT_PAGE

    def _list_size(self, field: FieldNode, definition: Any) -> int:
        for argument in field.arguments or ():
            if argument.name.value == "ids":
                value = value_from_ast(argument.value, definition.args["ids"].type, self.variables)
                return len(value) if isinstance(value, list) else 1
        return 1

    def count(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType, multiplier: int
    ) -> int:
        total = 0
        for field, owner in self._fields(selection_set, parent, frozenset()):
            if not isinstance(owner, GraphQLObjectType) or field.name.value.startswith("__"):
                continue
            definition = owner.fields.get(field.name.value)
            if definition is None:
                continue
            named = get_named_type(definition.type)
            below = multiplier
            if named.name.endswith("Connection") and "first" in definition.args:
                size = self._first(field, definition)
                total += multiplier * size
                below = multiplier * size
            elif isinstance(_unwrap(definition.type), GraphQLList) and not owner.name.endswith(
                "Connection"
            ):
                # A plain list (the connection's own nodes and edges are already counted):
                # nodes(ids:) holds one item per id; other lists are short and fixed.
                size = self._list_size(field, definition)
                total += multiplier * size
                below = multiplier * size
            total += self.count(field.selection_set, named, below)
            if total > MAX_NODES:
                return total  # no need to add up further
        return total


def _unwrap(type_: Any) -> Any:
    return type_.of_type if isinstance(type_, GraphQLNonNull) else type_


def worst_case_nodes(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> int:
    root = {
        "query": schema.query_type,
        "mutation": schema.mutation_type,
        "subscription": schema.subscription_type,
    }[operation.operation.value]
    if root is None:
        return 0
    # Variables as execution will see them, defaults included.
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
    if isinstance(coerced, list):
        return 0  # invalid variables: execution refuses the query with the reasons
    return _Counter(schema, fragments, coerced.coerced).count(operation.selection_set, root, 1)


class QueryCost(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if context.operation_name:
                operations = [
                    o for o in operations if o.name and o.name.value == context.operation_name
                ]
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            graphql_schema = context.schema._schema
            for operation in operations[:1]:
                nodes = worst_case_nodes(
                    graphql_schema, operation, fragments, context.variables or {}
                )
                if nodes > MAX_NODES:
                    raise GraphQLError(
                        f"This query could return up to {nodes:,} nodes; the limit is "
                        f"{MAX_NODES:,}. Ask for fewer items per page (first) in nested lists.",
                        extensions={"code": "QUERY_TOO_COSTLY", "nodes": nodes, "limit": MAX_NODES},
                    )
        yield
