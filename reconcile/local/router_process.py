"""The router as the control plane sees it: a process to start once, adopt after a restart,
and stop.

The router must outlive the control plane — services keep answering while ``enclii serve``
restarts — so, like a replica (``supervisor.py``), it runs in its own session with its output
appended to a file (``DATA_DIR/router/router.log``; never a pipe, whose reader dying would kill
it with SIGPIPE), and it records itself in ``DATA_DIR/router/state.json``. A control plane
that finds a live process there — same pid, same start time, same port — adopts it instead
of starting a twin that could not bind the port anyway.

It is started with ``subprocess.Popen`` rather than asyncio's subprocess support: an asyncio
subprocess transport kills a child still running when the transport is closed (or collected
unclosed), which could take the router down with the control plane's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import psutil

from reconcile.local.processes import alive
from reconcile.local.router import (
    DATABASE_URL_ENV,
    DEFAULT_FLUSH_INTERVAL_S,
    EXIT_PORT_IN_USE,
    IDLE_TIMEOUT_S,
    LOG_FILE,
    ROUTER_DIR,
    STATE_FILE,
    STATUS_PATH,
)

log = logging.getLogger(__name__)

START_DEADLINE_S: Final = 10.0
GRACE_S: Final = 15.0  # the router drains for up to 10 s, then flushes its metrics
KILL_WAIT_S: Final = 5.0
POLL_S: Final = 0.05
PROBE_TIMEOUT_S: Final = 1.0
LOG_LINES_SHOWN: Final = 15


class RouterError(Exception):
    """The router could not be started or reached."""


class RouterPortInUse(RouterError):
    """Another program listens on the router port."""


@dataclass(frozen=True)
class RecordedRouter:
    pid: int
    create_time: float | None
    port: int | None


def read_state(home: Path) -> RecordedRouter | None:
    try:
        data = json.loads((home / STATE_FILE).read_text())
        return RecordedRouter(int(data["pid"]), data.get("create_time"), data.get("port"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("ignoring an unreadable %s", home / STATE_FILE)
        return None


def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails as the router's own bind would (same options)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _holder(port: int) -> str:
    """Who listens on ``port``, when this user may know."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid is None:
                    break
                with contextlib.suppress(psutil.Error):
                    return f" (pid {conn.pid}, {psutil.Process(conn.pid).name()})"
                return f" (pid {conn.pid})"
    return ""


def port_taken_error(host: str, port: int) -> RouterPortInUse:
    return RouterPortInUse(
        f"The router port {port} on {host} is already in use by another program"
        f"{_holder(port)}. Stop that program, or start Enclii with --router-port set to a "
        "free port."
    )


class RouterProcess:
    """Start the router, or adopt the one already running for this data dir."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        host: str = "127.0.0.1",
        database_url: str | None = None,
        *,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        start_deadline_s: float = START_DEADLINE_S,
        grace_s: float = GRACE_S,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.home = self.data_dir / ROUTER_DIR
        self.port = port
        self.host = host
        self.database_url = database_url
        self.flush_interval_s = flush_interval_s
        self.idle_timeout_s = idle_timeout_s
        self.start_deadline_s = start_deadline_s
        self.grace_s = grace_s
        self.adopted = False
        self._process: subprocess.Popen[bytes] | None = None
        self._recorded: RecordedRouter | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._recorded.pid if self._recorded is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit code, when this object started the router and it has exited."""
        return self._process.poll() if self._process is not None else None

    def running(self) -> bool:
        recorded = self._recorded
        return recorded is not None and alive(recorded.pid, recorded.create_time)

    # -- ensure -------------------------------------------------------------------------------

    async def ensure(self) -> None:
        """Make sure the router serves on ``port``: adopt it, or start it. Idempotent."""
        if self.running():
            await self._wait_serving()
            return
        recorded = read_state(self.home)
        if recorded is not None and alive(recorded.pid, recorded.create_time):
            self._recorded = recorded
            if recorded.port == self.port and await self._adopt():
                return
            await self.stop()
        if port_in_use(self.host, self.port):
            raise port_taken_error(self.host, self.port)
        await self._start()

    async def _adopt(self) -> bool:
        try:
            await self._wait_serving()
        except RouterError as exc:
            log.warning("not adopting the recorded router: %s; starting a new one", exc)
            return False
        self.adopted = True
        log.info("adopted the router (pid %s) on %s", self.pid, self.url)
        return True

    async def _start(self) -> None:
        self.adopted = False
        log_path = self.home / LOG_FILE
        offset = self._spawn(log_path)
        try:
            await self._wait_serving()
        except RouterError:
            code = self.returncode
            if code is None:
                await self.stop()
                raise
            tail = _tail(log_path, offset)
            if code == EXIT_PORT_IN_USE:
                raise port_taken_error(self.host, self.port) from None
            raise RouterError(
                f"The router exited with code {code} before serving on {self.url}. "
                f"The end of {log_path}:\n{tail}"
            ) from None
        log.info("started the router (pid %s) on %s", self.pid, self.url)

    def _spawn(self, log_path: Path) -> int:
        """Start the process; the log's size before it, to show only its own lines."""
        self.home.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "reconcile.local.router",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--host",
            self.host,
            "--flush-interval",
            str(self.flush_interval_s),
            "--idle-timeout",
            str(self.idle_timeout_s),
        ]
        env = {k: v for k, v in os.environ.items() if k != DATABASE_URL_ENV}
        if self.database_url:
            env[DATABASE_URL_ENV] = self.database_url  # not on the command line, which ps shows
        with log_path.open("ab") as output:
            offset = output.tell()
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        create_time: float | None = None
        with contextlib.suppress(psutil.Error):
            create_time = psutil.Process(self._process.pid).create_time()
        self._recorded = RecordedRouter(self._process.pid, create_time, self.port)
        return offset

    async def _wait_serving(self) -> dict[str, Any]:
        """Wait until the router answers ``/.enclii/router`` as itself; its answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_deadline_s
        timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
        last = "no answer"
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
            while True:
                if not self.running():
                    raise RouterError(f"the router (pid {self.pid}) is not running")
                try:
                    async with session.get(self.url + STATUS_PATH) as response:
                        if response.status == 200:
                            status: dict[str, Any] = await response.json()
                            if status.get("pid") == self.pid:
                                return status
                            last = f"pid {status.get('pid')} answers instead"
                        else:
                            last = f"status {response.status}"
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    last = exc.__class__.__name__
                if loop.time() >= deadline:
                    raise RouterError(
                        f"the router (pid {self.pid}) did not answer at {self.url}{STATUS_PATH} "
                        f"within {self.start_deadline_s:g} s ({last}); see "
                        f"{self.home / LOG_FILE}"
                    )
                await asyncio.sleep(POLL_S)

    # -- stop ---------------------------------------------------------------------------------

    async def stop(self) -> None:
        """SIGTERM, a grace period for requests in flight and the last metrics, SIGKILL."""
        recorded = self._recorded or read_state(self.home)
        if recorded is not None and alive(recorded.pid, recorded.create_time):
            _signal(recorded.pid, signal.SIGTERM)
            if not await self._exited(recorded, self.grace_s):
                log.warning("the router (pid %d) ignored SIGTERM; killing it", recorded.pid)
                _signal(recorded.pid, signal.SIGKILL)
                await self._exited(recorded, KILL_WAIT_S)
        if self._process is not None:
            self._process.poll()  # reap our child
        if recorded is not None:
            _forget(self.home, recorded.pid)
        self._recorded = None

    async def _exited(self, recorded: RecordedRouter, within_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while alive(recorded.pid, recorded.create_time):
            if loop.time() >= deadline:
                return False
            if self._process is not None:
                self._process.poll()  # a child of ours stays a zombie until reaped
            await asyncio.sleep(POLL_S)
        return True


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def _forget(home: Path, pid: int) -> None:
    recorded = read_state(home)
    if recorded is not None and recorded.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            (home / STATE_FILE).unlink()


def _tail(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-LOG_LINES_SHOWN:]) or "(nothing)"
