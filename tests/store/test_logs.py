"""The log pipeline's store side: parsing, gap-free sequences, reading from a cursor,
batching writers and pruning, on both backends."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.context import Context
from store import logs as store_logs
from store.db import Store
from store.events import append_event, read_events
from store.logs import (
    LEVELS,
    MAX_MESSAGE,
    LogQuery,
    LogRecord,
    LogWriter,
    RawLine,
    append_lines,
    count_lines,
    logs_stream,
    parse,
    prune,
    read_lines,
    tail_lines,
)
from store.models import Event, LogHead, LogLine, Service, utcnow
from tests.factories import make_environment, make_project, make_service

DEADLINE_S = 30.0
EVERYTHING = 1_000_000


# -- helpers ---------------------------------------------------------------------------------


def raw(
    service_id: str,
    text: str,
    *,
    source: str = "replica-0",
    stream: str = "stdout",
    release_id: str | None = None,
    ts: datetime | None = None,
) -> RawLine:
    return RawLine(
        service_id=service_id,
        release_id=release_id,
        source=source,
        stream=stream,
        text=text,
        ts=ts or utcnow(),
    )


async def append(store: Store, lines: Sequence[RawLine]) -> dict[str, int]:
    async with store.write() as session:
        return await append_lines(session, lines)


async def append_texts(store: Store, service_id: str, texts: Sequence[str]) -> dict[str, int]:
    return await append(store, [raw(service_id, t) for t in texts])


async def read_all(store: Store, service_id: str) -> list[LogRecord]:
    async with store.read() as session:
        return await read_lines(session, LogQuery(service_id), EVERYTHING)


async def messages(store: Store, query: LogQuery, *, tail: int | None = None) -> list[str]:
    async with store.read() as session:
        if tail is None:
            lines = await read_lines(session, query, EVERYTHING)
        else:
            lines = await tail_lines(session, query, tail)
    return [line.message for line in lines]


async def log_events(store: Store, service_id: str) -> list[tuple[int, str, dict[str, Any]]]:
    async with store.read() as session:
        records = await read_events(session, logs_stream(service_id), 0, EVERYTHING)
    for record in records:
        assert record.entity_id == service_id
    return [(r.seq, r.type, r.payload) for r in records]


@pytest.fixture
async def service(ctx: Context) -> Service:
    project = await make_project(ctx, "shop")
    await make_environment(ctx, project, "stage")
    return await make_service(ctx, "shop", "stage", "api")


@pytest.fixture
async def other_service(ctx: Context, service: Service) -> Service:
    return await make_service(ctx, "shop", "stage", "worker")


# -- parse -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_level", "level"),
    [
        ("debug", "debug"),
        ("info", "info"),
        ("warn", "warn"),
        ("error", "error"),
        ("warning", "warn"),
        ("WARNING", "warn"),
        ("critical", "error"),
        ("fatal", "error"),
        ("FATAL", "error"),
        ("err", "error"),
        ("trace", "debug"),
        ("verbose", "info"),
        ("notice", "info"),
        ("", "info"),
    ],
)
def test_json_levels_are_normalised(given_level: str, level: str) -> None:
    parsed = parse(json.dumps({"level": given_level, "message": "hello"}))
    assert parsed == (level, "hello", {})


def test_severity_names_the_level_when_level_is_absent() -> None:
    assert parse('{"severity": "warning", "msg": "disk"}') == ("warn", "disk", {})


def test_a_non_string_level_is_info() -> None:
    assert parse('{"level": 30, "msg": "pino style"}') == ("info", "pino style", {})


def test_message_comes_from_message_or_msg_and_the_rest_are_fields() -> None:
    line = {
        "level": "error",
        "message": "payment failed",
        "order": 42,
        "user": {"id": "u1", "tags": ["a", "b"]},
        "ok": False,
        "nothing": None,
    }
    assert parse(json.dumps(line)) == (
        "error",
        "payment failed",
        {"order": 42, "user": {"id": "u1", "tags": ["a", "b"]}, "ok": False, "nothing": None},
    )
    assert parse('{"msg": "listening", "port": 8080}') == ("info", "listening", {"port": 8080})


def test_a_non_string_message_is_its_text() -> None:
    assert parse('{"msg": 404}') == ("info", "404", {})


def test_a_json_object_without_a_message_keeps_the_whole_line() -> None:
    text = '{"level": "warn", "code": 7}'
    assert parse(text) == ("warn", text, {"code": 7})


@pytest.mark.parametrize(
    "text",
    [
        "plain text",
        "{not json",
        '{"unterminated": "string}',
        '["an", "array"]',
        '"a string"',
        "42",
        "null",
        "",
        "  indented",
    ],
)
def test_other_lines_are_their_own_message_at_info(text: str) -> None:
    assert parse(text) == ("info", text, {})


def test_line_endings_are_stripped() -> None:
    assert parse("hello\r\n") == ("info", "hello", {})
    assert parse('{"msg": "json"}\n') == ("info", "json", {})


def test_very_long_lines_are_cut() -> None:
    level, message, fields = parse("x" * (MAX_MESSAGE * 3))
    assert (level, message, fields) == ("info", "x" * MAX_MESSAGE, {})
    level, message, _ = parse(json.dumps({"msg": "y" * (MAX_MESSAGE * 2)}))
    assert level in LEVELS
    assert len(message) <= MAX_MESSAGE
    assert set(message) <= set('{"msg: y')


def test_a_deeply_nested_json_line_is_kept_as_text() -> None:
    # Regression: a 12 KB line (well under MAX_MESSAGE) that json.loads cannot decode
    # within the recursion limit raised RecursionError out of parse, failing the batch and
    # making LogWriter retry it forever.
    text = '{"a": ' + "[" * 6000 + "]" * 6000 + "}"
    assert len(text) < MAX_MESSAGE
    level, message, _fields = parse(text)
    assert level == "info"
    assert message == text


def _json(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none() | st.booleans() | st.integers() | text,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
        max_leaves=8,
    )


_json_values = _json(st.text(max_size=20))
# NUL is stored as U+FFFD (see test_a_nul_character_in_a_line_is_stored_on_both_backends),
# so the round-trip property holds for every other character.
_NO_NUL = st.characters(exclude_characters="\x00")
_json_values_without_nul = _json(st.text(_NO_NUL, max_size=20))
_RESERVED = ("level", "severity", "message", "msg")


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.text(max_size=200).map(lambda t: "{" + t),
        st.dictionaries(st.text(max_size=8), _json_values, max_size=5).map(json.dumps),
    )
)
def test_parse_never_raises(text: str) -> None:
    level, message, fields = parse(text)
    assert level in LEVELS
    assert isinstance(message, str)
    assert len(message) <= MAX_MESSAGE
    assert isinstance(fields, dict)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.text(_NO_NUL, max_size=8).filter(lambda k: k not in _RESERVED),
        _json_values_without_nul,
        max_size=5,
    ),
    st.sampled_from(LEVELS),
    st.text(_NO_NUL, max_size=40),
)
def test_json_objects_keep_every_other_key_as_a_field(
    rest: dict[str, Any], level: str, message: str
) -> None:
    assert parse(json.dumps({"level": level, "msg": message, **rest})) == (level, message, rest)


# -- append_lines ----------------------------------------------------------------------------


async def test_sequences_start_at_one_and_stay_gap_free_across_batches(
    store: Store, service: Service
) -> None:
    assert await append_texts(store, service.id, ["a", "b", "c"]) == {service.id: 3}
    assert await append_texts(store, service.id, ["d"]) == {service.id: 4}
    assert await append_texts(store, service.id, ["e", "f", "g", "h", "i"]) == {service.id: 9}
    lines = await read_all(store, service.id)
    assert [(line.seq, line.message) for line in lines] == list(enumerate("abcdefghi", 1))


async def test_services_have_sequences_of_their_own(
    store: Store, service: Service, other_service: Service
) -> None:
    a, b = service.id, other_service.id
    assert await append_texts(store, a, ["a1", "a2"]) == {a: 2}
    mixed = [raw(b, "b1"), raw(a, "a3"), raw(b, "b2"), raw(b, "b3")]
    assert await append(store, mixed) == {a: 3, b: 3}
    assert await append_texts(store, b, ["b4"]) == {b: 4}
    assert [(r.seq, r.message) for r in await read_all(store, a)] == [
        (1, "a1"),
        (2, "a2"),
        (3, "a3"),
    ]
    assert [(r.seq, r.message) for r in await read_all(store, b)] == [
        (1, "b1"),
        (2, "b2"),
        (3, "b3"),
        (4, "b4"),
    ]


async def test_each_batch_announces_its_block_once(
    store: Store, service: Service, other_service: Service
) -> None:
    a, b = service.id, other_service.id
    await append_texts(store, a, ["1", "2", "3"])
    await append_texts(store, a, ["4"])
    await append(store, [raw(a, "5"), raw(b, "1"), raw(a, "6"), raw(b, "2")])
    assert await log_events(store, a) == [
        (1, "logs.appended", {"from": 1, "to": 3}),
        (2, "logs.appended", {"from": 4, "to": 4}),
        (3, "logs.appended", {"from": 5, "to": 6}),
    ]
    assert await log_events(store, b) == [(1, "logs.appended", {"from": 1, "to": 2})]


async def test_an_empty_batch_stores_and_announces_nothing(store: Store, service: Service) -> None:
    assert await append(store, []) == {}
    assert await read_all(store, service.id) == []
    assert await log_events(store, service.id) == []


async def test_a_line_keeps_what_it_was_given(store: Store, service: Service) -> None:
    ts = datetime(2030, 5, 17, 8, 30, 15, 250_000, tzinfo=UTC)
    line = raw(
        service.id,
        '{"level": "error", "msg": "boom", "trace_id": "t-1"}\n',
        source="build",
        stream="stderr",
        release_id="rel_01TEST",
        ts=ts,
    )
    await append(store, [line])
    [stored] = await read_all(store, service.id)
    assert stored == LogRecord(
        seq=1,
        service_id=service.id,
        release_id="rel_01TEST",
        source="build",
        stream="stderr",
        level="error",
        message="boom",
        fields={"trace_id": "t-1"},
        ts=ts,
    )


async def test_a_rolled_back_batch_leaves_no_lines_no_event_and_no_gap(
    store: Store, service: Service
) -> None:
    await append_texts(store, service.id, ["kept-1", "kept-2"])
    with pytest.raises(RuntimeError):
        async with store.write() as session:
            last = await append_lines(session, [raw(service.id, f"doomed-{i}") for i in range(3)])
            assert last == {service.id: 5}
            raise RuntimeError("the transaction fails after the lines were added")
    assert await append_texts(store, service.id, ["kept-3"]) == {service.id: 3}
    assert [(r.seq, r.message) for r in await read_all(store, service.id)] == [
        (1, "kept-1"),
        (2, "kept-2"),
        (3, "kept-3"),
    ]
    assert await log_events(store, service.id) == [
        (1, "logs.appended", {"from": 1, "to": 2}),
        (2, "logs.appended", {"from": 3, "to": 3}),
    ]
    async with store.read() as session:
        assert await session.scalar(select(LogHead.last_seq)) == 3


async def test_concurrent_writers_get_distinct_gap_free_blocks(
    store: Store, service: Service
) -> None:
    writers, batches, size = 10, 4, 6

    async def writer(k: int) -> list[int]:
        lasts = []
        for b in range(batches):
            texts = [f"w{k} b{b} l{i}" for i in range(size)]
            async with store.write() as session:
                lasts.append(
                    (await append_lines(session, [raw(service.id, t) for t in texts]))[service.id]
                )
            await asyncio.sleep(0)
        return lasts

    results = await asyncio.gather(*(writer(k) for k in range(writers)))
    total = writers * batches * size
    lines = await read_all(store, service.id)
    assert [line.seq for line in lines] == list(range(1, total + 1))
    assert len({line.message for line in lines}) == total
    by_message = {line.message: line.seq for line in lines}
    for k, lasts in enumerate(results):
        # Each batch is one block, and each writer's batches are in its own order.
        for b, last in enumerate(lasts):
            assert [by_message[f"w{k} b{b} l{i}"] for i in range(size)] == list(
                range(last - size + 1, last + 1)
            )
        assert lasts == sorted(lasts)
    # The announcements, in stream order, name consecutive blocks covering every line.
    events = await log_events(store, service.id)
    assert [seq for seq, _, _ in events] == list(range(1, writers * batches + 1))
    expected_from = 1
    for _, _, payload in events:
        assert payload == {"from": expected_from, "to": expected_from + size - 1}
        expected_from += size
    assert expected_from == total + 1


# -- read_lines / tail_lines -----------------------------------------------------------------


async def test_reading_from_a_cursor(store: Store, service: Service) -> None:
    await append_texts(store, service.id, [f"line {i}" for i in range(1, 11)])
    async with store.read() as session:
        everything = await read_lines(session, LogQuery(service.id), 100)
        after_four = await read_lines(session, LogQuery(service.id, after=4), 100)
        three = await read_lines(session, LogQuery(service.id, after=4), 3)
        after_end = await read_lines(session, LogQuery(service.id, after=10), 100)
        from_zero = await read_lines(session, LogQuery(service.id, after=0), 2)
    assert [r.seq for r in everything] == list(range(1, 11))
    assert [r.seq for r in after_four] == list(range(5, 11))
    assert [(r.seq, r.message) for r in three] == [(5, "line 5"), (6, "line 6"), (7, "line 7")]
    assert after_end == []
    assert [r.seq for r in from_zero] == [1, 2]


async def test_reading_only_the_services_own_lines(
    store: Store, service: Service, other_service: Service
) -> None:
    await append(store, [raw(service.id, "mine"), raw(other_service.id, "theirs")])
    assert await messages(store, LogQuery(service.id)) == ["mine"]
    assert await messages(store, LogQuery(other_service.id), tail=10) == ["theirs"]


async def test_since_is_inclusive_and_until_exclusive(store: Store, service: Service) -> None:
    base = datetime(2031, 1, 1, 12, 0, tzinfo=UTC)
    await append(
        store, [raw(service.id, f"minute {i}", ts=base + timedelta(minutes=i)) for i in range(8)]
    )
    since, until = base + timedelta(minutes=3), base + timedelta(minutes=6)
    assert await messages(store, LogQuery(service.id, since=since, until=until)) == [
        "minute 3",
        "minute 4",
        "minute 5",
    ]
    assert await messages(store, LogQuery(service.id, since=base + timedelta(minutes=6))) == [
        "minute 6",
        "minute 7",
    ]
    assert await messages(store, LogQuery(service.id, until=base + timedelta(minutes=2))) == [
        "minute 0",
        "minute 1",
    ]
    # The same instants written in another zone select the same lines.
    plus_two = timezone(timedelta(hours=2))
    assert await messages(
        store,
        LogQuery(service.id, since=since.astimezone(plus_two), until=until.astimezone(plus_two)),
    ) == ["minute 3", "minute 4", "minute 5"]


async def test_grep_is_a_case_insensitive_substring(store: Store, service: Service) -> None:
    await append_texts(
        store,
        service.id,
        ["Connection REFUSED by db", "refused again", "all good", "ReFuSeD", "refuse"],
    )
    assert await messages(store, LogQuery(service.id, grep="refused")) == [
        "Connection REFUSED by db",
        "refused again",
        "ReFuSeD",
    ]
    assert await messages(store, LogQuery(service.id, grep="REFUSED"), tail=2) == [
        "refused again",
        "ReFuSeD",
    ]


@pytest.mark.parametrize(
    ("grep", "matching"),
    [
        ("50%", ["cpu at 50%", "50% done"]),
        ("%", ["cpu at 50%", "50% done", "100%"]),
        ("a_b", ["key a_b set"]),
        ("_", ["key a_b set"]),
        ("C:\\temp", ["path C:\\temp"]),
        ("\\", ["path C:\\temp", "trailing \\"]),
        ("\\%", []),
    ],
)
async def test_grep_takes_wildcards_and_backslashes_literally(
    store: Store, service: Service, grep: str, matching: list[str]
) -> None:
    await append_texts(
        store,
        service.id,
        [
            "cpu at 50%",
            "cpu at 500",
            "50 percent",
            "50% done",
            "100%",
            "key a_b set",
            "key axb set",
            "key ab set",
            "path C:\\temp",
            "path C:temp",
            "path C:\ttemp",
            "trailing \\",
        ],
    )
    assert await messages(store, LogQuery(service.id, grep=grep)) == matching
    assert await messages(store, LogQuery(service.id, grep=grep), tail=100) == matching


async def test_release_and_source_filters(store: Store, service: Service) -> None:
    await append(
        store,
        [
            raw(service.id, "build 1", source="build", stream="build", release_id="rel_a"),
            raw(service.id, "r0 a", source="replica-0", release_id="rel_a"),
            raw(service.id, "r1 a", source="replica-1", release_id="rel_a"),
            raw(service.id, "build 2", source="build", stream="build", release_id="rel_b"),
            raw(service.id, "r0 b", source="replica-0", release_id="rel_b"),
            raw(service.id, "no release", source="replica-0"),
        ],
    )
    assert await messages(store, LogQuery(service.id, release_id="rel_a")) == [
        "build 1",
        "r0 a",
        "r1 a",
    ]
    assert await messages(store, LogQuery(service.id, source="replica-0")) == [
        "r0 a",
        "r0 b",
        "no release",
    ]
    assert await messages(store, LogQuery(service.id, source="build", release_id="rel_b")) == [
        "build 2"
    ]
    assert await messages(store, LogQuery(service.id, release_id="rel_none")) == []
    assert await messages(store, LogQuery(service.id, source="replica-0"), tail=2) == [
        "r0 b",
        "no release",
    ]


async def test_tail_returns_the_newest_lines_oldest_first(store: Store, service: Service) -> None:
    await append_texts(store, service.id, [f"line {i}" for i in range(1, 11)])
    async with store.read() as session:
        newest = await tail_lines(session, LogQuery(service.id), 3)
        all_of_them = await tail_lines(session, LogQuery(service.id), 50)
        after_cursor = await tail_lines(session, LogQuery(service.id, after=8), 5)
    assert [r.seq for r in newest] == [8, 9, 10]
    assert [r.seq for r in all_of_them] == list(range(1, 11))
    assert [r.seq for r in after_cursor] == [9, 10]


async def test_tail_with_grep_returns_the_newest_matches(store: Store, service: Service) -> None:
    texts = [f"{'ERROR' if i % 3 == 0 else 'ok'} {i}" for i in range(1, 31)]
    await append_texts(store, service.id, texts)
    assert await messages(store, LogQuery(service.id, grep="error"), tail=3) == [
        "ERROR 24",
        "ERROR 27",
        "ERROR 30",
    ]


async def test_grep_ignores_case_beyond_ascii_on_both_backends(
    store: Store, service: Service
) -> None:
    # Regression: on SQLite ilike() became lower(message) LIKE lower(pattern), and SQLite's
    # lower() folds ASCII only, so "ÉCHEC" missed "échec" there while PostgreSQL found it.
    await append_texts(store, service.id, ["Échec de connexion", "échec", "ok"])
    assert await messages(store, LogQuery(service.id, grep="échec")) == [
        "Échec de connexion",
        "échec",
    ]
    assert await messages(store, LogQuery(service.id, grep="ÉCHEC"), tail=10) == [
        "Échec de connexion",
        "échec",
    ]


async def test_a_nul_character_in_a_line_is_stored_on_both_backends(
    store: Store, service: Service
) -> None:
    # Regression: PostgreSQL text and jsonb cannot hold U+0000, which a process may well
    # print; the INSERT failed and took the batch (and, through LogWriter's retries, every
    # later line of every service) with it. NUL is now stored as U+FFFD.
    await append_texts(store, service.id, ["before", "a\x00b", '{"msg": "x", "k": "\\u0000"}'])
    lines = await read_all(store, service.id)
    assert [line.seq for line in lines] == [1, 2, 3]
    assert lines[0].message == "before"
    assert lines[1].message == "a\ufffdb"
    assert lines[2].message == "x"
    assert lines[2].fields == {"k": "\ufffd"}


# -- concurrent writers ----------------------------------------------------------------------


async def test_concurrent_single_line_writers_never_share_a_sequence(
    store: Store, service: Service, other_service: Service
) -> None:
    async def writer(k: int) -> None:
        for i in range(10):
            sid = service.id if (k + i) % 2 else other_service.id
            async with store.write() as session:
                await append_lines(session, [raw(sid, f"{k}:{i}")])

    await asyncio.gather(*(writer(k) for k in range(10)))
    for sid in (service.id, other_service.id):
        lines = await read_all(store, sid)
        assert [line.seq for line in lines] == list(range(1, 51))
        async with store.read() as session:
            assert await count_lines(session, sid) == 50
        assert [p["to"] for _, _, p in await log_events(store, sid)] == list(range(1, 51))


# -- LogWriter -------------------------------------------------------------------------------


def _producer_lines(lines: Sequence[LogRecord], producer: int) -> list[int]:
    prefix = f"p{producer} "
    return [int(line.message[len(prefix) :]) for line in lines if line.message.startswith(prefix)]


async def test_writer_delivers_every_line_of_concurrent_producers(
    store: Store, service: Service
) -> None:
    producers, each = 3, 10_000
    writer = LogWriter(store, flush_interval=0.01, batch=2_000, buffer_limit=4_000)
    writer.start()

    async def produce(k: int) -> None:
        for i in range(each):
            await writer.write(raw(service.id, f"p{k} {i}"))
            if i % 500 == 0:
                await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(*(produce(k) for k in range(producers))), DEADLINE_S)
    await asyncio.wait_for(writer.close(), DEADLINE_S)
    total = producers * each
    assert writer.written == total
    async with store.read() as session:
        assert await count_lines(session, service.id) == total
    lines = await read_all(store, service.id)
    assert [line.seq for line in lines] == list(range(1, total + 1))
    for k in range(producers):
        assert _producer_lines(lines, k) == list(range(each))
    # The producers really did run side by side: their lines interleave in the log.
    owners = [line.message.split()[0] for line in lines]
    assert sum(a != b for a, b in itertools.pairwise(owners)) > producers


async def test_a_full_buffer_holds_the_producer_back_without_dropping(
    store: Store, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = store_logs.append_lines

    async def slow_append(session: AsyncSession, lines: Sequence[RawLine]) -> dict[str, int]:
        await asyncio.sleep(0.005)
        return await original(session, lines)

    monkeypatch.setattr(store_logs, "append_lines", slow_append)
    limit, batch, total = 20, 10, 300
    writer = LogWriter(store, flush_interval=0.01, batch=batch, buffer_limit=limit)
    writer.start()
    most_ahead = 0

    async def produce() -> None:
        nonlocal most_ahead
        for i in range(total):
            await writer.write(raw(service.id, f"line {i}"))
            most_ahead = max(most_ahead, i + 1 - writer.written)

    await asyncio.wait_for(produce(), DEADLINE_S)
    await asyncio.wait_for(writer.close(), DEADLINE_S)
    # The producer filled the buffer, and was then kept to the buffer plus the batch in
    # flight instead of running ahead of the slow store.
    assert limit <= most_ahead <= limit + batch
    assert writer.written == total
    lines = await read_all(store, service.id)
    assert [(r.seq, r.message) for r in lines] == [(i + 1, f"line {i}") for i in range(total)]


async def test_write_waits_while_the_store_is_stuck(
    store: Store, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = store_logs.append_lines
    gate = asyncio.Event()

    async def gated_append(session: AsyncSession, lines: Sequence[RawLine]) -> dict[str, int]:
        await gate.wait()
        return await original(session, lines)

    monkeypatch.setattr(store_logs, "append_lines", gated_append)
    writer = LogWriter(store, flush_interval=0.01, batch=5, buffer_limit=10)
    writer.start()
    accepted: list[int] = []

    async def produce() -> None:
        for i in range(100):
            await writer.write(raw(service.id, f"line {i}"))
            accepted.append(i)

    producer = asyncio.create_task(produce())

    async def until_full() -> None:
        while len(accepted) < 10:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(until_full(), DEADLINE_S)
    for _ in range(50):
        await asyncio.sleep(0)
    # The store has written nothing, so the producer can be at most a buffer and a batch
    # ahead of it, and must be waiting.
    assert not producer.done()
    assert 10 <= len(accepted) <= 15
    gate.set()
    await asyncio.wait_for(producer, DEADLINE_S)
    await asyncio.wait_for(writer.close(), DEADLINE_S)
    assert [r.message for r in await read_all(store, service.id)] == [
        f"line {i}" for i in range(100)
    ]


async def test_close_flushes_everything(store: Store, service: Service) -> None:
    # Neither the interval nor the batch size would flush these on their own.
    writer = LogWriter(store, flush_interval=3600, batch=10_000)
    writer.start()
    for i in range(250):
        await writer.write(raw(service.id, f"line {i}"))
    for _ in range(20):
        await asyncio.sleep(0)
    async with store.read() as session:
        assert await count_lines(session, service.id) == 0
    await asyncio.wait_for(writer.close(), DEADLINE_S)
    assert [r.message for r in await read_all(store, service.id)] == [
        f"line {i}" for i in range(250)
    ]


async def test_close_of_a_writer_never_started_flushes_too(store: Store, service: Service) -> None:
    writer = LogWriter(store)
    for i in range(5):
        await writer.write(raw(service.id, f"line {i}"))
    await writer.flush()
    await writer.write(raw(service.id, "line 5"))
    await asyncio.wait_for(writer.close(), DEADLINE_S)
    assert [(r.seq, r.message) for r in await read_all(store, service.id)] == [
        (i + 1, f"line {i}") for i in range(6)
    ]


async def test_a_failed_flush_keeps_its_lines_and_writes_them_next_time_in_order(
    store: Store, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = store_logs.append_lines
    failures: list[int] = []

    async def fail_once(session: AsyncSession, lines: Sequence[RawLine]) -> dict[str, int]:
        result = await original(session, lines)
        if not failures:
            # After the lines took their sequences: the rollback must give them back.
            failures.append(len(lines))
            raise ConnectionError("the database went away mid-transaction")
        return result

    monkeypatch.setattr(store_logs, "append_lines", fail_once)
    writer = LogWriter(store, flush_interval=0.01, batch=20)
    writer.start()
    for i in range(50):
        await writer.write(raw(service.id, f"line {i}"))

    async def until_failed() -> None:
        while not failures:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(until_failed(), DEADLINE_S)
    for i in range(50, 100):
        await writer.write(raw(service.id, f"line {i}"))
    await asyncio.wait_for(writer.close(), DEADLINE_S)
    assert failures == [20]
    assert writer.written == 100
    assert [(r.seq, r.message) for r in await read_all(store, service.id)] == [
        (i + 1, f"line {i}") for i in range(100)
    ]
    events = await log_events(store, service.id)
    assert events[0][2]["from"] == 1
    assert events[-1][2]["to"] == 100


# -- prune -----------------------------------------------------------------------------------


async def _age_lines(store: Store, service_id: str, up_to: int, age: timedelta) -> None:
    async with store.write() as session:
        await session.execute(
            update(LogLine)
            .where(LogLine.service_id == service_id, LogLine.seq <= up_to)
            .values(ts=utcnow() - age)
        )


async def _age_events(store: Store, stream: str, up_to: int, age: timedelta) -> None:
    async with store.write() as session:
        await session.execute(
            update(Event)
            .where(Event.stream == stream, Event.seq <= up_to)
            .values(created_at=utcnow() - age)
        )


async def _snapshot(store: Store, service_id: str) -> list[LogRecord]:
    return await read_all(store, service_id)


async def test_prune_forgets_old_lines_and_their_announcements(
    store: Store, service: Service, other_service: Service
) -> None:
    a, b = service.id, other_service.id
    await append_texts(store, a, [f"old {i}" for i in range(1, 5)])  # event 1
    await append_texts(store, a, [f"new {i}" for i in range(5, 11)])  # event 2
    await append_texts(store, b, ["b new"])
    await _age_lines(store, a, 4, timedelta(days=8))
    await _age_events(store, logs_stream(a), 1, timedelta(days=8))
    # An old event of another kind of stream is not the log's to prune.
    async with store.write() as session:
        await append_event(session, "project:prj_other", "thing.happened")
    await _age_events(store, "project:prj_other", 1, timedelta(days=30))
    newer = [r for r in await _snapshot(store, a) if r.seq > 4]
    others = await _snapshot(store, b)

    async with store.write() as session:
        removed = await prune(session, older_than=timedelta(days=7))

    assert removed == 4
    assert await _snapshot(store, a) == newer
    assert await _snapshot(store, b) == others
    assert await log_events(store, a) == [(2, "logs.appended", {"from": 5, "to": 10})]
    async with store.read() as session:
        assert len(await read_events(session, "project:prj_other", 0)) == 1
    # Sequences continue where they were: a cursor taken before the prune still works.
    assert await append_texts(store, a, ["after"]) == {a: 11}


async def test_prune_keeps_only_the_newest_max_lines_of_a_service(
    store: Store, service: Service, other_service: Service
) -> None:
    a, b = service.id, other_service.id
    await append_texts(store, a, [f"a {i}" for i in range(1, 11)])
    await append_texts(store, b, ["b 1", "b 2"])
    newest = (await _snapshot(store, a))[-3:]
    others = await _snapshot(store, b)

    async with store.write() as session:
        removed = await prune(session, max_lines=3)

    assert removed == 7
    assert await _snapshot(store, a) == newest
    assert [r.seq for r in newest] == [8, 9, 10]
    assert await _snapshot(store, b) == others
    # Nothing of today's was old enough to lose its announcement.
    assert len(await log_events(store, a)) == 1


async def test_prune_with_nothing_to_do_changes_nothing(store: Store, service: Service) -> None:
    await append_texts(store, service.id, ["a", "b", "c"])
    before = await _snapshot(store, service.id)
    async with store.write() as session:
        assert await prune(session) == 0
    assert await _snapshot(store, service.id) == before
    assert len(await log_events(store, service.id)) == 1
