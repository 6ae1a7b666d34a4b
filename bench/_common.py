"""Shared by the benchmarks: databases to run on, seeding, a real `enclii serve` process,
and percentile arithmetic. Benchmarks print their figures; docs/benchmarks.md records them."""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import psutil
from sqlalchemy.engine import make_url

from reconcile.local.processes import free_port as free_port
from reconcile.local.processes import kill_recorded
from resolvers.bootstrap import bootstrap
from resolvers.context import Context
from resolvers.projects import create_environment, create_project
from resolvers.services import apply_service
from store.db import Store
from store.hub import EventHub
from store.ids import new_id
from store.migrate import upgrade_async
from store.models import Release, ReleaseStatus, Runtime, RuntimeStatus

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get(
    "ENCLII_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} CPU ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}"


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh, migrated database URL on ``backend``; removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="enclii-bench-") as tmp:
            url = f"sqlite:///{tmp}/enclii.db"
            asyncio.run(upgrade_async(url))
            yield url
        return
    name = f"enclii_bench_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(_dsn(PG_ADMIN), timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        asyncio.run(upgrade_async(url))
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


SPEC = """apiVersion: enclii.dev/v1
kind: Service
metadata: {{project: {project}, environment: {env}, name: {name}}}
spec:
  runtime:
    image: registry.local/{name}:{{{{ git.sha }}}}
    ports: [8080]
    replicas: {{min: 2, max: 4}}
  health:
    readiness: {{httpGet: /healthz}}
  routes:
    - host: {name}.{env}.{project}.example.com
"""


@dataclass(frozen=True)
class Seeded:
    project_id: str
    token: str  # the Owner's bootstrap token: benchmarks call the API as the Owner

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


async def seed(url: str, services: int, project_slug: str = "bench") -> Seeded:
    """On a fresh database: 1 project, dev/stage/prod, ``services`` services spread across
    them, each with a release, a runtime and a route."""
    store = Store(url)
    hub = EventHub(store)
    try:
        started = await bootstrap(store)
        assert started.token is not None, "seed() needs a fresh database"
        actor = started.actor
        ctx = Context(store=store, hub=hub, actor=actor, request_id="bench-seed")
        project = await create_project(ctx, "Bench", project_slug)
        envs = ["dev", "stage", "prod"]
        for env in envs:
            await create_environment(ctx, project.id, env, None, None)
        for i in range(services):
            env = envs[i % 3]
            name = f"svc-{i:03d}"
            result = await apply_service(
                ctx, SPEC.format(project=project_slug, env=env, name=name), git_sha="a" * 40
            )
            async with store.write() as session:
                release = Release(
                    id=new_id("release"),
                    service_id=result.service.id,
                    spec_version_id=result.version.id,
                    image_ref=f"registry.local/{name}:{'a' * 40}",
                    git_sha="a" * 40,
                    status=ReleaseStatus.READY,
                    created_by=actor.id,
                )
                session.add(release)
                await session.flush()
                session.add(
                    Runtime(
                        id=new_id("runtime"),
                        service_id=result.service.id,
                        release_id=release.id,
                        replicas_desired=2,
                        replicas_ready=2,
                        status=RuntimeStatus.RUNNING,
                    )
                )
        return Seeded(project.id, started.token)
    finally:
        await store.close()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    router_port: int = 0
    data_dir: Path | None = None

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.router_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


@contextmanager
def server(database_url: str, *, controllers: bool = True) -> Iterator[Server]:
    """`enclii serve` as its own process, as in production; without ``controllers``, the
    same server without the data plane (bench/_api_server.py), for the API alone."""
    with tempfile.TemporaryDirectory(prefix="enclii-bench-data-") as data_dir:
        port = free_port()
        router_port = free_port()
        if controllers:
            command = [
                sys.executable,
                "-m",
                "client.cli.main",
                "serve",
                "--data-dir",
                data_dir,
                "--port",
                str(port),
                "--router-port",
                str(router_port),
                "--database-url",
                database_url,
                "--log-level",
                "warning",
                # Far above the load: benchmarks measure serving, not refusals.
                "--rate-limit",
                "1000000000",
                "--rate-burst",
                "1000000000",
            ]
        else:
            command = [
                sys.executable,
                "-m",
                "bench._api_server",
                "--data-dir",
                data_dir,
                "--port",
                str(port),
                "--database-url",
                database_url,
            ]
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)
        srv = Server(process, port, router_port, Path(data_dir))
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{srv.url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("enclii serve did not become ready")
                time.sleep(0.1)
            yield srv
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
            # The router and replicas outlive enclii serve by design; a benchmark must not.
            kill_recorded(Path(data_dir))
