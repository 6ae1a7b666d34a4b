"""A project's activity: a page of its history, or a live, resumable follow."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from resolvers.context import Context
from resolvers.errors import BadRequest
from resolvers.identity.guard import require
from resolvers.identity.rbac import Permission
from resolvers.lookup import get_project
from resolvers.pagination import MAX_PAGE
from store.events import EventRecord, project_stream, read_events, read_events_before


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[EventRecord]
    has_more: bool


async def event_history(
    ctx: Context, project_id: str, *, after: int | None, before: int | None, first: int
) -> EventPage:
    """Oldest first after a sequence, or newest first before one (or from the end)."""
    if not 0 <= first <= MAX_PAGE:
        raise BadRequest(f"first must be between 0 and {MAX_PAGE}, got {first}", ("first",))
    if after is not None and before is not None:
        raise BadRequest("give either after or before, not both", ("after",))
    stream = project_stream(project_id)
    async with ctx.store.read() as session:
        project = await get_project(session, ctx, project_id)
        require(ctx, Permission.OBSERVE, project)
        if after is not None:
            rows = await read_events(session, stream, after, first + 1)
        else:
            rows = await read_events_before(session, stream, before, first + 1)
    return EventPage(rows[:first], len(rows) > first)


async def follow_project(
    ctx: Context, project_id: str, after: int | None
) -> AsyncGenerator[EventRecord, None]:
    """History after ``after`` (if given), then live events, until cancelled."""
    if after is not None and after < 0:
        raise BadRequest(f"after must be a sequence number (0 or more), got {after}", ("after",))
    async with ctx.store.read() as session:
        project = await get_project(session, ctx, project_id)
    require(ctx, Permission.OBSERVE, project)
    async for record in ctx.hub.subscribe(project_stream(project_id), after):
        yield record
