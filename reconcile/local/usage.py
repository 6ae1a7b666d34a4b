"""What each replica uses, measured with psutil for the autoscaler: CPU in cores averaged
over the interval since the previous measurement, and resident memory — of the replica's
process and every process it started (a server with workers counts whole)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import psutil

MIN_INTERVAL_S: Final = 1.0  # shorter intervals say more about the scheduler than the load


@dataclass(frozen=True)
class _Sample:
    pid: int
    cpu_seconds: float
    at: float
    cores: float | None


class UsageMeter:
    def __init__(self, min_interval_s: float = MIN_INTERVAL_S) -> None:
        self.min_interval_s = min_interval_s
        self._samples: dict[str, _Sample] = {}

    def measure(self, name: str, pid: int | None) -> tuple[float | None, int | None]:
        """(cores, bytes) of replica ``name`` running as ``pid``; cores is None until two
        measurements of the same process are ``min_interval_s`` apart."""
        if pid is None:
            self._samples.pop(name, None)
            return None, None
        try:
            cpu_seconds, memory = _totals(pid)
        except psutil.Error:
            self._samples.pop(name, None)
            return None, None
        now = time.monotonic()
        previous = self._samples.get(name)
        if previous is None or previous.pid != pid:
            self._samples[name] = _Sample(pid, cpu_seconds, now, None)
            return None, memory
        elapsed = now - previous.at
        if elapsed < self.min_interval_s:
            return previous.cores, memory
        # A child that exited takes its CPU time out of the sum: never report less than 0.
        cores = max(0.0, cpu_seconds - previous.cpu_seconds) / elapsed
        self._samples[name] = _Sample(pid, cpu_seconds, now, cores)
        return cores, memory

    def names(self) -> set[str]:
        return set(self._samples)

    def forget(self, names: set[str]) -> None:
        """Forget replicas that no longer exist."""
        for name in names:
            self._samples.pop(name, None)


def _totals(pid: int) -> tuple[float, int]:
    process = psutil.Process(pid)
    cpu, memory = 0.0, 0
    for member in [process, *process.children(recursive=True)]:
        try:
            with member.oneshot():
                times = member.cpu_times()
                cpu += times.user + times.system
                memory += member.memory_info().rss
        except psutil.Error:
            if member is process:
                raise
    return cpu, memory
