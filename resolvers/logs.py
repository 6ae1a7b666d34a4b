"""Reading a service's logs: a page (the newest lines, or from a cursor or a time), and a
live follow that resumes from a cursor without gaps or repeats."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select

from resolvers.context import Context
from resolvers.errors import BadRequest
from resolvers.identity.guard import require
from resolvers.identity.rbac import Permission
from resolvers.lookup import get_service
from store.logs import LogQuery, LogRecord, logs_stream, read_lines, tail_lines
from store.models import LogHead

MAX_LINES: Final = 1000
FOLLOW_PAGE: Final = 1000


@dataclass(frozen=True, slots=True)
class LogPage:
    lines: list[LogRecord]
    has_more: bool  # more lines match after the last one
    cursor: int | None  # the last line's seq: follow or page on from it


async def _service_query(
    ctx: Context,
    service_id: str,
    *,
    after: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    grep: str | None = None,
    release_id: str | None = None,
) -> LogQuery:
    if grep is not None and not grep.strip():
        raise BadRequest("grep must not be empty", ("grep",))
    if since is not None and until is not None and since >= until:
        raise BadRequest("since must be before until", ("since",))
    if after is not None and after < 0:
        raise BadRequest(f"after must be a line number (0 or more), got {after}", ("after",))
    async with ctx.store.read() as session:
        service, _env, project = await get_service(session, ctx, service_id)
    require(ctx, Permission.OBSERVE, project)
    return LogQuery(
        service_id=service.id,
        after=after,
        since=since,
        until=until,
        grep=grep,
        release_id=release_id,
    )


async def log_page(
    ctx: Context,
    service_id: str,
    *,
    limit: int = 100,
    after: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    grep: str | None = None,
    release_id: str | None = None,
) -> LogPage:
    """With ``after`` or ``since``: matching lines from there on, oldest first. Otherwise
    the newest ``limit`` matching lines (like ``tail``)."""
    if not 1 <= limit <= MAX_LINES:
        raise BadRequest(f"limit must be between 1 and {MAX_LINES}, got {limit}", ("limit",))
    query = await _service_query(
        ctx, service_id, after=after, since=since, until=until, grep=grep, release_id=release_id
    )
    async with ctx.store.read() as session:
        if after is None and since is None:
            lines = await tail_lines(session, query, limit)
            more = False
        else:
            lines = await read_lines(session, query, limit + 1)
            more = len(lines) > limit
            lines = lines[:limit]
    return LogPage(lines, more, lines[-1].seq if lines else after)


async def follow_logs(
    ctx: Context, service_id: str, *, grep: str | None = None, after: int | None = None
) -> AsyncGenerator[LogRecord, None]:
    """Lines after ``after`` (None: from now on), then every new one as it is stored."""
    async with aclosing(follow_log_batches(ctx, service_id, grep=grep, after=after)) as batches:
        async for batch in batches:
            for line in batch:
                yield line


async def follow_log_batches(
    ctx: Context, service_id: str, *, grep: str | None = None, after: int | None = None
) -> AsyncGenerator[list[LogRecord], None]:
    """``follow_logs`` as the batches read from the store: never empty, in order, at most
    ``FOLLOW_PAGE`` lines each. Lines written together arrive together, so a follower of a
    chatty service costs one message per write rather than one per line."""
    query = await _service_query(ctx, service_id, after=after, grep=grep)
    stream = logs_stream(query.service_id)
    if after is None:
        async with ctx.store.read() as session:
            head = await session.scalar(
                select(LogHead.last_seq).where(LogHead.service_id == query.service_id)
            )
        after = int(head or 0)
    cursor = after  # the last line yielded (or skipped as behind us)
    known = after  # every line up to here is committed, so a scan past it missed nothing
    # Fix the announcements' position before the first table read: a batch committed
    # between the two is then both in the table and announced, never in neither.
    announcements = ctx.hub.subscribe(stream, after=await ctx.hub.head(stream))
    try:
        while True:
            async with ctx.store.read() as session:
                batch = await read_lines(
                    session,
                    LogQuery(query.service_id, after=cursor, grep=query.grep),
                    FOLLOW_PAGE,
                )
            if batch:
                yield batch
                cursor = batch[-1].seq
            if len(batch) == FOLLOW_PAGE:
                continue
            # With grep, lines that did not match are skipped for good, not scanned again.
            cursor = max(cursor, known)
            event = await anext(announcements, None)
            if event is None:
                return
            known = max(known, int(event.payload.get("to", 0)))
    finally:
        await announcements.aclose()
