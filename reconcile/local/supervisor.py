"""Replicas as OS processes: started, probed, restarted, stopped — and adopted after a
restart of the control plane.

Each replica runs in its own session (so a dying control plane takes none with it) with its
stdout and stderr appended to files in ``DATA_DIR/runtime/<name>/``, never pipes: a process
writing to a pipe whose reader died would be killed by SIGPIPE. The tailer reads those files
line by line into the log pipeline from an offset it records once the lines before it are
stored, so after a restart it resumes where it stopped, losing and repeating nothing.
``state.json`` records the pid, its start time and the port; on start the supervisor adopts
every replica whose pid is alive with the same start time, instead of starting a twin.

A replica's monitor starts it, waits for its startup probe, then probes readiness (which
gates traffic) and liveness (which restarts it); a replica that exits or fails liveness is
restarted with exponential backoff, and after several quick restarts it reports
CrashLoopBackOff. Stopping sends SIGTERM to the process group, waits the grace period, then
SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import psutil

from reconcile.local.probes import ProbeSpec, ProbeTracker, probe_once
from reconcile.local.processes import alive, free_port, signal_group, start_time
from store.aio import cancel_and_wait
from store.logs import MAX_MESSAGE, LogWriter, RawLine
from store.models import utcnow

log = logging.getLogger(__name__)

STATE_FILE: Final = "state.json"
EXIT_POLL_S: Final = 0.2  # an adopted process: is its pid still alive?
CHILD_POLL_S: Final = 0.05  # our own child: has it exited? (poll also reaps it)
KILL_WAIT_S: Final = 5.0
RECORDED_GRACE_S: Final = 10.0  # SIGTERM to SIGKILL for a replica only recorded on disk
SPAWN_TOKEN_ENV: Final = "ENCLII_SPAWN_TOKEN"
BACKOFF_BASE_S: Final = 1.0
BACKOFF_MAX_S: Final = 300.0
BACKOFF_RESET_S: Final = 600.0  # running this long without failing resets the backoff
CRASH_LOOP_RESTARTS: Final = 3  # restarts within the window that make a crash loop
CRASH_LOOP_WINDOW_S: Final = 120.0

STREAMS: Final = ("stdout", "stderr")
TAIL_INTERVAL_S: Final = 0.005  # between reads while a replica is writing
TAIL_IDLE_S: Final = 0.05  # the longest pause between reads of a quiet replica
# Between writes of state.json while offsets move (each costs a file replace, ~0.3 ms).
# Not a matter of safety: lines stored but not yet recorded are found in the store.
TAIL_SAVE_S: Final = 0.2
TAIL_RETRY_S: Final = 1.0  # after the tailer failed (the store is down, say)
TAIL_SETTLE_S: Final = 10.0  # how long stopping waits for output to be read and stored
READ_CHUNK: Final = 1 << 16
# Enough bytes for MAX_MESSAGE characters in any UTF-8: the store keeps no more of a line,
# so the tailer keeps no more of an unfinished one (a process printing without newlines
# must not grow the control plane's memory without bound).
MAX_LINE_BYTES: Final = 4 * MAX_MESSAGE


class SpawnError(Exception):
    """The command could not be started at all (not found, not executable)."""


class Phase(StrEnum):
    STARTING = "starting"
    RUNNING = "running"  # alive and ready: takes traffic
    NOT_READY = "not-ready"  # alive, readiness failing
    CRASH_LOOP = "crash-loop-back-off"
    STOPPED = "stopped"


@dataclass(frozen=True)
class ReplicaSpec:
    """What to run. ``name`` is deterministic (service, release, index), which is what lets a
    restarted control plane find the replica again."""

    name: str
    service_id: str
    release_id: str
    index: int
    command: list[str]
    cwd: Path
    env: dict[str, str]
    readiness: ProbeSpec | None = None
    liveness: ProbeSpec | None = None
    startup: ProbeSpec | None = None
    grace_s: float = 10.0


@dataclass
class ReplicaStatus:
    name: str
    phase: Phase = Phase.STARTING
    ready: bool = False
    pid: int | None = None
    port: int | None = None
    restarts: int = 0
    message: str = ""
    last_exit: int | None = None


@dataclass
class _State:
    """What survives the control plane: ``state.json``.

    Per output stream, ``offsets`` is the byte before which every line is *stored* (never
    merely read), and ``seqs`` the log sequence of the last of those lines — or, before the
    first one, the service's newest sequence when tailing began. Lines of this replica's
    stream stored after that sequence are exactly those a killed control plane stored but
    had not yet recorded; the next tailer skips that many (see ``_resume``).
    """

    pid: int | None = None
    create_time: float | None = None
    port: int | None = None
    restarts: int = 0
    offsets: dict[str, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})
    seqs: dict[str, int] = field(default_factory=dict)
    # Readiness as last probed: an adopted replica keeps taking traffic while its probes
    # confirm it, instead of dropping out of the router until the first one passes.
    ready: bool = False
    # Set before a process is spawned and cleared once its pid is recorded: a control plane
    # killed in between left a process no pid names, found again by this token in its env.
    spawning: str | None = None


@dataclass(eq=False)
class _Cursor:
    """The tailer's place in one output file (in memory; ``_State`` has what is stored)."""

    stream: str
    position: int  # the next byte to read
    partial: bytes = b""  # the start of a line whose newline has not been read yet
    overflow: bool = False  # ``partial`` reached MAX_LINE_BYTES; the rest of it is dropped
    skip: int = 0  # complete lines from ``position`` that an earlier control plane stored
    in_flight: int = 0  # batches handed to the log writer and not yet stored

    def extend(self, data: bytes) -> tuple[bytes, bool]:
        """``partial`` and ``overflow`` after ``data`` (holding no newline) is appended."""
        room = MAX_LINE_BYTES - len(self.partial)
        if len(data) <= room:
            return self.partial + data, self.overflow
        return self.partial + data[: max(room, 0)], True


class Replica:
    def __init__(
        self,
        spec: ReplicaSpec,
        home: Path,
        logs: LogWriter,
        on_change: Callable[[Replica], None] | None = None,
    ) -> None:
        self.spec = spec
        self.home = home
        self.logs = logs
        self._on_change = on_change
        self.status = ReplicaStatus(spec.name)
        self.state = self._load()
        self._process: subprocess.Popen[bytes] | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._tailer: asyncio.Task[None] | None = None
        self._cursors: dict[str, _Cursor] | None = None  # set once the tail has resumed
        self._dirty = False  # stored offsets not yet in state.json
        self._reading = asyncio.Lock()
        self._saved_at = 0.0  # monotonic time of the tailer's last write of state.json
        self._stopping = False
        self._restart_times: list[float] = []
        self.changed = asyncio.Event()

    # -- persistence ------------------------------------------------------------------------

    def _load(self) -> _State:
        path = self.home / STATE_FILE
        if not path.exists():
            return _State()
        try:
            data = json.loads(path.read_text())
            return _State(**data)
        except (ValueError, TypeError):
            log.warning("ignoring an unreadable %s", path)
            return _State()

    def _save(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        temporary = self.home / f"{STATE_FILE}.tmp"
        temporary.write_text(json.dumps(asdict(self.state)))
        os.replace(temporary, self.home / STATE_FILE)

    # -- lifecycle --------------------------------------------------------------------------

    def adoptable(self) -> bool:
        return self.state.pid is not None and alive(self.state.pid, self.state.create_time)

    def begin(self) -> None:
        """Supervise: adopt the recorded process if it is alive, else start one."""
        loop = asyncio.get_running_loop()
        self._monitor = loop.create_task(self._supervise(), name=f"replica {self.spec.name}")
        self._tailer = loop.create_task(self._tail(), name=f"tail {self.spec.name}")

    async def _start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        await self._end_previous_output()
        port = free_port()
        token = secrets.token_hex(8)
        env = {**self.spec.env, "PORT": str(port), SPAWN_TOKEN_ENV: token}
        self.state.pid, self.state.create_time, self.state.ready = None, None, False
        self.state.port, self.state.spawning = port, token
        self._save()
        self._process = self._spawn(env)
        self._record(self._process.pid)
        self.status.pid, self.status.port = self._process.pid, port
        self.status.phase, self.status.ready = Phase.STARTING, False
        self._changed()

    def _spawn(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        stdout = (self.home / "stdout.log").open("ab")
        stderr = (self.home / "stderr.log").open("ab")
        try:
            # Popen, not asyncio's subprocess: an asyncio transport kills its child when it
            # is closed, and replicas must outlive the control plane's event loop.
            return subprocess.Popen(
                list(self.spec.command),
                cwd=self.spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        except OSError as exc:
            self.state.spawning = None
            self._save()
            raise SpawnError(
                f"could not start {self.spec.command[0]!r} in {self.spec.cwd}: {exc.strerror}"
            ) from None
        finally:
            stdout.close()
            stderr.close()

    def _record(self, pid: int) -> None:
        self.state.pid, self.state.create_time = pid, start_time(pid)
        self.state.spawning = None
        self._save()

    def _find_unrecorded(self) -> bool:
        """A control plane killed between spawning and recording left a process that only
        its token names: adopt it rather than start a twin."""
        token = self.state.spawning
        if token is None:
            return False
        for process in psutil.process_iter(["pid"]):
            with contextlib.suppress(psutil.Error):
                if process.environ().get(SPAWN_TOKEN_ENV) == token:
                    self._record(process.pid)
                    return True
        self.state.spawning = None
        self._save()
        return False

    async def _end_previous_output(self) -> None:
        """Before a new process appends to the files, the last one's output is read to the
        end — an unfinished last line included — so the two never run into one line."""
        if self._cursors is None:
            return

        async def read_all(cursors: dict[str, _Cursor]) -> None:
            while (await self._read_new(cursors))[0]:
                pass

        try:
            async with asyncio.timeout(TAIL_SETTLE_S):
                await read_all(self._cursors)
        except Exception:
            log.exception("reading the last output of %s failed", self.spec.name)

    def _changed(self) -> None:
        self.changed.set()
        if self._on_change is not None:
            self._on_change(self)

    async def _exited(self) -> int | None:
        """Wait for the process to end; its exit code when it was our child."""
        if self._process is not None:
            while (code := self._process.poll()) is None:  # noqa: ASYNC110 - poll() reaps it
                await asyncio.sleep(CHILD_POLL_S)
            return code
        pid, created = self.state.pid, self.state.create_time
        # An adopted process is not our child: nothing to wait on but its pid.
        while pid is not None and alive(pid, created):  # noqa: ASYNC110
            await asyncio.sleep(EXIT_POLL_S)
        return None

    def _probe(self, spec: ProbeSpec | None) -> ProbeSpec | None:
        # Probes name a port only when the spec does; otherwise the replica's own PORT.
        if spec is None or self.state.port is None:
            return spec
        return replace(spec, port=self.state.port) if spec.port == 0 else spec

    async def _supervise(self) -> None:
        backoff = BACKOFF_BASE_S
        failure: str | None = None
        if self.adoptable() or self._find_unrecorded():
            self.status.pid, self.status.port = self.state.pid, self.state.port
            self.status.restarts = self.state.restarts
            self.status.ready = self.state.ready
            self.status.phase = Phase.RUNNING if self.state.ready else Phase.STARTING
            self.status.message = "adopted after a restart of the control plane"
            self._changed()
        else:
            failure = await self._try_start()
        while not self._stopping:
            if failure is None:
                started = time.monotonic()
                reason = await self._watch()
                if reason is None:
                    return  # stopping
                if time.monotonic() - started >= BACKOFF_RESET_S:
                    backoff = BACKOFF_BASE_S  # it ran well for a while: a fresh failure
            else:
                reason = failure
            self.status.last_exit = self._process.returncode if self._process else None
            self.status.ready = False
            now = time.monotonic()
            self._restart_times = [t for t in self._restart_times if now - t < CRASH_LOOP_WINDOW_S]
            self._restart_times.append(now)
            crash_loop = len(self._restart_times) >= CRASH_LOOP_RESTARTS
            self.status.phase = Phase.CRASH_LOOP if crash_loop else Phase.STARTING
            self.status.message = f"{reason}; restarting in {backoff:.0f}s"
            self._changed()
            await asyncio.sleep(backoff)
            backoff = min(BACKOFF_MAX_S, backoff * 2)
            self.state.restarts += 1
            self.status.restarts = self.state.restarts
            failure = await self._try_start()

    async def _try_start(self) -> str | None:
        try:
            await self._start()
        except SpawnError as exc:
            return str(exc)
        return None

    async def _watch(self) -> str | None:
        """Until the process exits or fails liveness: why it must restart (None: we are
        stopping it)."""
        exited = asyncio.ensure_future(self._exited())
        probing = asyncio.ensure_future(self._run_probes())
        try:
            done, _ = await asyncio.wait({exited, probing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Also when we are cancelled (detach): a probe loop left behind would go on
            # probing, and marking ready, a replica nobody supervises.
            await cancel_and_wait(*(task for task in (probing, exited) if not task.done()))
        if self._stopping:
            return None
        if exited in done:
            code = exited.result()
            return f"exited with code {code}" if code is not None else "exited"
        reason = probing.result()
        await self._terminate()
        return reason

    async def _run_probes(self) -> str:
        """Probe until liveness (or the startup probe) fails; return why."""
        startup = self._probe(self.spec.startup)
        if startup is not None:
            await asyncio.sleep(startup.initial_delay_s)
            tracker = ProbeTracker(startup)
            while not tracker.passing:
                tracker.record(await probe_once(startup))
                if tracker.failed:
                    return f"startup probe failed: {tracker.last.detail if tracker.last else ''}"
                if not tracker.passing:
                    await asyncio.sleep(startup.period_s)
        readiness = self._probe(self.spec.readiness)
        liveness = self._probe(self.spec.liveness)
        ready = ProbeTracker(readiness) if readiness else None
        live = ProbeTracker(liveness) if liveness else None
        if ready is None:
            self._set_ready(True, "running (no readiness probe)")
        next_ready = time.monotonic() + (readiness.initial_delay_s if readiness else 0)
        next_live = time.monotonic() + (liveness.initial_delay_s if liveness else 0)
        while True:
            now = time.monotonic()
            if ready is not None and readiness is not None and now >= next_ready:
                ready.record(await probe_once(readiness))
                detail = ready.last.detail if ready.last else ""
                if ready.passing:
                    self._set_ready(True, f"ready: {detail}")
                elif ready.failed:
                    self._set_ready(False, f"not ready: {detail}")
                next_ready = time.monotonic() + readiness.period_s
            if live is not None and liveness is not None and now >= next_live:
                live.record(await probe_once(liveness))
                if live.failed:
                    return f"liveness probe failed: {live.last.detail if live.last else ''}"
                next_live = time.monotonic() + liveness.period_s
            waits = [t for t in (next_ready if ready else None, next_live if live else None) if t]
            await asyncio.sleep(max(0.01, min(waits) - time.monotonic()) if waits else 3600)

    def _set_ready(self, ready: bool, message: str) -> None:
        phase = Phase.RUNNING if ready else Phase.NOT_READY
        if (self.status.ready, self.status.phase, self.status.message) != (ready, phase, message):
            self.status.ready, self.status.phase, self.status.message = ready, phase, message
            if self.state.ready != ready:
                self.state.ready = ready
                self._save()
            self._changed()

    async def _terminate(self) -> None:
        pid = self.state.pid
        if pid is None or not alive(pid, self.state.create_time):
            if self._process is not None:
                self._process.poll()  # reap it
            return
        signal_group(pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(self.spec.grace_s):
                await self._exited()
        except TimeoutError:
            signal_group(pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(KILL_WAIT_S):
                    await self._exited()

    async def stop(self) -> None:
        """Stop the process (SIGTERM, grace, SIGKILL) and forget it."""
        self._stopping = True
        await self.detach()
        await self._terminate()
        self.status.phase, self.status.ready = Phase.STOPPED, False
        self.state.pid = None
        self._save()
        await self._drain_tail()
        self._changed()
        # Its output is in the store now; the files would only fill the disk.
        _forget(self.home)

    async def detach(self) -> None:
        """Stop supervising, leave the process running (the control plane is going away)."""
        await cancel_and_wait(self._monitor, self._tailer)
        self._monitor = self._tailer = None
        await self._settle_tail()
        self._save()

    # -- logs -------------------------------------------------------------------------------
    #
    # The offset recorded in state.json only ever moves past lines the store has committed
    # (the log writer's receipt moves it), so a control plane killed at any moment loses
    # nothing: the next one reads again from there. What it had stored beyond that point
    # the next one finds in the store — this replica's lines of the stream after the
    # sequence recorded with the offset (``LogWriter.resume_point``) — and skips, so it
    # repeats nothing either. (Exactly once by construction would need the offset to
    # commit with the lines, in the database; counting gets the same result except in
    # the cases below.)
    #
    # What a line is: bytes up to a newline. The store keeps MAX_MESSAGE characters of a
    # line and the tailer no more than MAX_LINE_BYTES of one, however long it is. A last
    # line without a newline is delivered once the process that wrote it has ended — while
    # it runs, the rest may follow.
    #
    # Where a line can still be stored twice or lost, and why:
    # - retention removed some of the lines stored after the recorded sequence before the
    #   next control plane counted them (they were over 7 days old, or the service wrote a
    #   million lines since): the count falls short and that many are stored again;
    # - stopping or detaching could not get the lines in flight stored within
    #   TAIL_SETTLE_S (the store is down): the offsets saved stop before them, and if this
    #   process's writer stores them later, a tailer that counted earlier stores them again;
    # - a replica restarted so quickly that its new process wrote before the tailer saw the
    #   old one gone: the old one's unfinished last line and the new one's first line are
    #   one line;
    # - state.json was lost: the files are read again from the start.

    async def _tail(self) -> None:
        """Follow the output files into the log pipeline until cancelled: quickly while the
        replica writes, backing off to TAIL_IDLE_S while it is quiet."""
        delay = TAIL_INTERVAL_S
        while True:
            try:
                if self._cursors is None:
                    self._cursors = await self._resume()
                read, more = await self._read_new(self._cursors)
                self._save_offsets(idle=not read)
            except Exception:
                log.exception("tailing %s failed; trying again", self.spec.name)
                await asyncio.sleep(TAIL_RETRY_S)
                continue
            if more:
                await asyncio.sleep(0)  # a full chunk: there is probably more waiting
                delay = TAIL_INTERVAL_S
                continue
            delay = TAIL_INTERVAL_S if read else min(delay * 2, TAIL_IDLE_S)
            await asyncio.sleep(delay)

    async def _resume(self) -> dict[str, _Cursor]:
        """Cursors at the recorded offsets, each told how many lines after it are already
        stored (a control plane killed between a commit and recording its offset)."""
        cursors: dict[str, _Cursor] = {}
        for stream in STREAMS:
            cursor = _Cursor(stream, self.state.offsets.get(stream, 0))
            after = self.state.seqs.get(stream)
            try:
                size = (self.home / f"{stream}.log").stat().st_size
            except FileNotFoundError:
                size = 0
            if size < cursor.position:
                # The file was replaced: what the old one had stored says nothing of it.
                cursor.position, after = 0, None
            count, last = await self.logs.resume_point(
                self.spec.service_id,
                after,
                release_id=self.spec.release_id,
                source=self._source,
                stream=stream,
            )
            if after is None:
                # Nothing of this file stored yet: later lines are those after ``last``.
                self.state.seqs[stream] = last
            cursor.skip = count
            self.state.offsets[stream] = cursor.position
            cursors[stream] = cursor
        # Durable before any line is handed over, or the count above could not be trusted.
        self._save()
        return cursors

    @property
    def _source(self) -> str:
        return f"replica-{self.spec.index}"

    async def _read_new(self, cursors: dict[str, _Cursor]) -> tuple[bool, bool]:
        """One read of each stream: (anything read, a full chunk read — read again)."""
        read = more = False
        # The tailer and a restart's last read must not take the same bytes twice.
        async with self._reading:
            for cursor in cursors.values():
                count = await self._read_stream(cursor)
                read |= count > 0
                more |= count == READ_CHUNK
        return read, more

    async def _read_stream(self, cursor: _Cursor) -> int:
        """Hand the complete lines of the next chunk to the log writer; bytes read."""
        unfinished = bool(cursor.partial or cursor.overflow)
        path = self.home / f"{cursor.stream}.log"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return 0
        if size < cursor.position:
            await self._restart_file(cursor)
        if size == cursor.position:
            # The size is looked at again once the process is known to be gone: what it
            # wrote before dying is all in the file by then.
            if unfinished and not self._writing() and path.stat().st_size == size:
                # A last line without a newline from a process that has ended: nothing
                # will finish it, so it is a line of its own (and whatever a next process
                # writes starts a new one).
                text = cursor.partial.decode(errors="replace")
                await self._hand_over(cursor, [text], cursor.position, b"", False, save=True)
            return 0
        with path.open("rb") as handle:
            handle.seek(cursor.position)
            chunk = handle.read(READ_CHUNK)
        last = chunk.rfind(b"\n")
        if last < 0:
            cursor.partial, cursor.overflow = cursor.extend(chunk)
            cursor.position += len(chunk)
            return len(chunk)
        # Whole lines decode as one string: a newline byte is never inside a UTF-8 sequence.
        if unfinished:
            first = chunk.find(b"\n")
            head, _ = cursor.extend(chunk[:first])
            lines = [head.decode(errors="replace")]
            if first < last:
                lines += chunk[first + 1 : last].decode(errors="replace").split("\n")
        else:
            lines = chunk[:last].decode(errors="replace").split("\n")
        rest = chunk[last + 1 :]
        await self._hand_over(
            cursor,
            lines,
            cursor.position + last + 1,
            rest[:MAX_LINE_BYTES],
            len(rest) > MAX_LINE_BYTES,
        )
        cursor.position += len(chunk)
        return len(chunk)

    async def _hand_over(
        self,
        cursor: _Cursor,
        lines: list[str],
        end: int,
        partial: bytes,
        overflow: bool,
        *,
        save: bool = False,
    ) -> None:
        """Give ``lines``, which end at byte ``end``, to the log writer; once they are
        stored, ``end`` is the stream's offset. The cursor changes only after the writer has
        taken them, so a tailer cancelled while the writer is full reads them again.

        ``save``: record the offset the moment the lines are stored, not with the next
        batch of offsets. For an unfinished last line: a control plane killed before
        recording it would count it as stored, and skip it together with whatever a next
        process appended to it up to the first newline."""
        skip = cursor.skip
        if skip:
            skipped = min(skip, len(lines))
            lines, skip = lines[skipped:], skip - skipped
        if lines:
            now = utcnow()
            service_id, release_id = self.spec.service_id, self.spec.release_id
            source, stream = self._source, cursor.stream
            await self.logs.write_many(
                [RawLine(service_id, release_id, source, stream, text, now) for text in lines],
                lambda seq: self._stored(cursor, end, seq, save=save),
            )
            cursor.in_flight += 1
        cursor.skip = skip
        cursor.partial, cursor.overflow = partial, overflow

    def _stored(self, cursor: _Cursor, end: int, seq: int, *, save: bool) -> None:
        """The log writer's receipt: every line before ``end`` is stored."""
        cursor.in_flight -= 1
        self.state.offsets[cursor.stream] = end
        self.state.seqs[cursor.stream] = seq
        self._dirty = True
        if save:
            self._save_offsets(idle=True)

    def _save_offsets(self, *, idle: bool) -> None:
        """Record stored offsets now and then while output flows, and at once when it
        pauses."""
        now = time.monotonic()
        if self._dirty and (idle or now - self._saved_at >= TAIL_SAVE_S):
            self._dirty = False
            self._saved_at = now
            self._save()

    def _writing(self) -> bool:
        """Whether the replica's process may still add to an unfinished line."""
        pid = self.state.pid
        return pid is not None and alive(pid, self.state.create_time)

    async def _restart_file(self, cursor: _Cursor) -> None:
        """The file shrank: it was replaced. Once what was read of the old one is stored,
        read the new one from its start, anchored after the service's newest line."""
        await self._settle_tail()
        _, last = await self.logs.resume_point(
            self.spec.service_id,
            None,
            release_id=self.spec.release_id,
            source=self._source,
            stream=cursor.stream,
        )
        cursor.position, cursor.partial, cursor.overflow, cursor.skip = 0, b"", False, 0
        self.state.offsets[cursor.stream], self.state.seqs[cursor.stream] = 0, last
        self._dirty = False
        self._save()

    async def _settle_tail(self) -> None:
        """Wait (at most TAIL_SETTLE_S) until every line handed to the log writer is stored,
        so the offsets saved next cover them. Should the store not answer in time, the next
        control plane may store those lines a second time: it finds only what was committed
        and the writer of this process may still commit them afterwards."""
        cursors = self._cursors
        if cursors is None or not any(c.in_flight for c in cursors.values()):
            return

        async def settled() -> None:
            while any(c.in_flight for c in cursors.values()):
                await self.logs.flush()
                if any(c.in_flight for c in cursors.values()):
                    await asyncio.sleep(TAIL_INTERVAL_S)

        try:
            async with asyncio.timeout(TAIL_SETTLE_S):
                await settled()
        except TimeoutError:
            log.warning(
                "log lines of %s are not stored yet; saving the offsets anyway", self.spec.name
            )

    async def _drain_tail(self) -> None:
        """After the process has stopped: store everything it wrote, a last line without a
        newline included, and save the offsets."""

        async def drain() -> None:
            if self._cursors is None:
                self._cursors = await self._resume()
            while (await self._read_new(self._cursors))[0]:
                pass

        try:
            async with asyncio.timeout(TAIL_SETTLE_S):
                await drain()
        except Exception:
            # Not lost: the offsets saved below stop before it, for the next tailer.
            log.exception("reading the last output of %s failed", self.spec.name)
        await self._settle_tail()
        self._dirty = False
        self._save()


class Supervisor:
    """Every replica of this machine."""

    def __init__(
        self,
        runtime_dir: Path,
        logs: LogWriter,
        on_change: Callable[[Replica], None] | None = None,
    ) -> None:
        """``on_change`` hears of every replica whose phase, readiness or process changed
        (called in the event loop; it must not block)."""
        self.runtime_dir = runtime_dir
        self.logs = logs
        self.on_change = on_change
        self._replicas: dict[str, Replica] = {}

    def replica(self, name: str) -> Replica | None:
        return self._replicas.get(name)

    def replicas(self, where: Callable[[Replica], bool] = lambda r: True) -> list[Replica]:
        return [r for r in self._replicas.values() if where(r)]

    def recorded(self) -> list[str]:
        """Names of replicas that have a state file: candidates for adoption."""
        if not self.runtime_dir.exists():
            return []
        return sorted(p.parent.name for p in self.runtime_dir.glob(f"*/{STATE_FILE}"))

    def ensure(self, spec: ReplicaSpec) -> Replica:
        """Supervise ``spec``'s replica: adopt it if it runs, start it if not. Idempotent."""
        current = self._replicas.get(spec.name)
        if current is not None:
            return current
        replica = Replica(spec, self.runtime_dir / spec.name, self.logs, self.on_change)
        self._replicas[spec.name] = replica
        replica.begin()
        return replica

    async def stop(self, name: str) -> None:
        replica = self._replicas.pop(name, None)
        if replica is not None:
            await replica.stop()
            return
        # Recorded by an earlier control plane and no longer wanted: stop what still runs
        # (its last output is not read: nothing supervises it to say whose it is).
        home = self.runtime_dir / name
        try:
            state = json.loads((home / STATE_FILE).read_text())
        except (OSError, ValueError):
            state = {}
        pid, created = state.get("pid"), state.get("create_time")
        if pid and alive(pid, created):
            signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + RECORDED_GRACE_S
            while alive(pid, created) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(EXIT_POLL_S)
            if alive(pid, created):
                signal_group(pid, signal.SIGKILL)
        _forget(home)

    async def detach_all(self) -> None:
        """The control plane is stopping: replicas keep running and serving."""
        for replica in self._replicas.values():
            await replica.detach()
        self._replicas.clear()


def _forget(home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)


def describe(replica: Replica) -> dict[str, Any]:
    return asdict(replica.status)
