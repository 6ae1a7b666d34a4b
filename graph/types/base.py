"""The Node interface, Relay connections, and the loaders linked fields resolve through."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types.nodes import SelectedField, Selection

from graph.context import Info
from resolvers import loaders as batch
from resolvers.errors import BadRequest
from resolvers.identity.guard import require_id
from resolvers.identity.rbac import Permission
from resolvers.pagination import ListSpec, Page, PageRequest, page_request
from store.db import Store
from store.models import Base

NodeT = TypeVar("NodeT")
RowT = TypeVar("RowT", bound=Base)
ViewT = TypeVar("ViewT")


@strawberry.interface(description="Anything with a global ID (prefixed by kind: svc_…).")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type(description="A page of a list; pass pageInfo.endCursor as `after` for more.")
class Connection(Generic[NodeT]):
    nodes: list[NodeT]
    _page: strawberry.Private[Page[Any]]
    _parent_id: strawberry.Private[str]
    _spec: strawberry.Private[ListSpec[Any]]
    # Lists filtered by who is asking know their own size; others count through a loader.
    _total: strawberry.Private[Callable[[], Awaitable[int]] | None] = None

    # Edges and pageInfo are built only when a query asks for them (see Page.cursor).
    @strawberry.field
    def edges(self) -> list[Edge[NodeT]]:
        return [Edge(cursor=self._page.cursor(i), node=n) for i, n in enumerate(self.nodes)]

    @strawberry.field
    def page_info(self) -> PageInfo:
        page = self._page
        return PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.start_cursor,
            end_cursor=page.end_cursor,
        )

    @strawberry.field(graphql_type=int, description="How many items the whole list holds.")
    def total_count(self, info: Info) -> Awaitable[int]:
        if self._total is not None:
            return self._total()
        spec = self._spec
        store = info.context.ctx.store

        def factory() -> DataLoader[str, int]:
            return DataLoader(lambda ids: batch.counts(store, spec, ids))

        return info.context.loaders.get(("count", spec.name), factory).load(self._parent_id)


def connection_of(
    page: Page[RowT], spec: ListSpec[RowT], parent_id: str, wrap: Callable[[RowT], NodeT]
) -> Connection[NodeT]:
    return Connection(
        nodes=[wrap(row) for row in page.rows], _page=page, _parent_id=parent_id, _spec=spec
    )


Newest = Callable[[Store, Sequence[str]], Awaitable[Sequence[Any]]]
LATEST_RELEASE: Final[Newest] = batch.latest_releases
CURRENT_RUNTIME: Final[Newest] = batch.current_runtimes
CURRENT_SPEC: Final[Newest] = batch.current_specs


# -- prefetching -----------------------------------------------------------------------------
#
# A page of services that asks for each service's latest release could let every service
# resolve that field through a DataLoader: one query, but one future per service for
# graphql-core to await, which on a 200-service dashboard costs more than the query. So a
# list may name the linked fields of its nodes that it can load itself: when the query
# selects them, the page loads them for all its nodes at once and hands each node its value,
# which the node's resolver then returns synchronously. Unselected fields cost nothing.

MISSING: Final = object()


@dataclass(frozen=True, eq=False)
class PrefetchNewest:
    """The newest release/runtime/spec of each node (a service)."""

    field: str
    load: Newest
    wrap: Callable[[Any], Any]


@dataclass(frozen=True, eq=False)
class PrefetchPage:
    """A page of a child list of each node, with the arguments the query gives it."""

    field: str
    spec: ListSpec[Any]
    wrap: Callable[[Any], Any]


Prefetch = PrefetchNewest | PrefetchPage


class Prefetched:
    """Mixin for views whose linked fields a page may have loaded in advance."""

    _prefetched: strawberry.Private[dict[str, Any]]

    def prefetched(self, field: str, arguments: tuple[Any, ...] = ()) -> Any:
        found = getattr(self, "_prefetched", None)
        if not found or field not in found:
            return MISSING
        given, value = found[field]
        return value if given == arguments else MISSING

    def remember(self, field: str, arguments: tuple[Any, ...], value: Any) -> None:
        if getattr(self, "_prefetched", None) is None:
            object.__setattr__(self, "_prefetched", {})
        self._prefetched[field] = (arguments, value)


def _flatten(selections: Sequence[Selection]) -> list[SelectedField]:
    out: list[SelectedField] = []
    for selection in selections:
        if isinstance(selection, SelectedField):
            out.append(selection)
        else:  # fragments: their fields count as the node's own
            out.extend(_flatten(selection.selections))
    return out


def _node_fields(info: Info) -> list[SelectedField]:
    """The fields selected on the nodes of the connection being resolved."""
    nodes: list[SelectedField] = []
    for conn in _flatten(info.selected_fields):
        for child in _flatten(conn.selections):
            if child.name == "nodes":
                nodes.extend(_flatten(child.selections))
            elif child.name == "edges":
                for edge_field in _flatten(child.selections):
                    if edge_field.name == "node":
                        nodes.extend(_flatten(edge_field.selections))
    return nodes


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _plan(info: Info, prefetch: Sequence[Prefetch]) -> list[tuple[Prefetch, tuple[Any, ...]]]:
    if not prefetch:
        return []
    selected: dict[str, list[SelectedField]] = {}
    for field in _node_fields(info):
        selected.setdefault(field.name, []).append(field)
    plan: list[tuple[Prefetch, tuple[Any, ...]]] = []
    for item in prefetch:
        uses = selected.get(item.field)
        if not uses:
            continue
        if isinstance(item, PrefetchPage):
            try:
                # Literal arguments arrive as their source text ("5"); variables typed.
                arguments = {
                    (_int_or_none(u.arguments.get("first")), u.arguments.get("after")) for u in uses
                }
                if len(arguments) != 1:
                    continue  # aliased with different pages: let each resolve itself
                first, after = arguments.pop()
                page_request("", first, after)
            except (ValueError, BadRequest):
                continue  # bad arguments: the field's own resolver reports them
            plan.append((item, (first, after)))
        else:
            plan.append((item, ()))
    return plan


async def _prefetch(
    store: Store, views: list[Any], plan: list[tuple[Prefetch, tuple[Any, ...]]]
) -> None:
    ids = [str(v.id) for v in views]

    async def one(item: Prefetch, arguments: tuple[Any, ...]) -> None:
        if isinstance(item, PrefetchNewest):
            rows = await item.load(store, ids)
            for view, row in zip(views, rows, strict=True):
                view.remember(item.field, arguments, None if row is None else item.wrap(row))
            return
        first, after = arguments
        pages = await batch.pages(store, item.spec, [page_request(i, first, after) for i in ids])
        for view, page in zip(views, pages, strict=True):
            view.remember(
                item.field, arguments, connection_of(page, item.spec, str(view.id), item.wrap)
            )

    for item, arguments in plan:
        await one(item, arguments)


def connection(
    info: Info,
    spec: ListSpec[RowT],
    parent_id: str,
    first: int | None,
    after: str | None,
    wrap: Callable[[RowT], NodeT],
    prefetch: Sequence[Prefetch] = (),
) -> Awaitable[Connection[NodeT]]:
    """One page of ``spec`` under ``parent_id``, batched with every other parent's, with
    the ``prefetch`` fields the query selects on its nodes loaded for all of them."""
    request = page_request(parent_id, first, after)
    store = info.context.ctx.store
    plan = _plan(info, prefetch)

    def factory() -> DataLoader[PageRequest, Connection[NodeT]]:
        async def load(requests: Sequence[PageRequest]) -> list[Connection[NodeT]]:
            pages = await batch.pages(store, spec, requests)
            connections = [
                connection_of(page, spec, req.parent_id, wrap)
                for page, req in zip(pages, requests, strict=True)
            ]
            if plan:
                await _prefetch(store, [n for c in connections for n in c.nodes], plan)
            return connections

        return DataLoader(load)

    key = ("page", spec.name, tuple((item.field, args) for item, args in plan))
    return info.context.loaders.get(key, factory).load(request)


def check(info: Info, permission: Permission, project_id: str | None) -> None:
    """Refuse a nested field the caller's role (or token) does not cover."""
    require_id(info.context.ctx, permission, project_id)


def related(
    info: Info, model: type[RowT], row_id: str | None, wrap: Callable[[RowT], ViewT]
) -> Awaitable[ViewT | None] | None:
    """The view of the row ``row_id`` of ``model`` (None when there is no link)."""
    if row_id is None:
        return None
    store = info.context.ctx.store

    def factory() -> DataLoader[str, ViewT | None]:
        async def load(ids: Sequence[str]) -> list[ViewT | None]:
            rows = await batch.rows_by_id(store, model, ids)
            return [None if row is None else wrap(row) for row in rows]

        return DataLoader(load)

    return info.context.loaders.get(("row", model), factory).load(row_id)


def newest(
    info: Info, load_rows: Newest, service_id: str, wrap: Callable[[Any], ViewT]
) -> Awaitable[ViewT | None]:
    """The newest release, runtime or spec version of a service, batched across services."""
    store = info.context.ctx.store

    def factory() -> DataLoader[str, ViewT | None]:
        async def load(ids: Sequence[str]) -> list[ViewT | None]:
            rows = await load_rows(store, ids)
            return [None if row is None else wrap(row) for row in rows]

        return DataLoader(load)

    return info.context.loaders.get(("newest", load_rows), factory).load(service_id)
