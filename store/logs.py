"""The log pipeline's store side: lines in, in batches; lines out, from a cursor.

A batch of a service's lines takes a block of sequence numbers from its LogHead row (locked
until commit, so blocks commit in order) and announces itself with one event on the
``logs:<service>`` stream, naming the block. Readers replay lines after their cursor and then
follow that stream, reading each announced block — the durable event log does the waking,
the log table does the storing. ``LogWriter`` gathers lines from any number of producers and
writes them in batches, waiting (never dropping) when it falls behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import Table, delete, func, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Store
from store.events import append_event
from store.models import Event, LogHead, LogLine, utcnow
from store.sqlfuncs import casefold

log = logging.getLogger(__name__)

LEVELS: Final = ("debug", "info", "warn", "error")
_LEVEL_ALIASES: Final = {
    "warning": "warn",
    "err": "error",
    "critical": "error",
    "fatal": "error",
    "trace": "debug",
}
MAX_MESSAGE: Final = 16_384
DEFAULT_RETENTION: Final = timedelta(days=7)
DEFAULT_MAX_LINES: Final = 1_000_000  # per service, beyond the age limit


def logs_stream(service_id: str) -> str:
    return f"logs:{service_id}"


@dataclass(frozen=True, slots=True)
class RawLine:
    """A line as it was read, before parsing."""

    service_id: str
    release_id: str | None
    source: str
    stream: str
    text: str
    ts: datetime = field(default_factory=utcnow)


LOG_LINES: Final = cast(Table, LogLine.__table__)


@dataclass(frozen=True, slots=True)
class LogRecord:
    seq: int
    service_id: str
    release_id: str | None
    source: str
    stream: str
    level: str
    message: str
    fields: dict[str, Any]
    ts: datetime

    @classmethod
    def from_row(cls, row: LogLine) -> LogRecord:
        return cls(
            seq=row.seq,
            service_id=row.service_id,
            release_id=row.release_id,
            source=row.source,
            stream=row.stream,
            level=row.level,
            message=row.message,
            fields=row.fields,
            ts=row.ts,
        )


# A \u0000 escape not itself escaped (an even run of backslashes before it).
_JSON_NUL: Final = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def parse(text: str) -> tuple[str, str, dict[str, Any]]:
    """(level, message, fields) of one line: JSON lines give all three; other lines are
    their own message at info."""
    # NUL cannot be stored in PostgreSQL text or jsonb; one in a line would fail its whole
    # batch, so it is shown as U+FFFD like any other undecodable byte.
    text = text.rstrip("\r\n")[:MAX_MESSAGE].replace("\x00", "\ufffd")
    if text.startswith("{"):
        try:
            data = json.loads(_JSON_NUL.sub(r"\1\\ufffd", text))
        except (ValueError, RecursionError):  # deep nesting is a line, not a crash
            data = None
        if isinstance(data, dict):
            # Only the key used is taken out; a second spelling stays among the fields.
            raw = data.pop("level") if "level" in data else data.pop("severity", "info")
            level = _LEVEL_ALIASES.get(str(raw).lower(), str(raw).lower())
            message = data.pop("message") if "message" in data else data.pop("msg", None)
            return (
                level if level in LEVELS else "info",
                str(message) if message is not None else text,
                data,
            )
    return "info", text, {}


async def _take_block(session: AsyncSession, service_id: str, count: int) -> int:
    """Reserve ``count`` sequence numbers; return the first."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    last = (
        await session.execute(
            insert(LogHead)
            .values(service_id=service_id, last_seq=count)
            .on_conflict_do_update(
                index_elements=[LogHead.service_id],
                set_={"last_seq": LogHead.last_seq + count},
            )
            .returning(LogHead.last_seq)
        )
    ).scalar_one()
    return int(last) - count + 1


async def append_lines(session: AsyncSession, lines: Sequence[RawLine]) -> dict[str, int]:
    """Store ``lines`` (any services) in the caller's transaction; announce each service's
    block. Returns the last sequence per service."""
    by_service: dict[str, list[RawLine]] = defaultdict(list)
    for line in lines:
        by_service[line.service_id].append(line)
    last: dict[str, int] = {}
    for service_id, batch in by_service.items():
        # Parse before taking the block: the head row stays locked from then until commit.
        rows: list[dict[str, Any]] = []
        for line in batch:
            level, message, fields = parse(line.text)
            rows.append(
                {
                    "service_id": service_id,
                    "release_id": line.release_id,
                    "source": line.source,
                    "stream": line.stream,
                    "level": level,
                    "message": message,
                    "fields": fields,
                    "ts": line.ts,
                }
            )
        first = await _take_block(session, service_id, len(batch))
        for offset, row in enumerate(rows):
            row["seq"] = first + offset
        # The table, not the ORM entity: a plain executemany, no unit-of-work bookkeeping.
        await session.execute(insert(LOG_LINES), rows)
        last[service_id] = first + len(batch) - 1
        await append_event(
            session,
            logs_stream(service_id),
            "logs.appended",
            entity_id=service_id,
            payload={"from": first, "to": last[service_id]},
        )
    return last


@dataclass(frozen=True, slots=True)
class LogQuery:
    service_id: str
    after: int | None = None  # cursor: lines with seq > after, oldest first
    since: datetime | None = None
    until: datetime | None = None
    grep: str | None = None  # case-insensitive substring of the message
    release_id: str | None = None
    source: str | None = None


def _conditions(query: LogQuery) -> list[Any]:
    conditions: list[Any] = [LogLine.service_id == query.service_id]
    if query.after is not None:
        conditions.append(LogLine.seq > query.after)
    if query.since is not None:
        conditions.append(LogLine.ts >= query.since)
    if query.until is not None:
        conditions.append(LogLine.ts < query.until)
    if query.grep:
        pattern = casefold(literal(f"%{_escape(query.grep)}%"))
        conditions.append(casefold(LogLine.message).like(pattern, escape="\\"))
    if query.release_id is not None:
        conditions.append(LogLine.release_id == query.release_id)
    if query.source is not None:
        conditions.append(LogLine.source == query.source)
    return conditions


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def read_lines(session: AsyncSession, query: LogQuery, limit: int) -> list[LogRecord]:
    """Oldest first from the cursor (or from ``since``)."""
    rows = await session.scalars(
        select(LogLine).where(*_conditions(query)).order_by(LogLine.seq).limit(limit)
    )
    return [LogRecord.from_row(r) for r in rows]


async def tail_lines(session: AsyncSession, query: LogQuery, limit: int) -> list[LogRecord]:
    """The newest ``limit`` matching lines, oldest first."""
    rows = list(
        await session.scalars(
            select(LogLine).where(*_conditions(query)).order_by(LogLine.seq.desc()).limit(limit)
        )
    )
    return [LogRecord.from_row(r) for r in reversed(rows)]


async def prune(
    session: AsyncSession,
    *,
    older_than: timedelta = DEFAULT_RETENTION,
    max_lines: int = DEFAULT_MAX_LINES,
) -> int:
    """Forget lines past the age limit, and a service's oldest lines past ``max_lines``;
    their announcements go with them. Returns how many lines were removed."""
    cutoff = utcnow() - older_than
    aged = await session.execute(delete(LogLine).where(LogLine.ts < cutoff))
    removed = _rowcount(aged)
    heads = (await session.execute(select(LogHead.service_id, LogHead.last_seq))).all()
    for service_id, last_seq in heads:
        keep_from = int(last_seq) - max_lines + 1
        if keep_from > 1:
            result = await session.execute(
                delete(LogLine).where(LogLine.service_id == service_id, LogLine.seq < keep_from)
            )
            removed += _rowcount(result)
    await session.execute(
        delete(Event).where(Event.stream.startswith("logs:"), Event.created_at < cutoff)
    )
    return int(removed)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def count_lines(session: AsyncSession, service_id: str) -> int:
    value = await session.scalar(
        select(func.count()).select_from(LogLine).where(LogLine.service_id == service_id)
    )
    return int(value or 0)


StoredCallback = Callable[[int], None]
# After a failed flush: long enough not to hammer (and log about) a store that is down,
# short enough that the producers it holds back barely notice a blip.
FLUSH_RETRY_S: Final = 0.25


class LogWriter:
    """Batches lines from many producers into few transactions.

    ``write`` and ``write_many`` return at once while the buffer has room and wait for a
    flush when it does not, so a producer faster than the store slows down instead of losing
    lines. Batches commit one at a time in the order their lines arrived.

    A flush starts when a batch is full, or once the oldest line waiting has waited
    ``flush_interval`` (a linger: a line waits at most that long, plus a flush already
    under way; a busy producer fills batches, so the fixed cost of a transaction is shared
    by many lines). Lines that arrive during a flush have been waiting all the while, so
    under sustained load flushes follow each other without a pause.

    A producer that must know when its lines are safe passes ``on_stored`` to
    ``write_many``: it is called, in the event loop, with the sequence of the last of those
    lines once their batch has committed. The replica tailer records a file offset only then
    — recording it when the lines were merely handed over would lose them if the process
    died before the flush. ``resume_point`` is the other half: how many of a producer's
    lines a process that died before recording its offset had stored.
    """

    def __init__(
        self,
        store: Store,
        *,
        flush_interval: float = 0.02,
        batch: int = 5000,
        buffer_limit: int = 100_000,
    ) -> None:
        self._store = store
        self._interval = flush_interval
        self._batch = batch
        self._limit = buffer_limit
        self._buffer: list[RawLine] = []
        # (number of the line it follows, callback), oldest first. A line's number is its
        # position among all the lines ever accepted; the buffer's first line is number
        # ``written`` plus the batch being flushed.
        self._receipts: deque[tuple[int, StoredCallback]] = deque()
        self._accepted = 0
        self._room = asyncio.Event()
        self._room.set()
        self._arrived = asyncio.Event()  # the buffer is no longer empty
        self._oldest = 0.0  # loop time at which the buffer's first line arrived
        self._pending = asyncio.Event()  # a batch is full: flush without lingering
        # One flush at a time: batches must commit in the order their lines arrived.
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.written = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="log-writer")

    async def write(self, line: RawLine) -> None:
        await self._wait_for_room()
        self._accept([line])

    async def write_many(
        self, lines: Sequence[RawLine], on_stored: StoredCallback | None = None
    ) -> None:
        """Accept ``lines`` (in order) with one wait for room, which is what lets a tailer
        keep up with tens of thousands of lines a second; ``on_stored`` as above."""
        if not lines:
            return
        await self._wait_for_room()
        self._accept(lines)
        if on_stored is not None:
            self._receipts.append((self._accepted - 1, on_stored))

    async def _wait_for_room(self) -> None:
        while len(self._buffer) >= self._limit:
            self._room.clear()
            await self._room.wait()

    def _accept(self, lines: Sequence[RawLine]) -> None:
        # No await from here to the receipt: a flush cannot take these lines before the
        # caller's receipt is registered.
        if not self._buffer:
            self._oldest = asyncio.get_running_loop().time()
            self._arrived.set()
        self._buffer.extend(lines)
        self._accepted += len(lines)
        if len(self._buffer) >= self._batch:
            self._pending.set()

    async def _run(self) -> None:
        while not self._closed or self._buffer:
            if not self._buffer:
                self._arrived.clear()
                await self._arrived.wait()  # set by the first line, or by close()
                continue
            linger = self._oldest + self._interval - asyncio.get_running_loop().time()
            if linger > 0 and not self._pending.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(linger):
                        await self._pending.wait()
            self._pending.clear()
            await self._flush()

    async def _flush(self) -> None:
        async with self._flushing:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        while self._buffer:
            batch, self._buffer = self._buffer[: self._batch], self._buffer[self._batch :]
            try:
                async with self._store.write() as session:
                    last = await append_lines(session, batch)
            except Exception:
                # Keep them for the next attempt rather than lose them.
                log.exception("writing %d log lines failed; will retry", len(batch))
                self._buffer[:0] = batch
                await asyncio.sleep(max(self._interval, FLUSH_RETRY_S))
                return
            self._report_stored(batch, last)
            self.written += len(batch)
            self._room.set()

    def _report_stored(self, batch: Sequence[RawLine], last: dict[str, int]) -> None:
        """Call the receipts of lines in ``batch`` (just committed) with their sequence."""
        first = self.written  # the number of the batch's first line
        end = first + len(batch)
        due: list[tuple[int, StoredCallback]] = []
        while self._receipts and self._receipts[0][0] < end:
            due.append(self._receipts.popleft())
        if not due:
            return
        if len(last) == 1:
            # One service: the batch took consecutive sequences ending at its last.
            (top,) = last.values()
            seqs = [top - (end - 1 - number) for number, _ in due]
        else:
            # Each service's lines took consecutive sequences in batch order: count back
            # from each service's last sequence.
            wanted = {number - first for number, _ in due}
            remaining = dict(last)
            at: dict[int, int] = {}
            for position in range(len(batch) - 1, -1, -1):
                service_id = batch[position].service_id
                if position in wanted:
                    at[position] = remaining[service_id]
                remaining[service_id] -= 1
            seqs = [at[number - first] for number, _ in due]
        for (_, callback), seq in zip(due, seqs, strict=True):
            try:
                callback(seq)
            except Exception:
                log.exception("a log receipt failed")

    async def flush(self) -> None:
        """Write everything buffered so far."""
        await self._flush()

    async def resume_point(
        self,
        service_id: str,
        after: int | None,
        *,
        release_id: str | None,
        source: str,
        stream: str,
    ) -> tuple[int, int]:
        """Where a producer stands in the store: ``(count, last)`` — how many of its lines
        (same service, release, source and stream) are stored after sequence ``after``, and
        the sequence of the last of them (``after`` when there are none).

        With ``after`` None the producer has stored nothing yet: ``(0, newest)``, the
        service's newest sequence, which is what it records as its ``after`` before it
        hands over a first line. A producer whose process died between a commit and
        recording its position skips the ``count`` lines it finds here and repeats none.

        The head row is locked first (the same upsert a batch begins with), so a batch of
        the service still committing — on PostgreSQL the COMMIT of a process that was
        killed may still be in flight — has finished, one way or the other, before
        counting.
        """
        async with self._store.write() as session:
            newest = await _take_block(session, service_id, 0) - 1
            if after is None:
                return 0, newest
            release = (
                LogLine.release_id.is_(None)
                if release_id is None
                else LogLine.release_id == release_id
            )
            count, top = (
                await session.execute(
                    select(func.count(), func.max(LogLine.seq)).where(
                        LogLine.service_id == service_id,
                        LogLine.seq > after,
                        release,
                        LogLine.source == source,
                        LogLine.stream == stream,
                    )
                )
            ).one()
        return int(count or 0), int(top) if top is not None else after

    async def close(self) -> None:
        self._closed = True
        self._pending.set()
        self._arrived.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._flush()
