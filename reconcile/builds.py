"""The build controller: a PENDING release becomes a built, signed, READY one, or FAILED
with the reason.

Its key is a release ID. A reconcile reads the release every time: READY and FAILED are
final and change nothing; PENDING is marked BUILDING and built; BUILDING means a build was
interrupted (the control plane died mid-build), so its leftovers are removed and it is
built again from the start. Builds go to ``DATA_DIR/releases/<id>/``; their output goes
through the log pipeline (source ``build``), so it streams live with the service's logs.
Every status change is an event on the project's stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from reconcile.local.builder import (
    BUILDER_VERSION,
    DEFAULT_DEADLINE_S,
    BuildError,
    LogLine,
    build,
    detect,
    tree_digest,
)
from reconcile.local.sources import git_sha, prepare_source
from reconcile.runner import DONE, Result
from reconcile.sbom import write_sbom
from reconcile.signing import PlatformKey, SignatureError, release_manifest
from store.blobs import BlobStore
from store.db import Store
from store.events import DEPLOYMENTS_STREAM, append_event, project_stream
from store.logs import LogWriter, RawLine
from store.models import Release, ReleaseStatus, Service, ServiceSpecVersion, ServiceType, utcnow


class BuildController:
    name = "builds"

    def __init__(
        self,
        store: Store,
        data_dir: Path,
        key: PlatformKey,
        blobs: BlobStore,
        logs: LogWriter,
        *,
        deadline_s: float = DEFAULT_DEADLINE_S,
        python: str = sys.executable,
    ) -> None:
        self.store = store
        self.releases = data_dir / "releases"
        self.workdir = data_dir / "work"
        self.key = key
        self.blobs = blobs
        self.logs = logs
        self.deadline_s = deadline_s
        self.timeout = deadline_s + 60
        self.python = python

    async def list_keys(self) -> Iterable[str]:
        async with self.store.read() as session:
            rows = await session.scalars(
                select(Release.id).where(
                    Release.status.in_([ReleaseStatus.PENDING, ReleaseStatus.BUILDING]),
                    Release.source_ref.is_not(None),
                )
            )
            return list(rows)

    async def _set(
        self, release_id: str, status: ReleaseStatus, reason: str | None = None, **fields: Any
    ) -> None:
        async with self.store.write() as session:
            release = await session.get(Release, release_id)
            assert release is not None
            service = await session.get(Service, release.service_id)
            assert service is not None
            release.status = status
            release.status_reason = reason
            for name, value in fields.items():
                setattr(release, name, value)
            payload: dict[str, Any] = {"service": service.name, "status": status.value}
            if reason:
                payload["reason"] = reason
            if release.digest:
                payload["digest"] = release.digest
            await append_event(
                session,
                project_stream(service.project_id),
                f"release.{status.value}",
                entity_id=release.id,
                actor_id="controller:builds",
                payload=payload,
            )
            if status in (ReleaseStatus.READY, ReleaseStatus.FAILED):
                # A deployment may be waiting for this build.
                await append_event(
                    session, DEPLOYMENTS_STREAM, "release.built", entity_id=service.id
                )

    async def reconcile(self, key: str) -> Result:
        async with self.store.read() as session:
            release = await session.get(Release, key)
            if release is None or release.status in (ReleaseStatus.READY, ReleaseStatus.FAILED):
                return DONE
            if release.source_ref is None:
                return DONE  # a prebuilt image: nothing for this builder to do
            service = await session.get(Service, release.service_id)
            version = (
                await session.get(ServiceSpecVersion, release.spec_version_id)
                if release.spec_version_id
                else None
            )
        assert service is not None
        root = self.releases / release.id
        if release.status is ReleaseStatus.PENDING:
            await self._set(release.id, ReleaseStatus.BUILDING)
        await asyncio.to_thread(_clear, root, self.workdir / release.id)
        started = utcnow()
        self.releases.mkdir(parents=True, exist_ok=True)

        async def log(stream: str, text: str) -> None:
            await self.logs.write(RawLine(service.id, release.id, "build", stream, text))

        try:
            fields = await self._build(release, service, version, root, log, started)
        except BuildError as exc:
            await log("build", f"build failed: {exc}")
            await self.logs.flush()
            await self._set(
                release.id,
                ReleaseStatus.FAILED,
                f"Build failed: {exc}",
                provenance={
                    **release.provenance,
                    "builder_version": BUILDER_VERSION,
                    "started_at": started.isoformat(),
                    "finished_at": utcnow().isoformat(),
                },
            )
            return DONE
        await self.logs.flush()  # the whole build log is stored before the release is READY
        await self._set(release.id, ReleaseStatus.READY, None, **fields)
        return DONE

    async def _build(
        self,
        release: Release,
        service: Service,
        version: ServiceSpecVersion | None,
        root: Path,
        log: LogLine,
        started: datetime,
    ) -> dict[str, Any]:
        spec = (version.spec if version else {}).get("spec", {})
        runtime = spec.get("runtime", {})
        root_source = await prepare_source(
            release.source_ref or "", self.blobs, self.workdir / release.id
        )
        build_spec = runtime.get("build") or {}
        source = _within(root_source, str(build_spec.get("context", ".")))
        process = "worker" if service.type is ServiceType.WORKER else "web"
        plan = detect(source, runtime.get("cmd"), process, str(build_spec.get("builder", "auto")))
        built = await build(source, root, plan, log, deadline_s=self.deadline_s, python=self.python)
        sha = release.git_sha or await git_sha(root_source)
        sbom_path = root / "sbom.cdx.json"
        sbom_sha = await asyncio.to_thread(
            write_sbom, sbom_path, service.name, release.id, built.packages
        )
        manifest = release_manifest(
            release_id=release.id,
            service_id=service.id,
            digest=built.digest,
            sbom_sha256=sbom_sha,
            git_sha=sha,
            command=plan.command,
            builder=plan.kind,
        )
        finished = utcnow()
        await log("build", f"signed with platform key {self.key.key_id}")
        return {
            "digest": built.digest,
            "git_sha": sha,
            "sbom_uri": sbom_path.as_uri(),
            "signature": self.key.sign(manifest),
            "artifact_path": str(root),
            "build_id": f"build-{release.id}",
            "provenance": {
                "builder": plan.kind,
                "builder_version": BUILDER_VERSION,
                "command": plan.command,
                "git_sha": sha,
                "source": release.source_ref,
                "started_at": started.isoformat(),
                "finished_at": finished.isoformat(),
                "seconds": round(built.seconds, 3),
                "packages": len(built.packages),
                "sbom_sha256": sbom_sha,
                "signing_key": self.key.key_id,
            },
        }


def _within(root: Path, context: str) -> Path:
    """``runtime.build.context`` inside the source, never outside it."""
    folder = (root / context).resolve()
    if not folder.is_relative_to(root.resolve()):
        raise BuildError(f"runtime.build.context {context!r} points outside the source")
    return folder


def _clear(*paths: Path) -> None:
    for path in paths:
        if path.exists():
            shutil.rmtree(path)


async def verify_release(key: PlatformKey, release: Release) -> None:
    """Refuse to run a release unless its files are the ones that were built and signed.

    Recomputes the digest of the built tree and checks the signature over the manifest;
    raises SignatureError with the reason otherwise."""
    if release.status is not ReleaseStatus.READY or not release.artifact_path:
        raise SignatureError(f"release {release.id} is {release.status.value}, not ready to run")
    provenance = release.provenance
    root = Path(release.artifact_path)
    command = list(provenance.get("command", []))
    digest = await asyncio.to_thread(tree_digest, root, command)
    if digest != release.digest:
        raise SignatureError(
            f"release {release.id} failed verification: its files hash to {digest} but it was "
            f"built and signed as {release.digest}"
        )
    manifest = release_manifest(
        release_id=release.id,
        service_id=release.service_id,
        digest=digest,
        sbom_sha256=str(provenance.get("sbom_sha256", "")),
        git_sha=release.git_sha,
        command=command,
        builder=str(provenance.get("builder", "")),
    )
    sbom = root / "sbom.cdx.json"
    if await asyncio.to_thread(_file_sha256, sbom) != provenance.get("sbom_sha256"):
        raise SignatureError(
            f"release {release.id} failed verification: its SBOM changed after it was signed"
        )
    try:
        key.verify(manifest, release.signature)
    except SignatureError as exc:
        raise SignatureError(f"release {release.id} failed verification: {exc}") from None


def _file_sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()
