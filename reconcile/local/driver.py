"""The local driver: releases run as supervised processes, traffic goes through the router.

``run`` turns a workload into replicas named ``<service>--<release>--<index>`` for the
supervisor (which adopts a replica that still runs from before a restart); ``route``
records where a service's traffic should go, and the routing table the router reads is
rebuilt from that and from which replicas are ready *now* — a replica that stops being ready
leaves the table at once, without waiting for a reconcile.

After a restart the driver starts from the routing table on disk, so the router keeps
sending traffic where it did until the controller has looked at every service again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp

from reconcile.driver import (
    DriverError,
    ProbeSpec,
    ReplicaObservation,
    TrafficRoute,
    Workload,
    parse_workload_name,
    workload_name,
)
from reconcile.local.processes import alive
from reconcile.local.router import STATUS_PATH
from reconcile.local.routing import Backend, RouteEntry, RoutingTable, read_table, write_table
from reconcile.local.supervisor import STATE_FILE, Replica, ReplicaSpec, Supervisor
from reconcile.local.usage import UsageMeter
from store.logs import LogWriter

log = logging.getLogger(__name__)

UPSTREAM_HOST = "127.0.0.1"
ROUTER_SYNC_S = 3.0
ROUTER_SYNC_POLL_S = 0.01


@dataclass(frozen=True)
class _Traffic:
    service: str
    routes: tuple[TrafficRoute, ...]
    weights: tuple[tuple[str, int], ...]  # (release_id, percent)


class LocalDriver:
    def __init__(
        self,
        data_dir: Path,
        logs: LogWriter,
        on_change: Callable[[str], None] | None = None,
        router_url: str | None = None,
    ) -> None:
        """``on_change(service_id)`` hears of every replica change (to wake the controller);
        with ``router_url``, ``route`` returns once the router has loaded the new table."""
        self.router_url = router_url
        self.runtime_dir = data_dir / "runtime"
        self.router_dir = data_dir / "router"
        self.supervisor = Supervisor(self.runtime_dir, logs, on_change=self._replica_changed)
        self.usage = UsageMeter()
        self._on_change = on_change
        on_disk = read_table(self.router_dir)
        self._traffic: dict[str, _Traffic] = _traffic_from(on_disk)
        # Until ``run`` claims a release again, its replicas are the ones the last table
        # listed: a restarted control plane must not empty the router's table.
        self._inherited: dict[str, tuple[str, ...]] = {
            b.release_id: b.upstreams for r in on_disk.routes for b in r.backends
        }
        self._written: RoutingTable | None = None
        self._acknowledged = 0  # the newest generation the router said it serves
        self._rewrite: asyncio.Handle | None = None

    # -- workloads ------------------------------------------------------------------------

    async def run(self, workload: Workload) -> None:
        if not workload.artifact.is_dir():
            raise DriverError(
                f"release {workload.release_id} has no built files at {workload.artifact}; "
                "rebuild it (createRelease) and deploy the new release"
            )
        base = workload_name(workload.service_id, workload.release_id)
        self._inherited.pop(workload.release_id, None)
        for index in range(workload.replicas):
            self.supervisor.ensure(_replica_spec(workload, f"{base}--{index}", index))
        for name in self._names(workload.service_id, workload.release_id):
            parsed = parse_workload_name(name)
            if parsed is not None and parsed[2] >= workload.replicas:
                await self.supervisor.stop(name)

    async def retire(self, service_id: str, release_id: str) -> None:
        self._inherited.pop(release_id, None)
        names = self._names(service_id, release_id)
        await asyncio.gather(*(self.supervisor.stop(name) for name in names))
        self._schedule_table()

    def _names(self, service_id: str, release_id: str | None = None) -> list[str]:
        """Replicas of the service (and release) this driver supervises or has on disk."""
        names = {r.spec.name for r in self.supervisor.replicas()} | set(self.supervisor.recorded())
        found = []
        for name in sorted(names):
            parsed = parse_workload_name(name)
            if parsed is None or parsed[0] != service_id:
                continue
            if release_id is None or parsed[1] == release_id:
                found.append(name)
        return found

    async def observe(self, service_id: str) -> dict[str, list[ReplicaObservation]]:
        found: dict[str, list[ReplicaObservation]] = {}
        seen: set[str] = set()
        for name in self._names(service_id):
            parsed = parse_workload_name(name)
            assert parsed is not None
            _service, release_id, index = parsed
            replica = self.supervisor.replica(name)
            observation = (
                _observe(replica, index) if replica is not None else self._unsupervised(name, index)
            )
            if observation is not None:
                cores, memory = self.usage.measure(name, observation.pid)
                observation = replace(observation, cpu_cores=cores, memory_bytes=memory)
                found.setdefault(release_id, []).append(observation)
                seen.add(name)
        self.usage.forget(
            {
                name
                for name in self.usage.names() - seen
                if (parsed := parse_workload_name(name)) and parsed[0] == service_id
            }
        )
        return found

    def _unsupervised(self, name: str, index: int) -> ReplicaObservation | None:
        """A replica from before a restart that nothing has claimed yet: alive or gone."""
        try:
            state = json.loads((self.runtime_dir / name / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None
        pid, created = state.get("pid"), state.get("create_time")
        if not pid or not alive(pid, created):
            return None
        port = state.get("port")
        return ReplicaObservation(
            name=name,
            index=index,
            phase="running",
            ready=False,
            restarts=int(state.get("restarts", 0)),
            pid=pid,
            address=f"{UPSTREAM_HOST}:{port}" if port else None,
            message="running, not supervised since the control plane restarted",
            last_exit=None,
        )

    # -- traffic --------------------------------------------------------------------------

    async def route(
        self,
        service_id: str,
        service: str,
        routes: Sequence[TrafficRoute],
        weights: Mapping[str, int],
    ) -> None:
        traffic = _Traffic(
            service, tuple(routes), tuple(sorted((r, w) for r, w in weights.items() if w > 0))
        )
        if self._traffic.get(service_id) != traffic:
            self._traffic[service_id] = traffic
        self.write_table()
        await self._router_caught_up()

    async def _router_caught_up(self) -> None:
        """Wait (at most ROUTER_SYNC_S) until the router serves the table last written: a
        deployment is only HEALTHY, a rollback only done, once traffic actually moved."""
        if self.router_url is None or self._written is None:
            return
        wanted = self._written.generation
        if self._acknowledged >= wanted:
            return
        deadline = time.monotonic() + ROUTER_SYNC_S
        timeout = aiohttp.ClientTimeout(total=ROUTER_SYNC_S)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while time.monotonic() < deadline:
                    async with session.get(self.router_url + STATUS_PATH) as response:
                        loaded = int((await response.json()).get("generation", 0))
                    if loaded >= wanted:
                        self._acknowledged = loaded
                        return
                    await asyncio.sleep(ROUTER_SYNC_POLL_S)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("the router did not confirm routing table %d: %s", wanted, exc)
            return
        log.warning("the router has not loaded routing table %d after %ss", wanted, ROUTER_SYNC_S)

    async def unroute(self, service_id: str) -> None:
        if self._traffic.pop(service_id, None) is not None:
            self.write_table()

    async def known_services(self) -> set[str]:
        names = {r.spec.name for r in self.supervisor.replicas()} | set(self.supervisor.recorded())
        services = {parsed[0] for n in names if (parsed := parse_workload_name(n)) is not None}
        return services | set(self._traffic)

    def table(self) -> RoutingTable:
        """The routing table as things stand: weights as routed, ready replicas only."""
        ready: dict[str, list[str]] = {r: list(u) for r, u in self._inherited.items()}
        for replica in self.supervisor.replicas():
            if replica.status.ready and replica.status.port is not None:
                ready.setdefault(replica.spec.release_id, []).append(
                    f"{UPSTREAM_HOST}:{replica.status.port}"
                )
        entries: list[RouteEntry] = []
        for service_id, traffic in sorted(self._traffic.items()):
            backends = tuple(
                Backend(release_id, weight, tuple(sorted(ready.get(release_id, []))))
                for release_id, weight in traffic.weights
            )
            entries.extend(
                RouteEntry(route.host, route.path, service_id, traffic.service, backends)
                for route in traffic.routes
            )
        return RoutingTable(generation=time.time_ns(), routes=tuple(entries))

    def write_table(self) -> None:
        """Write the table if it differs from the last one written (the router re-reads the
        file on every change, so unchanged tables are not rewritten)."""
        table = self.table()
        if self._written is not None and self._written.routes == table.routes:
            return
        write_table(self.router_dir, table)
        self._written = table

    def _schedule_table(self) -> None:
        # Many replicas change at once (a rollout); one rewrite per loop turn is enough.
        if self._rewrite is None:
            self._rewrite = asyncio.get_running_loop().call_soon(self._rewrite_now)

    def _rewrite_now(self) -> None:
        self._rewrite = None
        try:
            self.write_table()
        except OSError:
            log.exception("could not write the routing table; the router keeps the last one")

    def _replica_changed(self, replica: Replica) -> None:
        self._schedule_table()
        if self._on_change is not None:
            self._on_change(replica.spec.service_id)

    # -- lifecycle ------------------------------------------------------------------------

    async def detach(self) -> None:
        """The control plane is stopping: replicas and the router keep running."""
        if self._rewrite is not None:
            self._rewrite.cancel()
            self._rewrite = None
        await self.supervisor.detach_all()

    async def stop_everything(self) -> None:
        """Stop every replica this machine runs (tests, and ``enclii serve --stop``)."""
        names = {r.spec.name for r in self.supervisor.replicas()} | set(self.supervisor.recorded())
        await asyncio.gather(*(self.supervisor.stop(name) for name in names))
        for name in names:
            home = self.runtime_dir / name
            with contextlib.suppress(OSError, ValueError):
                state = json.loads((home / STATE_FILE).read_text())
                pid = state.get("pid")
                if pid and alive(pid, state.get("create_time")):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGKILL)


def _replica_spec(workload: Workload, name: str, index: int) -> ReplicaSpec:
    artifact = workload.artifact
    venv = artifact / "venv"
    path = [str(venv / "bin")] if venv.is_dir() else []
    node_bin = artifact / "app" / "node_modules" / ".bin"
    if node_bin.is_dir():
        path.append(str(node_bin))
    path.append(os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"))
    env = {
        "PATH": os.pathsep.join(path),
        "HOME": os.environ.get("HOME", str(artifact)),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PYTHONUNBUFFERED": "1",
        **({"VIRTUAL_ENV": str(venv)} if venv.is_dir() else {}),
        "ENCLII_SERVICE": workload.service,
        "ENCLII_RELEASE_ID": workload.release_id,
        "ENCLII_REPLICA": str(index),
        **workload.env,
    }
    return ReplicaSpec(
        name=name,
        service_id=workload.service_id,
        release_id=workload.release_id,
        index=index,
        command=list(workload.command),
        cwd=artifact / "app",
        env=env,
        readiness=_local_probe(workload.readiness),
        liveness=_local_probe(workload.liveness),
        startup=_local_probe(workload.startup),
        grace_s=workload.grace_s,
    )


def _local_probe(probe: ProbeSpec | None) -> ProbeSpec | None:
    # A local replica listens on the one port it is given (PORT), whatever the spec's port.
    return replace(probe, port=0) if probe is not None else None


def _observe(replica: Replica, index: int) -> ReplicaObservation:
    status = replica.status
    return ReplicaObservation(
        name=replica.spec.name,
        index=index,
        phase=status.phase.value,
        ready=status.ready,
        restarts=status.restarts,
        pid=status.pid,
        address=f"{UPSTREAM_HOST}:{status.port}" if status.port else None,
        message=status.message,
        last_exit=status.last_exit,
    )


def _traffic_from(table: RoutingTable) -> dict[str, _Traffic]:
    traffic: dict[str, _Traffic] = {}
    for entry in table.routes:
        current = traffic.get(entry.service_id)
        route = TrafficRoute(entry.host, entry.path)
        weights = tuple(sorted((b.release_id, b.weight) for b in entry.backends if b.weight > 0))
        routes = (*current.routes, route) if current else (route,)
        traffic[entry.service_id] = _Traffic(entry.service, routes, weights)
    return traffic
