"""Keyset pagination for every list, batched across parents.

Pages hold read-only rows (SQLAlchemy ``Row`` objects with the model's columns as
attributes), not ORM instances: a page is for showing, and identity-tracking hundreds of
ORM objects costs three times what the query itself does. Nothing writes through them.

A list is "the children of a parent, in a fixed order" (services of an environment by name,
releases of a service newest first). ``load_pages`` answers many (parent, first, after)
requests with one statement per distinct (first, after), using a window function so each
parent gets its own first N, which is what keeps the dashboard query at a constant number
of statements however many services it shows.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar, cast

from sqlalchemy import ColumnElement, Select, bindparam, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from resolvers.errors import BadRequest
from store.db import select_rows
from store.models import Base

MAX_PAGE: Final = 100
DEFAULT_PAGE: Final = 50

T = TypeVar("T", bound=Base)


@dataclass(frozen=True)
class ListSpec(Generic[T]):
    """How one kind of list is fetched: its rows, the parent column, the order."""

    name: str
    model: type[T]
    parent: InstrumentedAttribute[Any]
    order: tuple[InstrumentedAttribute[Any], ...]
    descending: bool = False
    where: tuple[ColumnElement[bool], ...] = ()


@dataclass(frozen=True, slots=True)
class PageRequest:
    parent_id: str
    first: int
    after: str | None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    spec: ListSpec[T]
    rows: list[T]
    has_next_page: bool
    has_previous_page: bool

    # Cursors are made when asked for: most nested pages (a service's routes on a
    # dashboard) never show one, and encoding one per row is not free.
    def cursor(self, index: int) -> str:
        return _cursor_of(self.spec, self.rows[index])

    @property
    def cursors(self) -> list[str]:
        return [_cursor_of(self.spec, row) for row in self.rows]

    @property
    def start_cursor(self) -> str | None:
        return self.cursor(0) if self.rows else None

    @property
    def end_cursor(self) -> str | None:
        return self.cursor(-1) if self.rows else None


def page_request(parent_id: str, first: int | None, after: str | None) -> PageRequest:
    size = DEFAULT_PAGE if first is None else first
    if size < 0 or size > MAX_PAGE:
        raise BadRequest(f"first must be between 0 and {MAX_PAGE}, got {size}", ("first",))
    return PageRequest(parent_id, size, after)


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, columns: Sequence[InstrumentedAttribute[Any]]) -> list[Any]:
    """The key values a cursor of a list ordered by ``columns`` holds, checked against
    the columns' types, so a cursor of another list is refused rather than compared."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        values = None
    if (
        not isinstance(values, list)
        or len(values) != len(columns)
        or not all(type(v) is col.type.python_type for v, col in zip(values, columns, strict=True))
    ):
        raise BadRequest(
            f"after: {cursor!r} is not a cursor of this list; pass an endCursor from it",
            ("after",),
        )
    return values


def _cursor_of(spec: ListSpec[T], row: T) -> str:
    return encode_cursor([getattr(row, col.key) for col in spec.order])


async def load_pages(
    session: AsyncSession, spec: ListSpec[T], requests: Sequence[PageRequest]
) -> list[Page[T]]:
    """One Page per request, in order."""
    groups: dict[tuple[int, str | None], list[str]] = defaultdict(list)
    for req in requests:
        groups[(req.first, req.after)].append(req.parent_id)
    found: dict[tuple[str, int, str | None], list[T]] = {}
    for (first, after), parent_ids in groups.items():
        by_parent = await _load_group(session, spec, sorted(set(parent_ids)), first, after)
        for parent_id in parent_ids:
            found[(parent_id, first, after)] = by_parent.get(parent_id, [])
    pages = []
    for req in requests:
        rows = found[(req.parent_id, req.first, req.after)]
        has_next = len(rows) > req.first
        rows = rows[: req.first]
        pages.append(
            Page(
                spec=spec,
                rows=rows,
                has_next_page=has_next,
                has_previous_page=req.after is not None,
            )
        )
    return pages


# Statements are built once per list (and per with/without cursor) and reused with bound
# parameters: building and cache-keying a windowed subquery costs more than running it.
_STATEMENTS: dict[tuple[str, bool], Select[Any]] = {}
_COUNTS: dict[str, Select[Any]] = {}


def _page_statement(spec: ListSpec[T], with_after: bool) -> Select[Any]:
    cached = _STATEMENTS.get((spec.name, with_after))
    if cached is not None:
        return cached
    order = [c.desc() if spec.descending else c.asc() for c in spec.order]
    conditions: list[ColumnElement[bool]] = [
        spec.parent.in_(bindparam("parent_ids", expanding=True)),
        *spec.where,
    ]
    if with_after:
        key = tuple_(*spec.order)
        bound = tuple_(*(bindparam(f"after_{i}", type_=c.type) for i, c in enumerate(spec.order)))
        conditions.append(key < bound if spec.descending else key > bound)
    table = spec.model.__table__
    numbered = (
        select(
            *table.columns,
            func.row_number().over(partition_by=spec.parent, order_by=order).label("rn"),
        )
        .where(*conditions)
        .subquery()
    )
    stmt = (
        select(*numbered.columns)
        .where(numbered.c.rn <= bindparam("first_plus"))
        .order_by(numbered.c[spec.parent.key], numbered.c.rn)
    )
    _STATEMENTS[(spec.name, with_after)] = stmt
    return stmt


async def _load_group(
    session: AsyncSession,
    spec: ListSpec[T],
    parent_ids: list[str],
    first: int,
    after: str | None,
) -> dict[str, list[T]]:
    # One row more than asked tells hasNextPage (for first=0 as well).
    params: dict[str, Any] = {"parent_ids": parent_ids, "first_plus": first + 1}
    if after is not None:
        for i, value in enumerate(decode_cursor(after, spec.order)):
            params[f"after_{i}"] = value
    stmt = _page_statement(spec, after is not None)
    out: dict[str, list[T]] = defaultdict(list)
    for row in await select_rows(session, stmt, params):
        out[getattr(row, spec.parent.key)].append(cast(T, row))
    return out


async def count_children(
    session: AsyncSession, spec: ListSpec[T], parent_ids: Sequence[str]
) -> list[int]:
    stmt = _COUNTS.get(spec.name)
    if stmt is None:
        stmt = _COUNTS[spec.name] = (
            select(spec.parent, func.count())
            .where(spec.parent.in_(bindparam("parent_ids", expanding=True)), *spec.where)
            .group_by(spec.parent)
        )
    rows = await select_rows(session, stmt, {"parent_ids": sorted(set(parent_ids))})
    counts = {row[0]: int(row[1]) for row in rows}
    return [counts.get(p, 0) for p in parent_ids]
