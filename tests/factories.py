"""Building test data through the same resolvers the API uses (and rows for what no
mutation creates yet, such as releases and runtimes)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from resolvers.context import Context
from resolvers.projects import create_environment, create_project
from resolvers.services import apply_service
from store.ids import new_id
from store.models import (
    Deployment,
    DeploymentKind,
    DeploymentPhase,
    DeploymentStrategy,
    Environment,
    Project,
    Release,
    ReleaseStatus,
    Runtime,
    RuntimeStatus,
    Service,
)


def service_yaml(
    project: str = "shop",
    environment: str = "stage",
    name: str = "api",
    *,
    replicas: tuple[int, int] = (1, 2),
    routes: list[tuple[str, str]] | None = None,
    extra_spec: str = "",
) -> str:
    route_lines = "".join(
        f"    - host: {host}\n      path: {path}\n" for host, path in (routes or [])
    )
    return (
        "apiVersion: enclii.dev/v1\n"
        "kind: Service\n"
        "metadata:\n"
        f"  project: {project}\n"
        f"  environment: {environment}\n"
        f"  name: {name}\n"
        "spec:\n"
        "  runtime:\n"
        '    cmd: ["python", "-m", "http.server"]\n'
        "    ports: [8080]\n"
        f"    replicas: {{ min: {replicas[0]}, max: {replicas[1]} }}\n"
        + (f"  routes:\n{route_lines}" if route_lines else "")
        + extra_spec
    )


async def make_project(ctx: Context, slug: str = "shop", name: str | None = None) -> Project:
    return await create_project(ctx, name or slug.title(), slug)


async def make_environment(ctx: Context, project: Project, name: str = "stage") -> Environment:
    return await create_environment(ctx, project.id, name, None, None)


async def make_service(
    ctx: Context, project: str = "shop", environment: str = "stage", name: str = "api", **kw: Any
) -> Service:
    result = await apply_service(ctx, service_yaml(project, environment, name, **kw))
    return result.service


async def add_release(
    ctx: Context, service: Service, status: ReleaseStatus = ReleaseStatus.READY
) -> Release:
    async with ctx.store.write() as session:
        release = Release(
            id=new_id("release"),
            service_id=service.id,
            image_ref=f"local/{service.name}@sha256:{'0' * 64}",
            git_sha="0" * 40,
            status=status,
            created_by=ctx.actor.id,
        )
        session.add(release)
    return release


async def add_runtime(
    ctx: Context, service: Service, release: Release, replicas: int = 2
) -> Runtime:
    async with ctx.store.write() as session:
        runtime = Runtime(
            id=new_id("runtime"),
            service_id=service.id,
            release_id=release.id,
            replicas_desired=replicas,
            replicas_ready=replicas,
            status=RuntimeStatus.RUNNING,
        )
        session.add(runtime)
    return runtime


async def add_deployment(
    ctx: Context,
    service: Service,
    release: Release,
    *,
    created_at: datetime,
    phase: DeploymentPhase = DeploymentPhase.HEALTHY,
    finished_at: datetime | None = None,
    kind: DeploymentKind = DeploymentKind.DEPLOY,
) -> Deployment:
    """A deployment row as the controller would have left it, at the given times."""
    async with ctx.store.write() as session:
        deployment = Deployment(
            id=new_id("deployment"),
            service_id=service.id,
            to_release_id=release.id,
            strategy=DeploymentStrategy.ROLLING,
            kind=kind,
            phase=phase,
            created_by=ctx.actor.id,
            created_at=created_at,
            updated_at=finished_at or created_at,
            finished_at=finished_at,
        )
        session.add(deployment)
    return deployment


def make_wheel(directory: Path, name: str = "tiny", version: str = "1.0") -> Path:
    """A real, minimal pure-Python wheel: pip installs it with no network and no build
    step, so builds in tests resolve a true dependency offline."""
    directory.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: enclii-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel
