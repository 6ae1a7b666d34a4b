"""Facts about OS processes the local data plane starts and later finds again.

A pid alone is not an identity — the kernel reuses them — so a recorded process is the pair
(pid, start time): ``alive`` is true only for the very process that was recorded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket

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
