"""The build controller against the real store (SQLite and PostgreSQL) with a real platform
key: a PENDING release is built, signed and READY (or FAILED with the reason), an
interrupted build is redone, and verify_release refuses anything changed after signing.

The store only takes a source folder on the embedded default, so on PostgreSQL the same
folder goes in as an uploaded tarball."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from sqlalchemy import select

from reconcile.builds import BuildController, verify_release
from reconcile.local.builder import BUILDER_VERSION, tree_digest
from reconcile.runner import DONE
from reconcile.signing import PlatformKey, SignatureError
from resolvers.context import Context
from resolvers.mutation import snapshot
from resolvers.releases import create_release
from resolvers.services import apply_service
from store.blobs import BlobStore
from store.db import Store
from store.events import EventRecord, project_stream, read_events
from store.ids import new_id
from store.logs import LogQuery, LogWriter, read_lines
from store.models import Release, ReleaseStatus, Service
from tests.factories import make_environment, make_project, make_wheel
from tests.helpers import DEADLINE_S


def spec_yaml(name: str, cmd: list[str] | None) -> str:
    runtime = f"    cmd: {json.dumps(cmd)}\n" if cmd else ""
    return (
        "apiVersion: enclii.dev/v1\n"
        "kind: Service\n"
        "metadata:\n"
        "  project: shop\n"
        "  environment: stage\n"
        f"  name: {name}\n"
        "spec:\n"
        "  runtime:\n"
        f"{runtime}"
        "    ports: [8080]\n"
    )


@dataclass
class World:
    ctx: Context
    store: Store
    data_dir: Path
    key: PlatformKey
    blobs: BlobStore
    logs: LogWriter
    controller: BuildController
    project_id: str
    sources: Path

    async def service(
        self, name: str = "api", cmd: tuple[str, ...] | None = ("python", "app.py")
    ) -> Service:
        yaml = spec_yaml(name, list(cmd) if cmd else None)
        return (await apply_service(self.ctx, yaml)).service

    def folder(self, name: str, files: dict[str, str]) -> Path:
        folder = self.sources / name
        for relative, content in files.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        return folder

    async def release(self, service: Service, folder: Path, **kw: Any) -> Release:
        """A release of ``folder`` through create_release: by path on SQLite, as an
        uploaded tarball on PostgreSQL (where a path is refused)."""
        if self.store.backend == "sqlite":
            return await create_release(self.ctx, service.id, source_path=str(folder), **kw)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(folder, arcname=folder.name)
        data = buffer.getvalue()

        async def chunks() -> AsyncIterator[bytes]:
            yield data

        key = await self.blobs.put(chunks())
        return await create_release(self.ctx, service.id, blob_key=key, **kw)

    async def get(self, release_id: str) -> Release:
        async with self.store.read() as session:
            release = await session.get(Release, release_id)
            assert release is not None
            return release

    async def events(self) -> list[EventRecord]:
        async with self.store.read() as session:
            return await read_events(session, project_stream(self.project_id), 0)

    async def build_log(self, release: Release) -> list[str]:
        """The release's build output, as the log pipeline stored it."""
        query = LogQuery(release.service_id, release_id=release.id, source="build")
        async with self.store.read() as session:
            return [line.message for line in await read_lines(session, query, 10_000)]

    async def update(self, release_id: str, **fields: Any) -> None:
        async with self.store.write() as session:
            release = await session.get(Release, release_id)
            assert release is not None
            for name, value in fields.items():
                setattr(release, name, value)


@pytest.fixture
async def world(ctx: Context, store: Store, tmp_path: Path) -> AsyncIterator[World]:
    project = await make_project(ctx, "shop")
    await make_environment(ctx, project, "stage")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    key = PlatformKey.load_or_create(data_dir)
    blobs = BlobStore(data_dir / "blobs")
    logs = LogWriter(store)
    logs.start()
    yield World(
        ctx=ctx,
        store=store,
        data_dir=data_dir,
        key=key,
        blobs=blobs,
        logs=logs,
        controller=BuildController(store, data_dir, key, blobs, logs),
        project_id=project.id,
        sources=tmp_path / "sources",
    )
    await logs.close()


def built_from(world: World, release: Release, folder: Path) -> Path:
    """Where the controller finds the source: the folder itself, or the unpacked upload."""
    if world.store.backend == "sqlite":
        return folder
    return world.data_dir / "work" / release.id / folder.name


def release_events(events: list[EventRecord], release_id: str) -> list[tuple[str, str | None]]:
    return [
        (e.type, e.actor_id)
        for e in events
        if e.entity_id == release_id and e.type.startswith("release.")
    ]


async def test_a_pending_release_is_built_signed_and_ready(world: World) -> None:
    service = await world.service()
    folder = world.folder(
        "web",
        {"app.py": "print('hello')\n", "requirements.txt": "./wheels/tiny-1.0-py3-none-any.whl\n"},
    )
    make_wheel(folder / "wheels")  # a real dependency, installed offline
    release = await world.release(service, folder)
    assert release.status is ReleaseStatus.PENDING
    assert await world.controller.list_keys() == [release.id]

    # Watch the status while the build runs: it is BUILDING for as long as the build takes.
    seen: list[ReleaseStatus] = []
    task = asyncio.create_task(world.controller.reconcile(release.id))

    async def watch() -> None:
        while not task.done():
            status = (await world.get(release.id)).status
            if not seen or seen[-1] is not status:
                seen.append(status)
            await asyncio.sleep(0.005)

    await asyncio.wait_for(watch(), DEADLINE_S)
    assert await task == DONE
    final = (await world.get(release.id)).status
    if seen[-1] is not final:
        seen.append(final)
    # The first look may come after the controller has already marked it BUILDING.
    assert seen in (
        [ReleaseStatus.PENDING, ReleaseStatus.BUILDING, ReleaseStatus.READY],
        [ReleaseStatus.BUILDING, ReleaseStatus.READY],
    )

    ready = await world.get(release.id)
    root = world.data_dir / "releases" / release.id
    assert ready.status is ReleaseStatus.READY
    assert ready.status_reason is None
    assert ready.artifact_path == str(root)
    assert ready.digest == tree_digest(root, ["python", "app.py"])
    assert ready.signature is not None
    assert ready.signature.startswith(f"ed25519:{world.key.key_id}:")
    assert ready.build_id == f"build-{release.id}"
    assert ready.git_sha is None  # not a git work tree, and none was given
    sbom_path = root / "sbom.cdx.json"
    assert ready.sbom_uri == sbom_path.as_uri()
    assert (root / "app" / "app.py").read_text() == "print('hello')\n"

    document = sbom_path.read_text()
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(document) is None
    sbom = json.loads(document)
    assert sbom["bomFormat"] == "CycloneDX"
    assert sbom["specVersion"] == "1.5"
    assert sbom["metadata"]["component"]["name"] == "api"
    assert sbom["metadata"]["component"]["version"] == release.id
    (site,) = root.glob("venv/lib/python*/site-packages")
    installed = sorted(
        tuple(p.name.removesuffix(".dist-info").rsplit("-", 1)) for p in site.glob("*.dist-info")
    )
    assert ("tiny", "1.0") in installed
    components = sorted((c["name"], c["version"]) for c in sbom["components"])
    assert components == installed
    assert {c["purl"] for c in sbom["components"]} == {
        f"pkg:pypi/{name}@{version}" for name, version in installed
    }

    provenance = ready.provenance
    assert provenance == {
        "builder": "python",
        "builder_version": BUILDER_VERSION,
        "command": ["python", "app.py"],
        "git_sha": None,
        "source": release.source_ref,
        "started_at": provenance["started_at"],
        "finished_at": provenance["finished_at"],
        "seconds": provenance["seconds"],
        "packages": len(installed),
        "sbom_sha256": "sha256:" + hashlib.sha256(sbom_path.read_bytes()).hexdigest(),
        "signing_key": world.key.key_id,
    }
    assert provenance["started_at"] <= provenance["finished_at"]
    # The whole build log is stored before the release is READY.
    log = await world.build_log(ready)
    assert log[0] == f"building a python release from {built_from(world, release, folder)}"
    assert any(line.endswith(" install --no-input -r requirements.txt") for line in log)
    assert log[-1] == f"signed with platform key {world.key.key_id}"

    events = await world.events()
    assert release_events(events, release.id) == [
        ("release.created", world.ctx.actor.id),
        ("release.building", "controller:builds"),
        ("release.ready", "controller:builds"),
    ]
    by_type = {e.type: e.payload for e in events if e.entity_id == release.id}
    assert by_type["release.building"] == {"service": "api", "status": "building"}
    assert by_type["release.ready"] == {
        "service": "api",
        "status": "ready",
        "digest": ready.digest,
    }
    assert await world.controller.list_keys() == []

    await verify_release(world.key, ready)

    # Reconciling a READY release changes nothing.
    before = snapshot(ready)
    assert await world.controller.reconcile(release.id) == DONE
    after = await world.get(release.id)
    assert after.updated_at == ready.updated_at
    assert snapshot(after) == before
    assert await world.events() == events
    assert (root / "app" / "app.py").exists()

    # A manifest edited in the store no longer matches the signature.
    await world.update(release.id, git_sha="a" * 40)
    with pytest.raises(SignatureError) as raised:
        await verify_release(world.key, await world.get(release.id))
    assert str(raised.value) == (
        f"release {release.id} failed verification: the signature does not match the "
        "release: its manifest or files changed after it was signed"
    )
    await world.update(release.id, git_sha=None)
    await verify_release(world.key, await world.get(release.id))

    # Files changed after the build: the digest no longer matches.
    (root / "app" / "app.py").write_text("print('tampered')\n")
    tampered = tree_digest(root, ["python", "app.py"])
    with pytest.raises(SignatureError) as raised:
        await verify_release(world.key, await world.get(release.id))
    assert str(raised.value) == (
        f"release {release.id} failed verification: its files hash to {tampered} but it was "
        f"built and signed as {ready.digest}"
    )

    # Another platform's key refuses it even with its files restored.
    (root / "app" / "app.py").write_text("print('hello')\n")
    await verify_release(world.key, await world.get(release.id))
    other_dir = world.data_dir / "other"
    other_dir.mkdir()
    other = PlatformKey.load_or_create(other_dir)
    with pytest.raises(SignatureError) as raised:
        await verify_release(other, await world.get(release.id))
    assert str(raised.value) == (
        f"release {release.id} failed verification: the release was signed by key "
        f"{world.key.key_id}, not by this platform's key {other.key_id}"
    )


async def test_a_release_that_is_not_ready_is_not_verified(world: World) -> None:
    service = await world.service()
    release = await world.release(service, world.folder("web", {"app.py": ""}))
    with pytest.raises(SignatureError) as raised:
        await verify_release(world.key, release)
    assert str(raised.value) == f"release {release.id} is pending, not ready to run"


async def test_a_source_with_nothing_to_build_fails_with_the_reason(world: World) -> None:
    service = await world.service("static", cmd=None)
    folder = world.folder("static", {"README.md": "# nothing here\n"})
    release = await world.release(service, folder)
    assert await world.controller.reconcile(release.id) == DONE

    failed = await world.get(release.id)
    assert failed.status is ReleaseStatus.FAILED
    assert failed.status_reason is not None
    assert failed.status_reason == (
        f"Build failed: nothing to build in {built_from(world, release, folder)}: add "
        "requirements.txt or "
        "pyproject.toml (Python), package.json (Node), a Procfile, or set spec.runtime.cmd"
    )
    assert failed.digest is None and failed.signature is None and failed.artifact_path is None
    assert failed.provenance == {
        "builder_version": BUILDER_VERSION,
        "started_at": failed.provenance["started_at"],
        "finished_at": failed.provenance["finished_at"],
    }
    assert await world.build_log(failed) == [
        f"build failed: {failed.status_reason.removeprefix('Build failed: ')}"
    ]

    events = await world.events()
    assert release_events(events, release.id) == [
        ("release.created", world.ctx.actor.id),
        ("release.building", "controller:builds"),
        ("release.failed", "controller:builds"),
    ]
    failed_event = next(e for e in events if e.type == "release.failed")
    assert failed_event.payload == {
        "service": "static",
        "status": "failed",
        "reason": failed.status_reason,
    }
    assert await world.controller.list_keys() == []

    # FAILED is final: reconciling again changes nothing.
    before = snapshot(failed)
    assert await world.controller.reconcile(release.id) == DONE
    assert snapshot(await world.get(release.id)) == before
    assert await world.events() == events


async def test_an_interrupted_build_is_redone_from_the_start(world: World) -> None:
    service = await world.service()
    # A command-only source: nothing to install, so the rebuild is quick.
    folder = world.folder("cmd", {"app.py": "print('hello')\n"})
    release = await world.release(service, folder)
    # The control plane died mid-build: the release says BUILDING, its folders are partial.
    await world.update(release.id, status=ReleaseStatus.BUILDING)
    root = world.data_dir / "releases" / release.id
    (root / "app").mkdir(parents=True)
    (root / "app" / "half-copied.py").write_text("import sys\nsys.ex")
    (root / "venv" / "lib").mkdir(parents=True)
    work = world.data_dir / "work" / release.id
    (work / "stale").mkdir(parents=True)
    (work / "stale" / "partial.tar").write_bytes(b"\0" * 10)
    assert await world.controller.list_keys() == [release.id]

    assert await world.controller.reconcile(release.id) == DONE

    ready = await world.get(release.id)
    assert ready.status is ReleaseStatus.READY
    assert sorted(p.name for p in root.iterdir()) == ["app", "sbom.cdx.json"]
    assert sorted(p.name for p in (root / "app").iterdir()) == ["app.py"]
    assert not (work / "stale").exists()
    assert ready.provenance["builder"] == "cmd"
    await verify_release(world.key, ready)
    assert release_events(await world.events(), release.id) == [
        ("release.created", world.ctx.actor.id),
        ("release.ready", "controller:builds"),
    ]


async def test_a_given_git_sha_is_signed_and_recorded(world: World) -> None:
    service = await world.service()
    sha = "0123456789abcdef" * 2 + "01234567"
    release = await world.release(service, world.folder("cmd", {"app.py": ""}), git_sha=sha)
    await world.controller.reconcile(release.id)
    ready = await world.get(release.id)
    assert ready.status is ReleaseStatus.READY
    assert ready.git_sha == sha
    assert ready.provenance["git_sha"] == sha
    await verify_release(world.key, ready)
    await world.update(release.id, git_sha=None)
    with pytest.raises(SignatureError):
        await verify_release(world.key, await world.get(release.id))


async def test_list_keys_is_pending_and_building_releases_from_source(world: World) -> None:
    service = await world.service()
    folder = world.folder("cmd", {"app.py": ""})
    by_status: dict[ReleaseStatus, str] = {}
    for status in ReleaseStatus:
        release = await world.release(service, folder)
        await world.update(release.id, status=status)
        by_status[status] = release.id
    # A prebuilt image has no source: nothing for the builder.
    async with world.store.write() as session:
        image = Release(
            id=new_id("release"),
            service_id=service.id,
            image_ref="registry.example/api:1",
            status=ReleaseStatus.PENDING,
            created_by="test",
        )
        session.add(image)
    assert sorted(await world.controller.list_keys()) == sorted(
        [by_status[ReleaseStatus.PENDING], by_status[ReleaseStatus.BUILDING]]
    )
    assert await world.controller.reconcile(image.id) == DONE
    assert (await world.get(image.id)).status is ReleaseStatus.PENDING
    assert await world.controller.reconcile("rel_missing") == DONE
    async with world.store.read() as session:
        count = len((await session.scalars(select(Release.id))).all())
    assert count == len(ReleaseStatus) + 1
