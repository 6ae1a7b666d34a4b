"""Log ingestion end to end, with real processes, on SQLite and PostgreSQL: every line a
replica prints reaches the store exactly once, in order per stream and correctly parsed —
at full speed, and across control planes killed with SIGKILL mid-stream.

What a line is, as these tests pin it down:

- a line ends at a newline; one longer than the tailer's read chunk is still one line, and
  the store keeps its first ``MAX_MESSAGE`` characters (the tailer keeps no more of it);
- a last line without a newline is delivered once the process that wrote it has ended
  (here: when the replica is stopped) — while it runs, the rest of the line may follow;
- lines of stdout and of stderr are each in the order they were written (the two streams
  are separate files, so their interleaving is not defined).

The killed control plane is a child process running a Supervisor and a LogWriter of its
own; the replica, in its own session, survives it, and the next control plane adopts it
and resumes the tail from what the store holds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psutil
import pytest
from sqlalchemy import func, select

from reconcile.local import supervisor as supervisor_module
from reconcile.local.supervisor import STATE_FILE, ReplicaSpec, Supervisor
from resolvers.context import Context
from store.db import Store
from store.logs import MAX_MESSAGE, LogWriter, RawLine
from store.models import LogHead, LogLine
from tests.factories import make_environment, make_project, make_service

REPO: Final = Path(__file__).resolve().parents[2]
DEADLINE_S: Final = 120.0  # generous: 200,000 lines on a slow, shared machine
LEVELS: Final = ("debug", "info", "warn", "error")
LONG_EVERY: Final = 25_000  # every so many lines, one far longer than a read chunk
LONG_BYTES: Final = 100_000

# The replica: N numbered lines as fast as Python prints them (hundreds of thousands a
# second), unless paced. Which stream, which form and how long a line is all follow from its
# number, so the test can say exactly what the store must hold. It ends with a line
# without a newline, then keeps running (an exit would make the supervisor restart it).
EMITTER: Final = textwrap.dedent(
    """
    import json, os, sys, time

    def line(i):
        if i % 1000 == 999:
            return ""
        if i % {long_every} == 0:
            # Past the read chunk and the line limit, in two-byte characters.
            return f"long {{i}} " + "é" * ({long_bytes} // 2)
        if i % 2:
            level = {levels!r}[(i // 2) % 4]
            return json.dumps({{"level": level, "msg": f"json {{i}}", "i": i}})
        return f"plain {{i}} héllo wörld ✓"

    count, pace, stop = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    out = sys.stdout
    err = open(2, "w", buffering=1 << 16, closefd=False, encoding="utf-8")
    i = 0
    while i < count if count else not os.path.exists(stop):
        (err if i % 4 == 3 else out).write(line(i) + "\\n")
        i += 1
        if pace and i % pace == 0:
            out.flush()
            err.flush()
            time.sleep(0.02)
    out.write(f"unfinished {{i}}")
    out.flush()
    err.flush()
    with open(stop + ".count", "w") as handle:
        handle.write(str(i))
    while True:
        time.sleep(1)
    """
).format(long_every=LONG_EVERY, long_bytes=LONG_BYTES, levels=LEVELS)


def expected_line(i: int) -> tuple[str, str, str, dict[str, Any]]:
    """(stream, level, message, fields) the store must hold for line ``i``."""
    stream = "stderr" if i % 4 == 3 else "stdout"
    if i % 1000 == 999:
        return stream, "info", "", {}
    if i % LONG_EVERY == 0:
        return stream, "info", (f"long {i} " + "é" * (LONG_BYTES // 2))[:MAX_MESSAGE], {}
    if i % 2:
        return stream, LEVELS[(i // 2) % 4], f"json {i}", {"i": i}
    return stream, "info", f"plain {i} héllo wörld ✓", {}


def expected_store(count: int) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """Per stream, what the store holds once ``count`` lines and the unfinished one are in."""
    streams: dict[str, list[tuple[str, str, dict[str, Any]]]] = {"stdout": [], "stderr": []}
    for i in range(count):
        stream, level, message, fields = expected_line(i)
        streams[stream].append((level, message, fields))
    streams["stdout"].append(("info", f"unfinished {count}", {}))
    return streams


@dataclass(frozen=True)
class Emitter:
    app: Path
    stop_file: Path

    def spec(self, service_id: str, count: int, pace: int = 0) -> ReplicaSpec:
        """``count`` lines (0: until ``stop_file`` exists), ``pace`` lines per 20 ms
        (0: as fast as it can)."""
        return ReplicaSpec(
            name="shop-stage-api-0",
            service_id=service_id,
            release_id="rel_ingest",
            index=0,
            command=[sys.executable, "emit.py", str(count), str(pace), str(self.stop_file)],
            cwd=self.app,
            env={"PATH": os.environ["PATH"]},
            grace_s=2.0,
        )

    def emitted(self) -> int | None:
        """How many complete lines the replica printed, once it has finished."""
        done = self.stop_file.with_name(self.stop_file.name + ".count")
        return int(done.read_text()) if done.exists() else None


@pytest.fixture
def emitter(tmp_path: Path) -> Emitter:
    app = tmp_path / "app"
    app.mkdir()
    (app / "emit.py").write_text(EMITTER, encoding="utf-8")
    return Emitter(app, tmp_path / "stop")


@pytest.fixture
async def service_id(ctx: Context) -> str:
    project = await make_project(ctx)
    await make_environment(ctx, project)
    return (await make_service(ctx)).id


@pytest.fixture
async def writer(store: Store) -> AsyncIterator[LogWriter]:
    logs = LogWriter(store)
    logs.start()
    yield logs
    await logs.close()


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    async def wait() -> None:
        while not await check():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(wait(), DEADLINE_S)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


async def head(store: Store, service_id: str) -> int:
    """The service's newest line sequence: how many lines it has (none are pruned here)."""
    async with store.read() as session:
        value = await session.scalar(
            select(LogHead.last_seq).where(LogHead.service_id == service_id)
        )
    return int(value or 0)


async def stored(store: Store, service_id: str) -> dict[str, list[tuple[str, str, Any]]]:
    async with store.read() as session:
        rows = (
            await session.execute(
                select(
                    LogLine.stream,
                    LogLine.level,
                    LogLine.message,
                    LogLine.fields,
                    LogLine.source,
                    LogLine.release_id,
                )
                .where(LogLine.service_id == service_id)
                .order_by(LogLine.seq)
            )
        ).all()
    assert {(r.source, r.release_id) for r in rows} == {("replica-0", "rel_ingest")}
    streams: dict[str, list[tuple[str, str, Any]]] = {"stdout": [], "stderr": []}
    for row in rows:
        streams[row.stream].append((row.level, row.message, row.fields))
    return streams


def assert_same_lines(actual: dict[str, list[Any]], expected: dict[str, list[Any]]) -> None:
    """Every stream holds exactly the expected lines, in order — with a short message that
    names the first difference instead of a diff of a hundred thousand lines."""
    for stream, want in expected.items():
        got = actual[stream]
        if got == want:
            continue
        at = next((k for k, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None)
        at = min(len(got), len(want)) if at is None else at
        raise AssertionError(
            f"{stream}: {len(got)} lines stored, {len(want)} expected; first difference at "
            f"line {at}: stored {got[at : at + 2]!r}, expected {want[at : at + 2]!r}"
        )


async def test_every_line_arrives_once_in_order_and_parsed(
    tmp_path: Path, store: Store, writer: LogWriter, service_id: str, emitter: Emitter
) -> None:
    count = 200_000
    assert supervisor_module.READ_CHUNK < LONG_BYTES, "long lines must span read chunks"
    supervisor = Supervisor(tmp_path / "runtime", writer)
    replica = supervisor.ensure(emitter.spec(service_id, count))
    try:

        async def all_complete_lines_stored() -> bool:
            return await head(store, service_id) >= count

        async def finished_printing() -> bool:
            return emitter.emitted() is not None

        await until(all_complete_lines_stored, f"{count} lines stored")
        await until(finished_printing, "the replica done printing")
        # Still running, the replica may yet finish its last line: it is not delivered.
        assert await head(store, service_id) == count
    finally:
        await supervisor.stop(replica.spec.name)
    assert_same_lines(await stored(store, service_id), expected_store(count))
    # Everything it wrote is in the store, so a stopped replica leaves no files behind.
    assert not (tmp_path / "runtime" / replica.spec.name).exists()


async def test_each_receipt_names_the_sequence_of_its_last_line(
    ctx: Context, store: Store, service_id: str
) -> None:
    """The tailer records ``(offset, sequence)`` from these receipts and resumes by counting
    after the sequence, so it must be exactly that of the hand-over's last line — also when
    batches mix services and cut hand-overs in two."""
    other = (await make_service(ctx, name="web")).id
    writer = LogWriter(store, flush_interval=3600, batch=7)
    handed: list[tuple[str, str]] = []
    receipts: list[tuple[str, str, int]] = []
    for k in range(40):
        sid = service_id if k % 3 else other
        lines = [RawLine(sid, "rel", "replica-0", "stdout", f"{k}:{j}") for j in range(k % 5 + 1)]
        handed.append((sid, lines[-1].text))

        def receipt(seq: int, sid: str = sid, text: str = lines[-1].text) -> None:
            receipts.append((sid, text, seq))

        await writer.write_many(lines, receipt)
    assert receipts == [], "nothing is stored yet"
    await asyncio.wait_for(writer.close(), DEADLINE_S)
    async with store.read() as session:
        rows = await session.execute(select(LogLine.service_id, LogLine.message, LogLine.seq))
        seq_of = {(sid, message): seq for sid, message, seq in rows}
    assert receipts == [(sid, text, seq_of[sid, text]) for sid, text in handed]


# -- a control plane killed mid-stream -------------------------------------------------------


def control_plane() -> None:
    """A control plane of its own, for a test to SIGKILL: ``python -c 'from
    tests.reconcile.test_log_ingest import control_plane; control_plane()' URL RUNTIME
    SPEC_JSON``. It supervises the replica (adopting it when it runs) until killed."""
    url, runtime, spec_json = sys.argv[1:4]
    raw = json.loads(spec_json)
    spec = ReplicaSpec(**{**raw, "cwd": Path(raw["cwd"])})

    async def run() -> None:
        store = Store(url)
        logs = LogWriter(store)
        logs.start()
        Supervisor(Path(runtime), logs).ensure(spec)
        # Until killed; should the test itself be gone, not forever.
        await asyncio.sleep(DEADLINE_S)

    asyncio.run(run())


@dataclass
class ChildPlane:
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, url: str, runtime: Path, spec: ReplicaSpec) -> ChildPlane:
        spec_json = json.dumps({**spec.__dict__, "cwd": str(spec.cwd)})
        code = "from tests.reconcile.test_log_ingest import control_plane; control_plane()"
        process = subprocess.Popen(
            [sys.executable, "-c", code, url, str(runtime), spec_json],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        return cls(process)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(DEADLINE_S)


def lines_before(path: Path, offset: int) -> int:
    with path.open("rb") as handle:
        return handle.read(offset).count(b"\n")


async def kill_while_stored_beyond_recorded(
    plane: ChildPlane, store: Store, service_id: str, home: Path
) -> int:
    """SIGKILL ``plane`` at a moment when the store holds lines of the replica that its
    state.json does not cover yet — committed, offset not yet recorded: the case where a
    naive resume repeats lines. Returns how many such lines there were.

    The plane is frozen (SIGSTOP) while it is looked at, and each look also checks the
    other side: state.json never covers a line the store does not have, since a kill at
    that moment would lose it. (state.json is read before the store, which only grows, so
    a correct plane always passes.)"""
    pid = plane.process.pid

    async def beyond() -> int:
        os.kill(pid, signal.SIGSTOP)
        try:
            offsets = json.loads((home / STATE_FILE).read_text())["offsets"]
            async with store.read() as session:
                counts = dict(
                    (
                        await session.execute(
                            select(LogLine.stream, func.count())
                            .where(LogLine.service_id == service_id)
                            .group_by(LogLine.stream)
                        )
                    ).all()
                )
            extra = 0
            for stream in ("stdout", "stderr"):
                recorded = lines_before(home / f"{stream}.log", offsets[stream])
                have = counts.get(stream, 0)
                assert recorded <= have, (
                    f"{stream}: state.json covers {recorded} lines, the store has {have}: "
                    "a kill now would lose the difference"
                )
                extra = max(extra, have - recorded)
            if extra > 0:
                plane.kill()  # still frozen: nothing moved between the look and the kill
                return extra
        finally:
            if plane.process.poll() is None:
                os.kill(pid, signal.SIGCONT)
        return 0

    async def wait() -> int:
        while not (extra := await beyond()):
            await asyncio.sleep(0.005)
        return extra

    try:
        return await asyncio.wait_for(wait(), DEADLINE_S)
    except TimeoutError:
        raise AssertionError("never caught the store ahead of state.json") from None


async def test_control_planes_killed_mid_stream_lose_and_repeat_no_line(
    tmp_path: Path,
    store: Store,
    database_url: str,
    writer: LogWriter,
    service_id: str,
    emitter: Emitter,
) -> None:
    runtime = tmp_path / "runtime"
    spec = emitter.spec(service_id, 0, pace=500)  # ~20,000 lines/s until told to stop
    home = runtime / spec.name
    supervisor: Supervisor | None = None
    replica_pid: int | None = None
    try:
        # Two control planes in a row die mid-stream: the second one resumed from the
        # first one's leftovers, so its own state.json must be right too.
        for generation in range(2):
            plane = ChildPlane.start(database_url, runtime, spec)
            try:
                before = await head(store, service_id)

                async def flowing(before: int = before) -> bool:
                    return await head(store, service_id) >= before + 5_000

                await until(flowing, f"control plane {generation} storing lines")
                pid = json.loads((home / STATE_FILE).read_text())["pid"]
                assert replica_pid in (None, pid), "the replica was adopted, not started anew"
                replica_pid = pid
                assert await kill_while_stored_beyond_recorded(plane, store, service_id, home)
            finally:
                if plane.process.poll() is None:
                    plane.kill()
            assert replica_pid is not None and psutil.pid_exists(replica_pid)

        supervisor = Supervisor(runtime, writer)
        adopted = supervisor.ensure(spec)

        async def supervised() -> bool:
            return adopted.status.pid is not None

        await until(supervised, "the replica supervised")
        assert adopted.status.pid == replica_pid, "the replica was adopted, not started anew"
        before = await head(store, service_id)

        async def resumed() -> bool:
            return await head(store, service_id) >= before + 5_000

        await until(resumed, "the adopting control plane storing lines")
        emitter.stop_file.touch()

        async def finished() -> bool:
            emitted = emitter.emitted()
            return emitted is not None and await head(store, service_id) >= emitted

        await until(finished, "every line stored")
        await supervisor.stop(spec.name)
        supervisor = None
    finally:
        emitter.stop_file.touch()
        if supervisor is not None:
            await supervisor.stop(spec.name)
        else:
            # Failed before a supervisor of ours took the replica over: stop it all the same.
            await Supervisor(runtime, writer).stop(spec.name)
    emitted = emitter.emitted()
    assert emitted is not None and emitted > 15_000
    assert_same_lines(await stored(store, service_id), expected_store(emitted))
