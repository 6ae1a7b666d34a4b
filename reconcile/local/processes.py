"""Facts about OS processes the local data plane starts and later finds again.

A pid alone is not an identity — the kernel reuses them — so a recorded process is the pair
(pid, start time): ``alive`` is true only for the very process that was recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from pathlib import Path

import psutil

# psutil reports start times rounded to the clock tick; a different process reusing the pid
# starts at least a tick later.
START_TIME_TOLERANCE_S = 0.01


def alive(pid: int, create_time: float | None) -> bool:
    """Whether ``pid`` runs and is the process that started at ``create_time``."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return (
            create_time is None or abs(process.create_time() - create_time) < START_TIME_TOLERANCE_S
        )
    except psutil.Error:
        return False


def start_time(pid: int) -> float | None:
    with contextlib.suppress(psutil.Error):
        return float(psutil.Process(pid).create_time())
    return None


def signal_group(pid: int, signum: signal.Signals) -> None:
    """Signal the process group ``pid`` leads (replicas and the router lead their own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def kill_recorded(root: Path) -> int:
    """SIGKILL every router and replica recorded under ``root`` (their ``state.json``
    files), for tests and benchmarks that must leave no process behind — the data plane is
    built to outlive the control plane. Returns how many were still running."""
    killed = 0
    for state_file in [*root.glob("**/router/state.json"), *root.glob("**/runtime/*/state.json")]:
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            continue
        pid = state.get("pid")
        if isinstance(pid, int) and alive(pid, state.get("create_time")):
            signal_group(pid, signal.SIGKILL)
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).wait(5)
            killed += 1
    return killed
