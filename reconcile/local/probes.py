"""Health probes of a replica: an HTTP GET or a TCP connect, each with its own deadline.

Kubernetes semantics: a probe passes on a 2xx or 3xx answer (HTTP) or an accepted
connection (TCP) within ``timeoutSeconds``; a ``ProbeTracker`` turns single results into a
state — ``successThreshold`` passes in a row make it pass, ``failureThreshold`` failures in
a row make it fail.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Final

from reconcile.driver import ProbeSpec as ProbeSpec  # where probes are described

USER_AGENT: Final = "enclii-probe/1"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str


async def probe_once(spec: ProbeSpec, host: str = "127.0.0.1") -> ProbeResult:
    try:
        async with asyncio.timeout(spec.timeout_s):
            return await _probe(spec, host)
    except TimeoutError:
        what = f"GET {spec.path}" if spec.kind == "http" else "connect"
        return ProbeResult(False, f"{what} on port {spec.port} timed out after {spec.timeout_s:g}s")


async def _probe(spec: ProbeSpec, host: str) -> ProbeResult:
    try:
        reader, writer = await asyncio.open_connection(host, spec.port)
    except OSError as exc:
        return ProbeResult(False, f"port {spec.port} refused the connection ({exc.strerror})")
    try:
        if spec.kind == "tcp":
            return ProbeResult(True, f"port {spec.port} accepts connections")
        request = (
            f"GET {spec.path} HTTP/1.1\r\nHost: {host}:{spec.port}\r\n"
            f"User-Agent: {USER_AGENT}\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        status_line = await reader.readline()
        parts = status_line.decode(errors="replace").split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return ProbeResult(False, f"GET {spec.path} got no HTTP answer")
        status = int(parts[1])
        ok = 200 <= status < 400
        return ProbeResult(ok, f"GET {spec.path} answered {status}")
    except OSError as exc:
        return ProbeResult(False, f"GET {spec.path} failed: {exc}")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class ProbeTracker:
    """Consecutive results, turned into passing / failing per the thresholds."""

    def __init__(self, spec: ProbeSpec) -> None:
        self.spec = spec
        self.passing = False
        self.failed = False
        self._successes = 0
        self._failures = 0
        self.last: ProbeResult | None = None

    def record(self, result: ProbeResult) -> None:
        self.last = result
        if result.ok:
            self._successes += 1
            self._failures = 0
            if self._successes >= self.spec.success_threshold:
                self.passing, self.failed = True, False
        else:
            self._failures += 1
            self._successes = 0
            if self._failures >= self.spec.failure_threshold:
                self.passing, self.failed = False, True
