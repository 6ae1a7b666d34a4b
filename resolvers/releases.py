"""Creating a release: desired state for the build controller, never a build in the API."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from resolvers.context import Context
from resolvers.errors import ValidationFailed
from resolvers.identity.guard import require
from resolvers.identity.rbac import Permission
from resolvers.lookup import get_service, latest_spec_version
from resolvers.mutation import mutate, snapshot
from store.events import BUILDS_STREAM, append_event
from store.ids import new_id
from store.models import Release, ReleaseStatus


async def create_release(
    ctx: Context,
    service_id: str,
    *,
    source_path: str | None = None,
    blob_key: str | None = None,
    git_sha: str | None = None,
) -> Release:
    """A PENDING release of ``service_id`` from a local folder (embedded default only) or
    an uploaded tarball; the build controller builds, signs and readies it."""
    if (source_path is None) == (blob_key is None):
        raise ValidationFailed.one(
            ("input", "sourcePath"), "give exactly one of sourcePath or source (an upload)"
        )
    if git_sha is not None and (
        len(git_sha) not in (40, 64) or any(c not in "0123456789abcdef" for c in git_sha)
    ):
        raise ValidationFailed.one(("input", "gitSha"), f"{git_sha!r} is not a full git SHA")
    source_ref = f"blob:{blob_key}"
    if source_path is not None:
        if ctx.store.backend != "sqlite":
            raise ValidationFailed.one(
                ("input", "sourcePath"),
                "a local source folder is only accepted on the embedded default; upload a "
                "tarball of it instead",
            )
        path = Path(source_path)
        if not path.is_absolute() or not path.is_dir():
            raise ValidationFailed.one(
                ("input", "sourcePath"),
                f"{source_path!r} is not an existing folder (give an absolute path)",
            )
        source_ref = f"path:{path.resolve()}"
    async with mutate(ctx, "release.create") as change:
        session = change.session
        service, env, project = await get_service(session, ctx, service_id, ("input", "serviceId"))
        require(ctx, Permission.DEPLOY, project)
        version = await latest_spec_version(session, service.id)
        assert version is not None, "a live service always has a spec version"
        image = version.spec.get("spec", {}).get("runtime", {}).get("image")
        if image:
            raise ValidationFailed.one(
                ("input", "serviceId"),
                f"the Service Spec of {service.name!r} names the image {image!r}: there is "
                "nothing to build; remove runtime.image to build from source",
            )
        release = Release(
            id=new_id("release"),
            service_id=service.id,
            spec_version_id=version.id,
            git_sha=git_sha,
            source_ref=source_ref,
            status=ReleaseStatus.PENDING,
            provenance={},
            created_by=ctx.actor.id,
        )
        session.add(release)
        await session.flush()
        change.record(
            entity_type="release",
            entity_id=release.id,
            project_id=project.id,
            before=None,
            after=snapshot(release),
        )
        await change.emit(
            project.id,
            "release.created",
            release.id,
            {"service": service.name, "environment": env.name, "specVersion": version.version},
        )
        await append_event(session, BUILDS_STREAM, "release.created", entity_id=release.id)
    return release


async def blob_in_use(ctx: Context, blob_key: str) -> bool:
    """Whether any release builds from this uploaded source (blobs are shared by content)."""
    async with ctx.store.read() as session:
        found = await session.scalar(
            select(Release.id).where(Release.source_ref == f"blob:{blob_key}").limit(1)
        )
    return found is not None
