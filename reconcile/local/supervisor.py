"""Replicas as OS processes: started, probed, restarted, stopped — and adopted after a
restart of the control plane.

Each replica runs in its own session (so a dying control plane takes none with it) with its
stdout and stderr appended to files in ``DATA_DIR/runtime/<name>/``, never pipes: a process
writing to a pipe whose reader died would be killed by SIGPIPE. The tailer reads those files
line by line into the log pipeline from an offset it keeps, so after a restart it resumes
where it stopped. ``state.json`` records the pid, its start time and the port; on start the
supervisor adopts every replica whose pid is alive with the same start time, instead of
starting a twin.

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
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import psutil

from reconcile.local.probes import ProbeSpec, ProbeTracker, probe_once
from store.logs import LogWriter, RawLine

log = logging.getLogger(__name__)

STATE_FILE: Final = "state.json"
TAIL_INTERVAL_S: Final = 0.05
EXIT_POLL_S: Final = 0.2
BACKOFF_BASE_S: Final = 1.0
BACKOFF_MAX_S: Final = 300.0
CRASH_LOOP_RESTARTS: Final = 3  # restarts within the window that make a crash loop
CRASH_LOOP_WINDOW_S: Final = 120.0
READ_CHUNK: Final = 1 << 16


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
    """What survives the control plane: ``state.json``."""

    pid: int | None = None
    create_time: float | None = None
    port: int | None = None
    restarts: int = 0
    offsets: dict[str, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _alive(pid: int, create_time: float | None) -> bool:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(process.create_time() - create_time) < 0.01
    except psutil.Error:
        return False


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
        self._process: asyncio.subprocess.Process | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._tailer: asyncio.Task[None] | None = None
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
        return self.state.pid is not None and _alive(self.state.pid, self.state.create_time)

    def begin(self) -> None:
        """Supervise: adopt the recorded process if it is alive, else start one."""
        loop = asyncio.get_running_loop()
        self._monitor = loop.create_task(self._supervise(), name=f"replica {self.spec.name}")
        self._tailer = loop.create_task(self._tail(), name=f"tail {self.spec.name}")

    async def _start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = {**self.spec.env, "PORT": str(port)}
        stdout = (self.home / "stdout.log").open("ab")
        stderr = (self.home / "stderr.log").open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self.spec.command,
                cwd=self.spec.cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        finally:
            stdout.close()
            stderr.close()
        pid = self._process.pid
        self.state.pid = pid
        self.state.port = port
        with contextlib.suppress(psutil.Error):
            self.state.create_time = psutil.Process(pid).create_time()
        self._save()
        self.status.pid, self.status.port = pid, port
        self.status.phase, self.status.ready = Phase.STARTING, False
        self._changed()

    def _changed(self) -> None:
        self.changed.set()
        if self._on_change is not None:
            self._on_change(self)

    async def _exited(self) -> int | None:
        """Wait for the process to end; its exit code when it was our child."""
        if self._process is not None:
            return await self._process.wait()
        pid, created = self.state.pid, self.state.create_time
        # An adopted process is not our child: nothing to wait on but its pid.
        while pid is not None and _alive(pid, created):  # noqa: ASYNC110
            await asyncio.sleep(EXIT_POLL_S)
        return None

    def _probe(self, spec: ProbeSpec | None) -> ProbeSpec | None:
        # Probes name a port only when the spec does; otherwise the replica's own PORT.
        if spec is None or self.state.port is None:
            return spec
        return replace(spec, port=self.state.port) if spec.port == 0 else spec

    async def _supervise(self) -> None:
        backoff = BACKOFF_BASE_S
        if self.adoptable():
            self.status.pid, self.status.port = self.state.pid, self.state.port
            self.status.restarts = self.state.restarts
            self.status.message = "adopted after a restart of the control plane"
        else:
            await self._start()
        while not self._stopping:
            exited = asyncio.ensure_future(self._exited())
            probing = asyncio.ensure_future(self._run_probes())
            done, _ = await asyncio.wait({exited, probing}, return_when=asyncio.FIRST_COMPLETED)
            probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probing
            if self._stopping:
                exited.cancel()
                return
            if exited in done:
                code = exited.result()
                reason = f"exited with code {code}" if code is not None else "exited"
            else:
                exited.cancel()
                reason = probing.result() if not probing.cancelled() else "liveness failed"
                await self._terminate()
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
            await self._start()

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
            self._changed()

    async def _terminate(self) -> None:
        pid = self.state.pid
        if pid is None or not _alive(pid, self.state.create_time):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self._exited(), self.spec.grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exited(), 5.0)

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

    async def detach(self) -> None:
        """Stop supervising, leave the process running (the control plane is going away)."""
        for task in (self._monitor, self._tailer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._monitor = self._tailer = None
        self._save()

    # -- logs -------------------------------------------------------------------------------

    async def _tail(self) -> None:
        partial = {"stdout": b"", "stderr": b""}
        while True:
            wrote = await self._read_new(partial)
            if not wrote:
                await asyncio.sleep(TAIL_INTERVAL_S)

    async def _read_new(self, partial: dict[str, bytes]) -> bool:
        wrote = False
        for stream in ("stdout", "stderr"):
            path = self.home / f"{stream}.log"
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            offset = self.state.offsets.get(stream, 0)
            if size < offset:
                offset = 0  # the file was replaced
            if size == offset:
                continue
            with path.open("rb") as handle:
                handle.seek(offset)
                chunk = handle.read(READ_CHUNK)
            data = partial[stream] + chunk
            *lines, partial[stream] = data.split(b"\n")
            for raw in lines:
                await self.logs.write(
                    RawLine(
                        self.spec.service_id,
                        self.spec.release_id,
                        f"replica-{self.spec.index}",
                        stream,
                        raw.decode(errors="replace"),
                    )
                )
            self.state.offsets[stream] = offset + len(chunk)
            wrote = True
        if wrote:
            self._save()
        return wrote

    async def _drain_tail(self) -> None:
        partial = {"stdout": b"", "stderr": b""}
        while await self._read_new(partial):
            pass


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
        # Recorded by an earlier control plane and no longer wanted: stop what still runs.
        home = self.runtime_dir / name
        if (home / STATE_FILE).exists():
            state = json.loads((home / STATE_FILE).read_text())
            pid, created = state.get("pid"), state.get("create_time")
            if pid and _alive(pid, created):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGTERM)

    async def detach_all(self) -> None:
        """The control plane is stopping: replicas keep running and serving."""
        for replica in self._replicas.values():
            await replica.detach()
        self._replicas.clear()


def describe(replica: Replica) -> dict[str, Any]:
    return asdict(replica.status)
