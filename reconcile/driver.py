"""The data-plane driver: what the deployment controller asks of wherever services run.

The controller decides *what* should run and *where traffic goes*; a driver makes it so on
one kind of data plane and reports what it observes. The vocabulary is chosen to map onto
both drivers without translation:

================  ==============================  =========================================
driver call       local processes                 Kubernetes (Appendix B)
================  ==============================  =========================================
``run``           N supervised OS processes       a Deployment per release, scaled to N
``retire``        stop those processes            delete that Deployment
``observe``       supervisor status per replica   the Deployment's Pods and their conditions
``route``         the router's routing table      a Service per release + weighted Ingress
================  ==============================  =========================================

Every name a driver creates is derived from the service and release ids (see
``workload_name``), so a restarted control plane finds what exists instead of creating twins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class DriverError(Exception):
    """The data plane refused something it will keep refusing (a release it cannot run);
    the message says why and what to do."""


def workload_name(service_id: str, release_id: str) -> str:
    """The deterministic name of a release's workload; replicas add ``--<index>``."""
    return f"{service_id}--{release_id}"


def parse_workload_name(name: str) -> tuple[str, str, int] | None:
    """(service_id, release_id, index) of a replica name, or None if it is not one."""
    parts = name.split("--")
    if len(parts) != 3 or not parts[2].isdigit():
        return None
    return parts[0], parts[1], int(parts[2])


@dataclass(frozen=True)
class ProbeSpec:
    """A startup, readiness or liveness probe, with Kubernetes' fields and defaults."""

    kind: str  # http | tcp
    port: int
    path: str = "/"
    timeout_s: float = 1.0
    period_s: float = 10.0
    initial_delay_s: float = 0.0
    failure_threshold: int = 3
    success_threshold: int = 1

    @classmethod
    def from_spec(cls, probe: dict[str, Any], default_port: int) -> ProbeSpec:
        """From a normalised Service Spec probe (``spec.health.readiness`` and so on)."""
        http = probe.get("httpGet")
        tcp = probe.get("tcp")
        target = http if http is not None else tcp or {}
        return cls(
            kind="http" if http is not None else "tcp",
            port=int(target.get("port") or default_port),
            path=str(http.get("path", "/")) if http is not None else "/",
            timeout_s=float(probe.get("timeoutSeconds", 1)),
            period_s=float(probe.get("periodSeconds", 10)),
            initial_delay_s=float(probe.get("initialDelaySeconds", 0)),
            failure_threshold=int(probe.get("failureThreshold", 3)),
            success_threshold=int(probe.get("successThreshold", 1)),
        )


@dataclass(frozen=True)
class Workload:
    """One release of one service, as it should run."""

    service_id: str
    release_id: str
    service: str  # "name.env.project", for names and messages
    replicas: int
    command: Sequence[str]
    artifact: Path  # the built release directory (local); the image reference's home (k8s)
    env: Mapping[str, str]
    ports: Sequence[int]
    readiness: ProbeSpec | None = None
    liveness: ProbeSpec | None = None
    startup: ProbeSpec | None = None
    grace_s: float = 10.0
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplicaObservation:
    name: str
    index: int
    phase: str  # starting | running | not-ready | crash-loop-back-off | stopped
    ready: bool
    restarts: int
    pid: int | None
    address: str | None  # host:port traffic reaches it at
    message: str
    last_exit: int | None
    # What the replica uses (None: not measured yet), for autoscaling. Not part of
    # ``as_json``: it changes on every look, and the runtime row records what lasts.
    cpu_cores: float | None = None
    memory_bytes: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "index": self.index,
            "phase": self.phase,
            "ready": self.ready,
            "restarts": self.restarts,
            "pid": self.pid,
            "address": self.address,
            "message": self.message,
            "lastExit": self.last_exit,
        }


@dataclass(frozen=True)
class TrafficRoute:
    host: str
    path: str


class Driver(Protocol):
    async def run(self, workload: Workload) -> None:
        """Make exactly ``workload.replicas`` replicas of the release exist (idempotent:
        adopts what runs, starts what is missing, stops indices past the count)."""

    async def retire(self, service_id: str, release_id: str) -> None:
        """Stop every replica of the release (graceful, then forced)."""

    async def observe(self, service_id: str) -> dict[str, list[ReplicaObservation]]:
        """The replicas of each release of the service that exist, by release id."""

    async def route(
        self,
        service_id: str,
        service: str,
        routes: Sequence[TrafficRoute],
        weights: Mapping[str, int],
    ) -> None:
        """Send the service's traffic on ``routes`` to its releases by ``weights`` (percent,
        summing to 100, or empty for none), only ever to ready replicas."""

    async def unroute(self, service_id: str) -> None:
        """The service takes no traffic any more (it was deleted)."""

    async def known_services(self) -> set[str]:
        """Services the data plane has anything of: replicas or routes."""
