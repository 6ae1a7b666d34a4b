"""The deployment controller with the local driver: real builds, real replica processes,
real probes, the routing table file — on SQLite and PostgreSQL.

The controller is driven by hand (``converge``: reconcile until a condition holds, as the
runner would, honouring its requeue delays), so each test states exactly which world it
expects after which decisions."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import tarfile
import textwrap
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from reconcile.builds import BuildController
from reconcile.deployments import DeploymentController, default_host
from reconcile.local.driver import LocalDriver
from reconcile.local.routing import RoutingTable, read_table
from reconcile.signing import PlatformKey
from resolvers.context import Context
from resolvers.deployments import deploy, rollback
from resolvers.errors import Conflict
from resolvers.releases import create_release
from resolvers.services import apply_service
from store.blobs import BlobStore
from store.db import Store
from store.events import DEPLOYMENT_PROGRESS, deployment_stream, project_stream, read_events
from store.logs import LogWriter
from store.models import (
    Deployment,
    DeploymentPhase,
    DeploymentStrategy,
    Release,
    ReleaseStatus,
    Runtime,
    RuntimeStatus,
    Service,
)
from tests.factories import make_environment, make_project
from tests.helpers import DEADLINE_S

T = TypeVar("T")

APP = textwrap.dedent(
    """
    import json, os, sys, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    mode = os.environ.get("MODE", "ok")
    if mode == "exit":
        print("cannot start: MODE=exit", flush=True)
        sys.exit(3)
    if mode == "slow":
        time.sleep(float(os.environ.get("DELAY", "1")))
    if mode == "burn":
        # About a fifth of a core until STOP_FILE appears: load for the autoscaler.
        import threading

        def burn():
            while not os.path.exists(os.environ["STOP_FILE"]):
                end = time.monotonic() + 0.01
                while time.monotonic() < end:
                    pass
                time.sleep(0.04)

        threading.Thread(target=burn, daemon=True).start()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/healthz" and mode == "unready":
                self.send_response(503)
                self.end_headers()
                return
            body = json.dumps({"release": os.environ["ENCLII_RELEASE_ID"],
                               "replica": os.environ["ENCLII_REPLICA"],
                               "greeting": os.environ.get("GREETING", "")}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    print("listening on", os.environ["PORT"], flush=True)
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
    """
)


def spec_yaml(
    name: str = "api",
    *,
    replicas: int = 1,
    env: dict[str, str] | None = None,
    strategy: str = "rolling",
    deadline_s: int = 30,
    window_s: int = 600,
    max_replicas: int | None = None,
    cpu: str = "500m",
    hpa: str | None = None,
) -> str:
    env_lines = "".join(
        f"    - {{name: {k}, value: {json.dumps(v)}}}\n" for k, v in (env or {}).items()
    )
    return (
        "apiVersion: enclii.dev/v1\n"
        "kind: Service\n"
        "metadata:\n"
        "  project: shop\n"
        "  environment: stage\n"
        f"  name: {name}\n"
        "spec:\n"
        "  runtime:\n"
        f'    cmd: ["{sys.executable}", "app.py"]\n'
        "    ports: [8080]\n"
        f"    cpu: {cpu}\n"
        + (
            f"    replicas: {{min: {replicas}, max: {max_replicas}}}\n"
            if max_replicas is not None
            else f"    replicas: {{min: {replicas}}}\n"
        )
        + "  health:\n"
        "    readiness: {httpGet: {path: /healthz}, periodSeconds: 0.2, timeoutSeconds: 2}\n"
        + (f"  env:\n{env_lines}" if env_lines else "")
        + (f"  autoscaling:\n    hpa: {hpa}\n" if hpa else "")
        + "  deploy:\n"
        f"    strategy: {strategy}\n"
        f"    progressDeadlineSeconds: {deadline_s}\n"
        f"    rollbackWindowSeconds: {window_s}\n"
    )


@dataclass
class World:
    ctx: Context
    store: Store
    data_dir: Path
    source: Path
    blobs: BlobStore
    builds: BuildController
    driver: LocalDriver
    controller: DeploymentController

    async def release(self, service_id: str, source: Path | None = None) -> Release:
        """A built, signed, READY release of the test app (or of ``source``)."""
        release = await self.pending_release(service_id, source)
        await self.builds.reconcile(release.id)
        built = await self.get(Release, release.id)
        assert built.status is ReleaseStatus.READY, built.status_reason
        return built

    async def pending_release(self, service_id: str, source: Path | None = None) -> Release:
        """By path on SQLite; as an uploaded tarball on PostgreSQL (where paths are refused)."""
        source = source or self.source
        if self.store.backend == "sqlite":
            return await create_release(self.ctx, service_id, source_path=str(source))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(source, arcname="app")
        data = buffer.getvalue()

        async def chunks() -> AsyncIterator[bytes]:
            yield data

        return await create_release(self.ctx, service_id, blob_key=await self.blobs.put(chunks()))

    async def apply(self, **spec: Any) -> Service:
        return (await apply_service(self.ctx, spec_yaml(**spec))).service

    async def get(self, model: type[T], id: str) -> T:
        async with self.store.read() as session:
            row = await session.get(model, id)
            assert row is not None
            return row

    async def runtimes(self, service_id: str) -> dict[str, Runtime]:
        async with self.store.read() as session:
            rows = await session.scalars(select(Runtime).where(Runtime.service_id == service_id))
            return {r.release_id: r for r in rows}

    async def converge(self, service_id: str, done: Callable[[], Any], what: str) -> None:
        """Reconcile as the runner would until ``done()`` (sync or async) is true."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            result = await self.controller.reconcile(service_id)
            outcome = done()
            if asyncio.iscoroutine(outcome):
                outcome = await outcome
            if outcome:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not converged in {DEADLINE_S}s: {what}")
            await asyncio.sleep(min(result.requeue_after or 0.2, 0.2))

    async def phase_is(self, deployment_id: str, *phases: DeploymentPhase) -> bool:
        return (await self.get(Deployment, deployment_id)).phase in phases

    def table(self) -> RoutingTable:
        return read_table(self.data_dir / "router")


def answer(address: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{address}/", timeout=5) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


def upstreams(table: RoutingTable, host: str) -> dict[str, tuple[int, tuple[str, ...]]]:
    route = table.match(host, "/")
    assert route is not None, f"no route for {host}"
    return {b.release_id: (b.weight, b.upstreams) for b in route.backends}


@pytest.fixture
async def world(ctx: Context, store: Store, tmp_path: Path) -> AsyncIterator[World]:
    project = await make_project(ctx, "shop")
    await make_environment(ctx, project, "stage")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    source = tmp_path / "app"
    source.mkdir()
    (source / "app.py").write_text(APP)
    key = PlatformKey.load_or_create(data_dir)
    logs = LogWriter(store)
    logs.start()
    driver = LocalDriver(data_dir, logs)
    blobs = BlobStore(data_dir / "blobs")
    world = World(
        ctx=ctx,
        store=store,
        data_dir=data_dir,
        source=source,
        blobs=blobs,
        builds=BuildController(store, data_dir, key, blobs, logs),
        driver=driver,
        controller=DeploymentController(store, driver, key),
    )
    try:
        yield world
    finally:
        await driver.stop_everything()
        await logs.close()


async def test_a_first_deploy_becomes_healthy_and_routed(world: World) -> None:
    service = await world.apply(replicas=2)
    release = await world.release(service.id)
    deployment = await deploy(world.ctx, service.id, release.id)
    assert deployment.phase is DeploymentPhase.QUEUED

    await world.converge(
        service.id,
        lambda: world.phase_is(deployment.id, DeploymentPhase.HEALTHY),
        "the deployment becomes healthy",
    )
    runtime = (await world.runtimes(service.id))[release.id]
    assert (runtime.status, runtime.replicas_desired, runtime.replicas_ready, runtime.weight) == (
        RuntimeStatus.RUNNING,
        2,
        2,
        100,
    )
    assert sorted(r["index"] for r in runtime.replicas) == [0, 1]
    host = default_host("api", "stage", "shop")
    routed = upstreams(world.table(), host)
    assert list(routed) == [release.id]
    weight, addresses = routed[release.id]
    assert weight == 100
    assert sorted(addresses) == sorted(r["address"] for r in runtime.replicas)
    assert {answer(a)["release"] for a in addresses} == {release.id}

    done = await world.get(Deployment, deployment.id)
    conditions = {c["type"]: c for c in done.conditions}
    assert conditions["Verified"]["status"] == "True"
    assert conditions["Available"]["message"] == "2 of 2 replicas ready"
    assert conditions["Progressing"]["reason"] == "RolloutComplete"
    assert done.finished_at is not None and done.started_at is not None

    async with world.store.read() as session:
        phases = [
            e.type
            for e in await read_events(session, deployment_stream(deployment.id), 0)
            if e.type != DEPLOYMENT_PROGRESS
        ]
    assert phases == ["deployment.queued", "deployment.deploying", "deployment.healthy"]


async def test_reconciling_a_settled_service_changes_nothing(world: World) -> None:
    service = await world.apply()
    release = await world.release(service.id)
    deployment = await deploy(world.ctx, service.id, release.id)
    await world.converge(
        service.id, lambda: world.phase_is(deployment.id, DeploymentPhase.HEALTHY), "healthy"
    )

    async def state() -> tuple[Any, ...]:
        async with world.store.read() as session:
            events = await read_events(session, project_stream(service.project_id), 0)
        runtime = (await world.runtimes(service.id))[release.id]
        row = await world.get(Deployment, deployment.id)
        return (
            len(events),
            (runtime.status, runtime.weight, runtime.replicas, runtime.warm_until),
            (row.phase, row.conditions, row.updated_at),
            (world.data_dir / "router" / "routes.json").read_bytes(),
        )

    before = await state()
    for _ in range(3):
        await world.controller.reconcile(service.id)
    after = await state()
    for a, b in zip(after, before, strict=True):
        assert a == b


async def test_a_second_deploy_rolls_and_keeps_the_first_warm(world: World) -> None:
    service = await world.apply(replicas=2)
    first = await world.release(service.id)
    one = await deploy(world.ctx, service.id, first.id)
    await world.converge(service.id, lambda: world.phase_is(one.id, DeploymentPhase.HEALTHY), "1")
    await world.apply(replicas=2, env={"GREETING": "v2"})
    second = await world.release(service.id)
    two = await deploy(world.ctx, service.id, second.id)
    assert two.from_release_id == first.id

    seen_weights: set[int] = set()

    async def healthy() -> bool:
        runtime = (await world.runtimes(service.id)).get(second.id)
        if runtime is not None:
            seen_weights.add(runtime.weight)
        return await world.phase_is(two.id, DeploymentPhase.HEALTHY)

    await world.converge(service.id, healthy, "the second deployment becomes healthy")
    assert seen_weights <= {0, 50, 100}
    runtimes = await world.runtimes(service.id)
    assert (runtimes[second.id].weight, runtimes[second.id].status) == (100, RuntimeStatus.RUNNING)
    old = runtimes[first.id]
    assert (old.weight, old.status, old.replicas_ready) == (0, RuntimeStatus.RUNNING, 2)
    assert old.warm_until is not None
    routed = upstreams(world.table(), default_host("api", "stage", "shop"))
    assert list(routed) == [second.id]
    assert {answer(a)["greeting"] for a in routed[second.id][1]} == {"v2"}
    # The warm replicas still answer, ready for a rollback.
    assert {answer(r["address"])["release"] for r in old.replicas} == {first.id}


async def test_a_rollback_to_a_warm_release_moves_traffic_in_one_reconcile(world: World) -> None:
    service = await world.apply()
    first = await world.release(service.id)
    one = await deploy(world.ctx, service.id, first.id)
    await world.converge(service.id, lambda: world.phase_is(one.id, DeploymentPhase.HEALTHY), "1")
    second = await world.release(service.id)
    two = await deploy(world.ctx, service.id, second.id)
    await world.converge(service.id, lambda: world.phase_is(two.id, DeploymentPhase.HEALTHY), "2")

    back = await rollback(world.ctx, service.id)
    assert (back.to_release_id, back.from_release_id) == (first.id, second.id)
    assert (await world.get(Deployment, two.id)).phase is DeploymentPhase.ROLLED_BACK
    await world.controller.reconcile(service.id)
    assert (await world.get(Deployment, back.id)).phase is DeploymentPhase.HEALTHY
    routed = upstreams(world.table(), default_host("api", "stage", "shop"))
    assert list(routed) == [first.id]
    assert {answer(a)["release"] for a in routed[first.id][1]} == {first.id}
    runtimes = await world.runtimes(service.id)
    assert runtimes[second.id].weight == 0
    assert runtimes[second.id].warm_until is not None


async def test_a_release_that_exits_at_once_fails_by_its_deadline_and_traffic_stays(
    world: World,
) -> None:
    service = await world.apply()
    good = await world.release(service.id)
    one = await deploy(world.ctx, service.id, good.id)
    await world.converge(service.id, lambda: world.phase_is(one.id, DeploymentPhase.HEALTHY), "1")
    await world.apply(env={"MODE": "exit"}, deadline_s=10)
    bad = await world.release(service.id)
    two = await deploy(world.ctx, service.id, bad.id)
    await world.converge(
        service.id, lambda: world.phase_is(two.id, DeploymentPhase.FAILED), "the deploy fails"
    )
    failed = await world.get(Deployment, two.id)
    assert failed.reason is not None
    assert failed.reason.startswith(f"0 of 1 replicas of {bad.id} ready after")
    assert "replica 0: exited with code 3" in failed.reason
    routed = upstreams(world.table(), default_host("api", "stage", "shop"))
    assert list(routed) == [good.id]
    runtimes = await world.runtimes(service.id)
    assert runtimes[good.id].weight == 100
    assert runtimes[bad.id].status is RuntimeStatus.STOPPED
    # Traffic is already back where a rollback would send it: nothing to roll back.
    with pytest.raises(Conflict, match=f"release {good.id} already takes the traffic"):
        await rollback(world.ctx, service.id)


async def test_blue_green_moves_traffic_only_when_every_replica_is_ready(world: World) -> None:
    service = await world.apply(replicas=2)
    first = await world.release(service.id)
    one = await deploy(world.ctx, service.id, first.id)
    await world.converge(service.id, lambda: world.phase_is(one.id, DeploymentPhase.HEALTHY), "1")
    second = await world.release(service.id)
    two = await deploy(world.ctx, service.id, second.id, DeploymentStrategy.BLUE_GREEN)
    weights: list[tuple[int, int]] = []

    async def healthy() -> bool:
        runtimes = await world.runtimes(service.id)
        new = runtimes.get(second.id)
        weights.append((runtimes[first.id].weight, new.weight if new else 0))
        return await world.phase_is(two.id, DeploymentPhase.HEALTHY)

    await world.converge(service.id, healthy, "blue-green completes")
    assert set(weights) <= {(100, 0), (0, 100)}
    assert weights[-1] == (0, 100)


async def test_a_release_that_failed_to_build_fails_its_deployment(world: World) -> None:
    service = await world.apply()
    release = await world.pending_release(service.id)
    deployment = await deploy(world.ctx, service.id, release.id)
    await world.controller.reconcile(service.id)
    assert (await world.get(Deployment, deployment.id)).phase is DeploymentPhase.BUILDING
    async with world.store.write() as session:
        row = await session.get(Release, release.id)
        assert row is not None
        row.status, row.status_reason = ReleaseStatus.FAILED, "Build failed: pip exploded"
    await world.controller.reconcile(service.id)
    failed = await world.get(Deployment, deployment.id)
    assert failed.phase is DeploymentPhase.FAILED
    assert failed.reason == f"release {release.id} failed to build: Build failed: pip exploded"


async def test_a_release_changed_after_signing_is_refused(world: World) -> None:
    service = await world.apply()
    release = await world.release(service.id)
    Path(release.artifact_path or "", "app", "app.py").write_text("print('tampered')\n")
    deployment = await deploy(world.ctx, service.id, release.id)
    await world.controller.reconcile(service.id)
    failed = await world.get(Deployment, deployment.id)
    assert failed.phase is DeploymentPhase.FAILED
    assert failed.reason is not None
    assert failed.reason.startswith(f"refused to run: release {release.id} failed verification")
    assert await world.driver.observe(service.id) == {}
    conditions = {c["type"]: c for c in failed.conditions}
    assert conditions["Verified"]["status"] == "False"


async def test_an_autoscaled_service_grows_to_max_under_load_and_shrinks_when_idle(
    world: World, tmp_path: Path
) -> None:
    stop = tmp_path / "stop-burning"
    service = await world.apply(
        replicas=1,
        max_replicas=3,
        cpu="100m",  # a fifth of a core is 200% of it, against a 50% target
        hpa="{cpuTargetUtilization: 50, scaleDownStabilizationSeconds: 0}",
        env={"MODE": "burn", "STOP_FILE": str(stop)},
    )
    release = await world.release(service.id)
    deployment = await deploy(world.ctx, service.id, release.id)
    await world.converge(
        service.id, lambda: world.phase_is(deployment.id, DeploymentPhase.HEALTHY), "healthy"
    )
    assert (await world.runtimes(service.id))[release.id].replicas_desired == 1

    async def replicas_are(count: int) -> bool:
        runtime = (await world.runtimes(service.id))[release.id]
        return runtime.replicas_desired == runtime.replicas_ready == count

    await world.converge(service.id, lambda: replicas_are(3), "scaled up to max (3)")
    runtime = (await world.runtimes(service.id))[release.id]
    assert runtime.scaled_at is not None
    assert runtime.scale_reason is not None
    assert runtime.scale_reason.startswith("cpu at "), runtime.scale_reason
    assert "(target 50%)" in runtime.scale_reason
    assert runtime.scale_reason.endswith("→ 3 replicas"), runtime.scale_reason
    routed = upstreams(world.table(), default_host("api", "stage", "shop"))
    assert len(routed[release.id][1]) == 3
    # Still under load, it never goes past max. (It may come back from it: on a machine
    # whose CPU is stolen by its host, three starved replicas can measure under target.)
    for _ in range(3):
        await world.controller.reconcile(service.id)
        assert (await world.runtimes(service.id))[release.id].replicas_desired <= 3

    stop.touch()
    await world.converge(service.id, lambda: replicas_are(1), "scaled back down to min (1)")
    async with world.store.read() as session:
        events = await read_events(session, project_stream(service.project_id), 0)
    scaled = [e.payload for e in events if e.type == "runtime.changed" and "scaled" in e.payload]
    assert scaled[0]["desired"] > 1
    assert scaled[-1]["desired"] == 1
    assert "→ 1 replicas" in scaled[-1]["scaled"]
    # The deployment itself stays what it was: scaling is not a deployment.
    assert await world.phase_is(deployment.id, DeploymentPhase.HEALTHY)


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("example", ["python-web", "node-web", "python-worker"])
async def test_every_example_builds_deploys_and_runs(world: World, example: str) -> None:
    if world.store.backend != "sqlite":
        pytest.skip("one backend is enough to show the examples run")
    folder = EXAMPLES / example
    spec = (folder / "enclii.yaml").read_text().replace("project: examples", "project: shop")
    spec = spec.replace("environment: dev", "environment: stage")
    service = (await apply_service(world.ctx, spec)).service
    release = await world.release(service.id, folder)
    deployment = await deploy(world.ctx, service.id, release.id)
    await world.converge(
        service.id,
        lambda: world.phase_is(deployment.id, DeploymentPhase.HEALTHY, DeploymentPhase.FAILED),
        f"{example} settles",
    )
    done = await world.get(Deployment, deployment.id)
    assert done.phase is DeploymentPhase.HEALTHY, done.reason
    runtime = (await world.runtimes(service.id))[release.id]
    assert runtime.replicas_ready == runtime.replicas_desired >= 1
    if service.type.value == "worker":
        assert world.table().match(default_host(service.name, "stage", "shop"), "/") is None
        return
    routed = upstreams(world.table(), default_host(service.name, "stage", "shop"))
    assert {answer(a)["release"] for a in routed[release.id][1]} == {release.id}
