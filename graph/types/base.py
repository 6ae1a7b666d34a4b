"""The Node interface and Relay connections shared by every type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import strawberry

from graph.context import Info
from resolvers.pagination import ListSpec, page_request
from store.models import Base

NodeT = TypeVar("NodeT")
RowT = TypeVar("RowT", bound=Base)


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
    edges: list[Edge[NodeT]]
    nodes: list[NodeT]
    page_info: PageInfo
    _parent_id: strawberry.Private[str]
    _spec: strawberry.Private[ListSpec[Any]]

    @strawberry.field(description="How many items the whole list holds.")
    async def total_count(self, info: Info) -> int:
        return await info.context.loaders.count(self._spec).load(self._parent_id)


async def connection(
    info: Info,
    spec: ListSpec[RowT],
    parent_id: str,
    first: int | None,
    after: str | None,
    wrap: Callable[[RowT], NodeT],
) -> Connection[NodeT]:
    """Load one page of ``spec`` under ``parent_id`` through the request's DataLoader."""
    page = await info.context.loaders.page(spec).load(page_request(parent_id, first, after))
    nodes = [wrap(row) for row in page.rows]
    return Connection(
        edges=[Edge(cursor=c, node=n) for c, n in zip(page.cursors, nodes, strict=True)],
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.start_cursor,
            end_cursor=page.end_cursor,
        ),
        _parent_id=parent_id,
        _spec=spec,
    )
