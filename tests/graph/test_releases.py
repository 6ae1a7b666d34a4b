"""createRelease over GraphQL: from a local folder (embedded default only) or a multipart
upload of a tarball into the blob store; precise errors that change nothing; roles; the
audit event and the events it appends. And one build end to end in a real `enclii serve`."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from graph.app import AppState, create_app
from resolvers.bootstrap import Bootstrap
from resolvers.context import Context
from resolvers.identity.tokens import bootstrap_token
from store.blobs import BlobStore
from store.db import Store
from store.events import BUILDS_STREAM, EventRecord, project_stream, read_events
from store.ids import new_id
from store.models import AuditEvent, AuditOutcome, Event, Membership, Release, Role, User
from tests.factories import make_environment, make_project
from tests.helpers import REPO, Api, start_server_process

CREATE_RELEASE = """
mutation($input: CreateReleaseInput!) {
  createRelease(input: $input) {
    __typename
    ... on CreateReleaseSuccess {
      release {
        id status statusReason gitSha digest signature provenance createdBy
        service { id name }
        specVersion { version }
      }
    }
    ... on ValidationError { problems { path message } }
    ... on Error { message code path }
  }
}
"""

RELEASE = """
query($id: ID!) {
  node(id: $id) {
    ... on Release { id status statusReason digest signature sbomUri provenance gitSha }
  }
}
"""


def spec_yaml(name: str = "api", image: str | None = None) -> str:
    runtime = f"    image: {image}\n" if image else '    cmd: ["python", "app.py"]\n'
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
    store: Store
    api: Api
    blobs: BlobStore
    project_id: str
    service_id: str
    account_id: str
    source: Path

    async def create(self, caller: Api | None = None, **given: Any) -> dict[str, Any]:
        input_ = {"serviceId": self.service_id, **given}
        data = await (caller or self.api).data(CREATE_RELEASE, {"input": input_})
        result: dict[str, Any] = data["createRelease"]
        return result

    async def upload(
        self, archive: bytes, caller: Api | None = None, **given: Any
    ) -> dict[str, Any]:
        body = await upload(
            caller or self.api, {"serviceId": self.service_id, "source": None, **given}, archive
        )
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["createRelease"]
        return result

    async def submit(self, caller: Api | None = None, **given: Any) -> dict[str, Any]:
        """createRelease with the source given the way this backend takes one: a folder on
        SQLite, an uploaded tarball on PostgreSQL (which refuses folders)."""
        if self.store.backend == "sqlite":
            return await self.create(caller, sourcePath=str(self.source), **given)
        return await self.upload(tarball(self.source), caller, **given)

    async def state(self) -> dict[str, int]:
        """What a createRelease may change in the database: releases, events, audit."""
        async with self.store.read() as session:
            return {
                model.__tablename__: int(
                    await session.scalar(select(func.count()).select_from(model)) or 0
                )
                for model in (Release, Event, AuditEvent)
            }

    async def audit(self, action: str) -> list[AuditEvent]:
        async with self.store.read() as session:
            rows = await session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
            )
            return list(rows.all())

    async def events(self, stream: str) -> list[EventRecord]:
        async with self.store.read() as session:
            return await read_events(session, stream, 0)

    async def release(self, release_id: str) -> Release:
        async with self.store.read() as session:
            row = await session.get(Release, release_id)
            assert row is not None
            return row


async def upload(caller: Api, input_: dict[str, Any], archive: bytes) -> dict[str, Any]:
    """createRelease as a GraphQL multipart request: operations, map, then the file."""
    operations = {"query": CREATE_RELEASE, "variables": {"input": input_}}
    response = await caller.client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.source"]}),
        },
        files={"0": ("source.tar.gz", archive, "application/gzip")},
        headers=caller.headers,
    )
    body: dict[str, Any] = response.json()
    return body


async def apply(api: Api, yaml: str) -> str:
    """Apply a Service Spec; the service's ID."""
    data = await api.data(
        "mutation($y: String!) { applyService(input: {specYaml: $y}) {"
        " __typename ... on ApplyServiceSuccess { service { id } } } }",
        {"y": yaml},
    )
    assert data["applyService"]["__typename"] == "ApplyServiceSuccess", data
    service_id: str = data["applyService"]["service"]["id"]
    return service_id


def blob_names(blobs: BlobStore) -> list[str]:
    return sorted(p.name for p in blobs.root.iterdir()) if blobs.root.exists() else []


def tarball(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return buffer.getvalue()


@pytest.fixture
async def world(
    app_state: AppState, ctx: Context, owner: Bootstrap, token: str, tmp_path: Path
) -> AsyncIterator[World]:
    """The app with a blob store (the shared fixture's has none), a project, an environment
    and a service to release, and a source folder."""
    blobs = BlobStore(tmp_path / "blobs")
    state = AppState(
        store=app_state.store,
        hub=app_state.hub,
        authenticator=app_state.authenticator,
        limiter=app_state.limiter,
        blobs=blobs,
    )
    project = await make_project(ctx, "shop")
    await make_environment(ctx, project, "stage")
    source = tmp_path / "web"
    source.mkdir()
    (source / "app.py").write_text("print('hello')\n")
    (source / "requirements.txt").write_text("")
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://enclii.test") as client:
        api = Api(client, headers={"authorization": f"Bearer {token}"})
        service_id = await apply(api, spec_yaml())
        yield World(
            store=ctx.store,
            api=api,
            blobs=blobs,
            project_id=project.id,
            service_id=service_id,
            account_id=owner.owner.account_id,
            source=source,
        )
    await state.connections.close()


def assert_recorded(events: list[EventRecord], release_id: str) -> None:
    """The release's one event on its project's stream."""
    created = [e for e in events if e.type == "release.created"]
    assert [(e.entity_id, e.payload) for e in created] == [
        (release_id, {"service": "api", "environment": "stage", "specVersion": 1})
    ]


async def test_create_release_from_a_source_path(world: World, store: Store) -> None:
    before = await world.state()
    result = await world.create(sourcePath=str(world.source))
    if store.backend != "sqlite":
        message = (
            "a local source folder is only accepted on the embedded default; upload a "
            "tarball of it instead"
        )
        assert result["__typename"] == "ValidationError"
        assert result["problems"] == [{"path": ["input", "sourcePath"], "message": message}]
        assert (result["message"], result["path"]) == (message, ["input", "sourcePath"])
        assert await world.state() == before
        return

    assert result["__typename"] == "CreateReleaseSuccess"
    release = result["release"]
    assert release["id"].startswith("rel_")
    assert release["status"] == "PENDING"
    assert release["statusReason"] is None
    assert release["gitSha"] is None
    assert release["digest"] is None and release["signature"] is None
    assert release["provenance"] == {}
    assert release["service"] == {"id": world.service_id, "name": "api"}
    assert release["specVersion"] == {"version": 1}
    row = await world.release(release["id"])
    assert row.source_ref == f"path:{world.source.resolve()}"
    assert row.created_by == release["createdBy"]

    audit = await world.audit("release.create")
    assert [(a.outcome, a.entity_type, a.entity_id, a.project_id) for a in audit] == [
        (AuditOutcome.SUCCEEDED, "release", release["id"], world.project_id)
    ]
    assert audit[0].payload["before"] is None
    assert audit[0].payload["after"]["status"] == "pending"
    assert_recorded(await world.events(project_stream(world.project_id)), release["id"])
    work = await world.events(BUILDS_STREAM)
    assert [(e.type, e.entity_id) for e in work] == [("release.created", release["id"])]
    assert await world.state() == {
        "releases": before["releases"] + 1,
        "events": before["events"] + 2,  # one on the project's stream, one on work:builds
        "audit_events": before["audit_events"] + 1,
    }
    assert blob_names(world.blobs) == []


async def test_a_source_path_must_be_an_existing_absolute_folder(
    world: World, store: Store
) -> None:
    if store.backend != "sqlite":
        pytest.skip("PostgreSQL refuses every source path (see the test above)")
    before = await world.state()
    for given in ("web", str(world.source / "missing"), str(world.source / "app.py")):
        result = await world.create(sourcePath=given)
        assert result["__typename"] == "ValidationError"
        assert result["problems"] == [
            {
                "path": ["input", "sourcePath"],
                "message": f"{given!r} is not an existing folder (give an absolute path)",
            }
        ]
    assert await world.state() == before


async def test_create_release_from_an_uploaded_tarball(world: World) -> None:
    archive = tarball(world.source)
    before = await world.state()
    result = await world.upload(archive, gitSha="a" * 40)
    assert result["__typename"] == "CreateReleaseSuccess", result
    release = result["release"]
    assert release["status"] == "PENDING"
    assert release["gitSha"] == "a" * 40

    (key,) = blob_names(world.blobs)
    assert key.startswith("sha256-")
    assert (world.blobs.root / key).read_bytes() == archive
    row = await world.release(release["id"])
    assert row.source_ref == f"blob:{key}"
    assert row.git_sha == "a" * 40

    audit = await world.audit("release.create")
    assert [(a.outcome, a.entity_id) for a in audit] == [(AuditOutcome.SUCCEEDED, release["id"])]
    assert_recorded(await world.events(project_stream(world.project_id)), release["id"])
    work = await world.events(BUILDS_STREAM)
    assert [(e.type, e.entity_id) for e in work] == [("release.created", release["id"])]
    assert await world.state() == {
        "releases": before["releases"] + 1,
        "events": before["events"] + 2,
        "audit_events": before["audit_events"] + 1,
    }

    # The same tarball again is stored once; it is a second release all the same.
    again = await world.upload(archive)
    assert again["__typename"] == "CreateReleaseSuccess"
    assert again["release"]["id"] != release["id"]
    assert blob_names(world.blobs) == [key]
    assert (await world.release(again["release"]["id"])).source_ref == f"blob:{key}"


async def test_uploads_need_a_blob_store(api: Api, world: World) -> None:
    # The shared `api` fixture's app has no blob store.
    body = await upload(api, {"serviceId": world.service_id, "source": None}, tarball(world.source))
    result = body["data"]["createRelease"]
    assert result["__typename"] == "ValidationError"
    assert result["problems"] == [
        {"path": ["input", "source"], "message": "this server does not accept uploads"}
    ]


async def test_a_spec_naming_an_image_has_nothing_to_build(world: World) -> None:
    world.service_id = await apply(
        world.api, spec_yaml("prebuilt", image="registry.example/prebuilt:1.0")
    )
    before = await world.state()
    result = await world.submit()
    assert result["__typename"] == "ValidationError"
    assert result["problems"] == [
        {
            "path": ["input", "serviceId"],
            "message": "the Service Spec of 'prebuilt' names the image "
            "'registry.example/prebuilt:1.0': there is nothing to build; remove runtime.image "
            "to build from source",
        }
    ]
    assert await world.state() == before


@pytest.mark.parametrize(
    "sha", ["not-a-sha", "A" * 40, "a" * 39, "a" * 41, "g" * 40, "0123456789abcdef" * 3]
)
async def test_a_git_sha_must_be_a_full_lowercase_hex_sha(world: World, sha: str) -> None:
    before = await world.state()
    result = await world.submit(gitSha=sha)
    assert result["__typename"] == "ValidationError"
    assert result["problems"] == [
        {"path": ["input", "gitSha"], "message": f"{sha!r} is not a full git SHA"}
    ]
    assert await world.state() == before


async def test_a_sha256_git_sha_is_accepted(world: World) -> None:
    result = await world.submit(gitSha="0123456789abcdef" * 4)
    assert result["__typename"] == "CreateReleaseSuccess"
    assert result["release"]["gitSha"] == "0123456789abcdef" * 4


async def test_exactly_one_source_must_be_given(world: World) -> None:
    before = await world.state()
    message = "give exactly one of sourcePath or source (an upload)"
    neither = await world.create()
    assert neither["__typename"] == "ValidationError"
    assert neither["problems"] == [{"path": ["input", "sourcePath"], "message": message}]
    both = await world.upload(tarball(world.source), sourcePath=str(world.source))
    assert both["__typename"] == "ValidationError"
    assert both["problems"] == [{"path": ["input", "sourcePath"], "message": message}]
    assert await world.state() == before


async def test_an_unknown_service_is_not_found(world: World) -> None:
    before = await world.state()
    world.service_id = "svc_doesnotexist"
    result = await world.submit()
    assert result["__typename"] == "NotFoundError"
    assert result["path"] == ["input", "serviceId"]
    assert await world.state() == before


async def member_api(world: World, name: str, role: Role) -> tuple[str, Api]:
    """A user with ``role`` on the whole account and a token of theirs (as
    tests/resolvers/test_rbac.py makes them)."""
    async with world.store.write() as session:
        user = User(
            id=new_id("user"),
            account_id=world.account_id,
            subject=f"test:{name}",
            email=f"{name}@example.test",
            display_name=name,
        )
        session.add(user)
        await session.flush()
        session.add(
            Membership(
                id=new_id("membership"),
                account_id=world.account_id,
                project_id=None,
                user_id=user.id,
                scope_ref=world.account_id,
                role=role,
            )
        )
        row, secret = bootstrap_token(user)
        row.name = f"{name}-token"
        row.scopes = ["*"]
        session.add(row)
        user_id = user.id
    return user_id, Api(world.api.client, {"authorization": f"Bearer {secret}"})


DENIED = (
    "Forbidden: deploying, scaling, rolling back or changing services needs the developer "
    "role on project 'shop'; you are readonly."
)


async def test_a_readonly_member_is_forbidden(world: World) -> None:
    user_id, readonly = await member_api(world, "viewer", Role.READONLY)
    before = await world.state()
    input_: dict[str, Any]
    if world.store.backend == "sqlite":
        input_ = {"serviceId": world.service_id, "sourcePath": str(world.source)}
        body = await readonly.execute(CREATE_RELEASE, {"input": input_})
    else:
        input_ = {"serviceId": world.service_id, "source": None}
        body = await upload(readonly, input_, tarball(world.source))
    assert body["data"] is None
    assert [(e["message"], e["extensions"]["code"]) for e in body["errors"]] == [
        (DENIED, "FORBIDDEN")
    ]
    # Nothing changed but the audit trail, which records the denial.
    assert await world.state() == {**before, "audit_events": before["audit_events"] + 1}
    denied = await world.audit("release.create")
    assert [(a.outcome, a.actor_id, a.payload) for a in denied] == [
        (AuditOutcome.DENIED, user_id, {"reason": DENIED, "permission": "deploy"})
    ]

    # A developer may.
    _, developer = await member_api(world, "dev", Role.DEVELOPER)
    allowed = await world.submit(developer)
    assert allowed["__typename"] == "CreateReleaseSuccess"


async def test_a_refused_upload_is_not_kept_in_the_blob_store(world: World) -> None:
    """graph/mutations.py Mutation.create_release stores the upload (_store_upload) before
    resolvers.releases.create_release checks the caller's role and the input, so a ReadOnly
    member's refused request still writes its tarball (up to 512 MiB each) into
    DATA_DIR/blobs, and so does a request refused for its input. A rejected request should
    leave the store as it was."""
    _, readonly = await member_api(world, "viewer", Role.READONLY)
    input_ = {"serviceId": world.service_id, "source": None}
    body = await upload(readonly, input_, tarball(world.source))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert blob_names(world.blobs) == []

    invalid = await world.upload(tarball(world.source), gitSha="not-a-sha")
    assert invalid["__typename"] == "ValidationError"
    assert blob_names(world.blobs) == []


# -- end to end -----------------------------------------------------------------------------

E2E_DEADLINE_S = 180.0


async def test_a_release_built_by_a_real_server(tmp_path: Path) -> None:
    example = REPO / "examples" / "python-web"
    server = start_server_process(tmp_path / "data")
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as client:
            api = Api(client, headers=server.headers)
            created = await api.data(
                'mutation { createProject(input: {name: "examples"}) {'
                " ... on CreateProjectSuccess { project { id slug } } } }"
            )
            project = created["createProject"]["project"]
            assert project["slug"] == "examples"
            env = await api.data(
                'mutation($p: ID!) { createEnvironment(input: {projectId: $p, name: "dev"}) {'
                " __typename } }",
                {"p": project["id"]},
            )
            assert env["createEnvironment"]["__typename"] == "CreateEnvironmentSuccess"
            applied = await api.data(
                "mutation($y: String!) { applyService(input: {specYaml: $y}) {"
                " __typename ... on ApplyServiceSuccess { service { id name } } } }",
                {"y": (example / "enclii.yaml").read_text()},
            )
            service = applied["applyService"]["service"]
            assert service["name"] == "python-web"
            result = (
                await api.data(
                    CREATE_RELEASE,
                    {"input": {"serviceId": service["id"], "sourcePath": str(example)}},
                )
            )["createRelease"]
            assert result["__typename"] == "CreateReleaseSuccess", result
            release_id = result["release"]["id"]

            async def finished() -> dict[str, Any]:
                while True:
                    node: dict[str, Any] = (await api.data(RELEASE, {"id": release_id}))["node"]
                    if node["status"] in ("READY", "FAILED"):
                        return node
                    await asyncio.sleep(0.2)

            release = await asyncio.wait_for(finished(), E2E_DEADLINE_S)
    finally:
        assert server.terminate() == 0, server.output()
    assert release["status"] == "READY", release["statusReason"]
    assert release["provenance"]["builder"] == "python"
    assert release["provenance"]["command"] == ["python", "app.py"]
    assert release["signature"].startswith("ed25519:")
    assert release["digest"].startswith("sha256:")
    artifact = tmp_path / "data" / "releases" / release_id
    assert (artifact / "app" / "app.py").read_bytes() == (example / "app.py").read_bytes()
    assert release["sbomUri"] == (artifact / "sbom.cdx.json").as_uri()
