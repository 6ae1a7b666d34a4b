"""Replicas as real OS processes: readiness, restarts, crash loops, stop, adoption, logs."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from reconcile.local import supervisor as supervisor_module
from reconcile.local.probes import ProbeSpec
from reconcile.local.processes import free_port
from reconcile.local.supervisor import Phase, Replica, ReplicaSpec, Supervisor
from resolvers.context import Context
from store.db import Store
from store.logs import LogQuery, LogWriter, read_lines
from tests.factories import make_environment, make_project, make_service

DEADLINE_S = 30.0
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python-web"


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # The behaviour under test is the same at any speed; tests should not wait a second.
    monkeypatch.setattr(supervisor_module, "BACKOFF_BASE_S", 0.05)


@pytest.fixture
async def service_id(ctx: Context) -> str:
    project = await make_project(ctx)
    await make_environment(ctx, project)
    return (await make_service(ctx)).id


@pytest.fixture
async def writer(store: Store) -> AsyncIterator[LogWriter]:
    logs = LogWriter(store, flush_interval=0.02)
    logs.start()
    yield logs
    await logs.close()


@pytest.fixture
async def supervisor(tmp_path: Path, writer: LogWriter) -> AsyncIterator[Supervisor]:
    sup = Supervisor(tmp_path / "runtime", writer)
    yield sup
    for replica in sup.replicas():
        await sup.stop(replica.spec.name)


def spec(
    service_id: str,
    *,
    name: str = "shop-stage-api-0",
    command: list[str] | None = None,
    cwd: Path = EXAMPLE,
    readiness: ProbeSpec | None = None,
    liveness: ProbeSpec | None = None,
    startup: ProbeSpec | None = None,
    grace_s: float = 2.0,
) -> ReplicaSpec:
    return ReplicaSpec(
        name=name,
        service_id=service_id,
        release_id="rel_test",
        index=0,
        command=command or [sys.executable, "app.py"],
        cwd=cwd,
        env={"PATH": os.environ["PATH"]},
        readiness=readiness,
        liveness=liveness,
        startup=startup,
        grace_s=grace_s,
    )


HEALTHZ = ProbeSpec("http", 0, "/healthz", period_s=0.1, timeout_s=1.0)


async def until(check: Callable[[], bool], what: str) -> None:
    async def wait() -> None:
        while not check():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(wait(), DEADLINE_S)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def test_a_replica_becomes_ready_and_its_output_reaches_the_log_pipeline(
    supervisor: Supervisor, writer: LogWriter, store: Store, service_id: str
) -> None:
    replica = supervisor.ensure(spec(service_id, readiness=HEALTHZ))
    await until(lambda: replica.status.ready, "ready")
    assert replica.status.phase is Phase.RUNNING
    assert replica.status.port is not None and alive(replica.status.pid)
    assert replica.status.message == "ready: GET /healthz answered 200"
    process = psutil.Process(replica.status.pid or 0)
    assert os.getsid(process.pid) == process.pid, "a replica leads a session of its own"
    assert process.environ()["PORT"] == str(replica.status.port)

    async def logged() -> list[str]:
        await writer.flush()
        async with store.read() as session:
            return [r.message for r in await read_lines(session, LogQuery(service_id), 100)]

    await until_async(
        lambda lines: f"listening on {replica.status.port}" in lines, logged, "logged"
    )


async def until_async(
    check: Callable[[list[str]], bool],
    fetch: Callable[[], Awaitable[list[str]]],
    what: str,
) -> None:
    async def wait() -> None:
        while True:
            value = await fetch()
            if check(value):
                return
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(wait(), DEADLINE_S)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


async def test_a_killed_replica_restarts(supervisor: Supervisor, service_id: str) -> None:
    replica = supervisor.ensure(spec(service_id, readiness=HEALTHZ))
    await until(lambda: replica.status.ready, "ready")
    first = replica.status.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await until(lambda: replica.status.pid != first and replica.status.ready, "restarted")
    assert replica.status.restarts == 1
    assert not alive(first)


async def test_a_replica_that_exits_at_once_is_in_a_crash_loop(
    supervisor: Supervisor, service_id: str
) -> None:
    replica = supervisor.ensure(
        spec(service_id, command=[sys.executable, "-c", "import sys; sys.exit(3)"])
    )
    await until(lambda: replica.status.phase is Phase.CRASH_LOOP, "crash loop")
    assert replica.status.message.startswith("exited with code 3; restarting in")
    assert replica.status.restarts >= 2
    assert not replica.status.ready


async def test_failing_liveness_restarts_the_replica(
    supervisor: Supervisor, service_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A backoff long enough to read the reason the replica is waiting to restart for.
    monkeypatch.setattr(supervisor_module, "BACKOFF_BASE_S", 5.0)
    app = tmp_path / "app"
    app.mkdir()
    (app / "sick.py").write_text(
        textwrap.dedent(
            """
            import os
            from http.server import BaseHTTPRequestHandler, HTTPServer

            class Handler(BaseHTTPRequestHandler):
                def do_GET(self):
                    self.send_response(200 if self.path == "/ready" else 500)
                    self.end_headers()

                def log_message(self, *args):
                    pass

            HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
            """
        )
    )
    live = ProbeSpec("http", 0, "/alive", period_s=0.05, failure_threshold=2)
    replica = supervisor.ensure(
        spec(
            service_id,
            command=[sys.executable, "sick.py"],
            cwd=app,
            readiness=ProbeSpec("http", 0, "/ready", period_s=0.05),
            liveness=live,
            # Liveness counts only once the process listens (as in Kubernetes), so a slow
            # start on a loaded machine cannot fail it with "connection refused" first.
            startup=ProbeSpec("http", 0, "/ready", period_s=0.05, failure_threshold=400),
        )
    )
    first = replica.status.pid
    await until(
        lambda: replica.status.message.startswith("liveness probe failed"), "liveness failed"
    )
    assert replica.status.message == (
        "liveness probe failed: GET /alive answered 500; restarting in 5s"
    )
    assert not replica.status.ready
    assert not alive(first), "a replica failing liveness is stopped before it is restarted"


async def test_stop_escalates_to_sigkill_after_the_grace_period(
    supervisor: Supervisor, service_id: str, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "stubborn.py").write_text(
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('up', flush=True)\nwhile True:\n    time.sleep(1)\n"
    )
    replica = supervisor.ensure(
        spec(service_id, command=[sys.executable, "stubborn.py"], cwd=app, grace_s=0.3)
    )
    await until(lambda: replica.status.ready, "running")
    pid = replica.status.pid
    await supervisor.stop(replica.spec.name)
    assert not alive(pid)
    assert replica.status.phase is Phase.STOPPED
    assert supervisor.replica(replica.spec.name) is None


async def test_a_new_supervisor_adopts_running_replicas_instead_of_starting_twins(
    tmp_path: Path, writer: LogWriter, service_id: str, store: Store
) -> None:
    first = Supervisor(tmp_path / "runtime", writer)
    replica = first.ensure(spec(service_id, readiness=HEALTHZ))
    await until(lambda: replica.status.ready, "ready")
    pid = replica.status.pid
    await first.detach_all()  # the control plane goes away; the replica keeps running
    assert alive(pid)

    second = Supervisor(tmp_path / "runtime", writer)
    assert second.recorded() == ["shop-stage-api-0"]
    adopted: Replica = second.ensure(spec(service_id, readiness=HEALTHZ))
    try:
        await until(lambda: adopted.status.ready, "adopted and ready")
        assert adopted.status.pid == pid, "the running replica was adopted, not doubled"
        assert adopted.status.restarts == 0
    finally:
        await second.stop("shop-stage-api-0")
    assert not alive(pid)


async def test_a_dead_recorded_replica_is_started_again(
    tmp_path: Path, writer: LogWriter, service_id: str
) -> None:
    first = Supervisor(tmp_path / "runtime", writer)
    replica = first.ensure(spec(service_id, readiness=HEALTHZ))
    await until(lambda: replica.status.ready, "ready")
    pid = replica.status.pid
    await first.detach_all()
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    await until(lambda: not alive(pid), "dead")

    second = Supervisor(tmp_path / "runtime", writer)
    fresh = second.ensure(spec(service_id, readiness=HEALTHZ))
    try:
        await until(lambda: fresh.status.ready, "started again")
        assert fresh.status.pid != pid
    finally:
        await second.stop("shop-stage-api-0")


async def test_no_line_is_lost_or_repeated_across_a_control_plane_restart(
    tmp_path: Path, writer: LogWriter, service_id: str, store: Store
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "chatty.py").write_text(
        "import sys, time\n"
        "for i in range(20000):\n"
        "    print(f'line {i}')\n"
        "sys.stdout.flush()\n"
        "while True:\n    time.sleep(1)\n"
    )
    first = Supervisor(tmp_path / "runtime", writer)
    replica = first.ensure(spec(service_id, command=[sys.executable, "chatty.py"], cwd=app))
    await until(lambda: replica.status.ready, "running")
    await asyncio.sleep(0.2)  # let the tailer get part of the way
    await first.detach_all()
    second = Supervisor(tmp_path / "runtime", writer)
    second.ensure(spec(service_id, command=[sys.executable, "chatty.py"], cwd=app))

    async def stored() -> list[str]:
        await writer.flush()
        async with store.read() as session:
            rows = await read_lines(session, LogQuery(service_id), 30000)
        return [r.message for r in rows]

    try:
        await until_async(lambda lines: len(lines) >= 20000, stored, "every line stored")
        lines = await stored()
        assert lines == [f"line {i}" for i in range(20000)]
    finally:
        await second.stop("shop-stage-api-0")


async def test_an_adopted_replica_keeps_its_readiness(
    tmp_path: Path, writer: LogWriter, service_id: str
) -> None:
    # Slow probes: the adopted replica must be ready before any probe has run again.
    slow = ProbeSpec("http", 0, "/healthz", period_s=60, timeout_s=1.0)
    first = Supervisor(tmp_path / "runtime", writer)
    replica = first.ensure(spec(service_id, readiness=HEALTHZ))
    await until(lambda: replica.status.ready, "ready")
    await first.detach_all()

    second = Supervisor(tmp_path / "runtime", writer)
    adopted = second.ensure(spec(service_id, readiness=replace(slow, initial_delay_s=60)))
    try:
        await until(lambda: adopted.status.pid is not None, "adopted")
        assert adopted.status.ready, "it took traffic before the restart and still does"
        assert adopted.status.phase is Phase.RUNNING
    finally:
        await second.stop(adopted.spec.name)


def _supervise_then_exit(runtime: str, service_id: str, database_url: str) -> None:
    """A control plane in a child process: start a replica, wait until it is ready, then
    leave normally — its event loop closes, which must not take the replica with it."""

    async def main() -> None:
        store = Store(database_url)
        logs = LogWriter(store)
        logs.start()
        sup = Supervisor(Path(runtime), logs)
        replica = sup.ensure(spec(service_id, readiness=HEALTHZ))
        await until(lambda: replica.status.ready, "ready in the child")
        await sup.detach_all()
        await logs.close()
        await store.close()

    asyncio.run(main())


async def test_replicas_outlive_a_control_plane_that_exits_normally(
    tmp_path: Path, writer: LogWriter, service_id: str, store: Store
) -> None:
    runtime = tmp_path / "runtime"
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    child = context.Process(
        target=_supervise_then_exit,
        args=(str(runtime), service_id, store.url.render_as_string(hide_password=False)),
    )
    child.start()
    await loop.run_in_executor(None, child.join, DEADLINE_S)
    assert child.exitcode == 0
    state = json.loads((runtime / "shop-stage-api-0" / "state.json").read_text())
    assert alive(state["pid"]), "the replica survived its control plane's exit"
    adopter = Supervisor(runtime, writer)
    adopted = adopter.ensure(spec(service_id, readiness=HEALTHZ))
    try:
        await until(lambda: adopted.status.ready, "adopted")
        assert adopted.status.pid == state["pid"]
    finally:
        await adopter.stop(adopted.spec.name)
    assert not alive(state["pid"])
    assert not (runtime / "shop-stage-api-0").exists(), "a stopped replica leaves no files"


async def test_a_process_spawned_but_never_recorded_is_adopted_not_doubled(
    tmp_path: Path, writer: LogWriter, service_id: str
) -> None:
    # What a control plane killed between fork and recording the pid leaves behind: a
    # state.json naming a spawn token and a port, and a process carrying that token.
    home = tmp_path / "runtime" / "shop-stage-api-0"
    home.mkdir(parents=True)
    port = free_port()
    token = "f00dfeed12345678"
    (home / "state.json").write_text(json.dumps({"port": port, "spawning": token}))
    orphan = subprocess.Popen(  # noqa: ASYNC220 - an orphan, as a killed spawner leaves it
        [sys.executable, "app.py"],
        cwd=EXAMPLE,
        env={**os.environ, "PORT": str(port), supervisor_module.SPAWN_TOKEN_ENV: token},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    sup = Supervisor(tmp_path / "runtime", writer)
    replica = sup.ensure(spec(service_id, readiness=HEALTHZ))
    try:
        await until(lambda: replica.status.ready, "ready")
        assert replica.status.pid == orphan.pid
        assert replica.status.port == port
        assert replica.status.restarts == 0
    finally:
        await sup.stop(replica.spec.name)
        orphan.wait(DEADLINE_S)


async def test_a_command_that_cannot_start_backs_off_with_the_reason(
    supervisor: Supervisor, service_id: str, tmp_path: Path
) -> None:
    replica = supervisor.ensure(spec(service_id, command=["no-such-program-here"], cwd=tmp_path))
    await until(lambda: replica.status.phase is Phase.CRASH_LOOP, "crash loop")
    assert replica.status.message.startswith(
        f"could not start 'no-such-program-here' in {tmp_path}: No such file or directory; "
        "restarting in"
    )
    assert replica.status.pid is None and not replica.status.ready


async def test_an_unfinished_last_line_is_not_joined_to_the_next_process_output(
    supervisor: Supervisor, writer: LogWriter, store: Store, service_id: str
) -> None:
    # Each run prints a line without a newline and dies; the next run does the same.
    script = "import sys; sys.stdout.write('no newline'); sys.stdout.flush(); sys.exit(1)"
    replica = supervisor.ensure(spec(service_id, command=[sys.executable, "-c", script]))
    await until(lambda: replica.status.restarts >= 3, "three restarts")
    await supervisor.stop(replica.spec.name)
    async with store.read() as session:
        lines = [r.message for r in await read_lines(session, LogQuery(service_id), 100)]
    assert lines and set(lines) == {"no newline"}, lines
