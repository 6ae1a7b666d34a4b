"""Deployments through the API, on SQLite and PostgreSQL: the deploy and rollback mutations
(their results, errors that change nothing, roles, the audit trail and the events), the
deployment, runtime and metrics queries, and the deploymentStatus subscription over real
websockets in both GraphQL websocket protocols.

Releases that must run are real: built and signed by the build controller, run as processes
by the local driver, moved by the deployment controller, which is driven by hand
(``converge``) so each test says which world it expects after which decisions. Releases
that never run (refused deploys, rollback targets, metrics) are plain rows, and so is the
runtime the controller would have written when a test is about what the API reads."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sys
import tarfile
import textwrap
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from reconcile.builds import BuildController
from reconcile.deployments import DeploymentController
from reconcile.local.driver import LocalDriver
from reconcile.signing import PlatformKey
from resolvers import deployments as deployment_resolvers
from resolvers.bootstrap import Bootstrap
from resolvers.context import Context
from resolvers.identity.tokens import bootstrap_token
from resolvers.releases import create_release
from resolvers.services import apply_service
from store.blobs import BlobStore
from store.db import Store
from store.events import (
    DEPLOYMENT_PROGRESS,
    DEPLOYMENTS_STREAM,
    deployment_stream,
    project_stream,
    read_events,
)
from store.ids import new_id
from store.logs import LogWriter
from store.metrics import Tally, add_window, window_start
from store.models import (
    AuditEvent,
    AuditOutcome,
    Base,
    Deployment,
    DeploymentKind,
    DeploymentPhase,
    DeploymentStrategy,
    Membership,
    Release,
    ReleaseStatus,
    Role,
    Runtime,
    RuntimeStatus,
    ServiceSpecVersion,
    User,
    utcnow,
)
from tests.factories import make_environment, make_project
from tests.helpers import DEADLINE_S, Api, GraphQLWebSocket, LiveServer, WsProtocolError

T = TypeVar("T")

PROTOCOLS: Final = ["graphql-transport-ws", "graphql-ws"]
MISSING_SERVICE: Final = "svc_01M8EH5K0V56WD37Z896MQ0S8X"
MISSING_DEPLOYMENT: Final = "dep_01M8EH5K0V56WD37Z896MQ0S8X"
# Who the bootstrap token's requests are, as reasons and the audit trail name them.
OWNER_DISPLAY: Final = "Owner (token bootstrap)"
DENIED: Final = (
    "Forbidden: deploying, scaling, rolling back or changing services needs the developer "
    "role on project 'shop'; you are readonly."
)

APP = textwrap.dedent(
    """
    import json, os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"release": os.environ["ENCLII_RELEASE_ID"]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
    """
)

DEPLOYMENT_FIELDS: Final = """
  id kind phase strategy reason createdBy generation startedAt deadlineAt finishedAt
  service { id } fromRelease { id } toRelease { id }
  conditions { type status reason message observedGeneration lastTransitionTime }
"""

RESULT_FIELDS: Final = """
  __typename
  ... on ValidationError { problems { path message } }
  ... on ConflictError { existingId existing { id } }
  ... on Error { message code path }
"""

DEPLOY: Final = f"""
mutation($input: DeployInput!) {{
  deploy(input: $input) {{
    ... on DeploySuccess {{ deployment {{ {DEPLOYMENT_FIELDS} }} }}
    {RESULT_FIELDS}
  }}
}}
"""

ROLLBACK: Final = f"""
mutation($input: RollbackInput!) {{
  rollback(input: $input) {{
    ... on RollbackSuccess {{ deployment {{ {DEPLOYMENT_FIELDS} }} }}
    {RESULT_FIELDS}
  }}
}}
"""

DEPLOYMENT: Final = f"query($id: ID!) {{ deployment(id: $id) {{ {DEPLOYMENT_FIELDS} }} }}"

RUNTIME: Final = """
query($id: ID!) {
  runtime(serviceId: $id) {
    release { id } weight status replicasDesired replicasReady warmUntil
    replicas { name index phase ready restarts pid address }
  }
  service(id: $id) { runtime { id release { id } weight } }
  project(slug: "shop") {
    environment(name: "stage") { services { nodes { id runtime { id release { id } } } } }
  }
}
"""

TRAFFIC_FIELDS: Final = """
  requests requestsPerSecond errorRate p50Ms p95Ms p99Ms meanMs
  byStatusClass { status1xx status2xx status3xx status4xx status5xx }
"""

METRICS: Final = f"""
query($id: ID!, $window: Int!) {{
  metrics(serviceId: $id, window: $window) {{
    serviceId windowSeconds
    overall {{ {TRAFFIC_FIELDS} }}
    releases {{ releaseId traffic {{ {TRAFFIC_FIELDS} }} }}
  }}
}}
"""

STATUS: Final = """
subscription($id: ID!) {
  deploymentStatus(deploymentId: $id) {
    sequence
    deployment { id phase reason toRelease { id } conditions { type status reason } }
  }
}
"""


def spec_yaml(
    name: str = "api",
    *,
    type_: str = "api",
    replicas: int = 1,
    strategy: str = "rolling",
    deadline_s: int = 30,
    window_s: int = 600,
) -> str:
    return (
        "apiVersion: enclii.dev/v1\n"
        "kind: Service\n"
        "metadata:\n"
        "  project: shop\n"
        "  environment: stage\n"
        f"  name: {name}\n"
        "spec:\n"
        f"  type: {type_}\n"
        "  runtime:\n"
        f'    cmd: ["{sys.executable}", "app.py"]\n'
        + ("    ports: [8080]\n" if type_ == "api" else "")
        + f"    replicas: {{min: {0 if type_ == 'job' else replicas}}}\n"
        + (
            "  health:\n"
            "    readiness: {httpGet: {path: /healthz}, periodSeconds: 0.2, timeoutSeconds: 2}\n"
            if type_ == "api"
            else ""
        )
        + "  deploy:\n"
        f"    strategy: {strategy}\n"
        f"    progressDeadlineSeconds: {deadline_s}\n"
        f"    rollbackWindowSeconds: {window_s}\n"
    )


def when(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


def answer(address: str) -> str:
    """The release a replica says it runs."""
    with urllib.request.urlopen(f"http://{address}/", timeout=5) as response:
        release: str = json.loads(response.read())["release"]
        return release


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Member:
    user_id: str
    api: Api
    token: str


@dataclass
class World:
    ctx: Context
    store: Store
    api: Api
    owner: Bootstrap
    project_id: str
    source: Path
    blobs: BlobStore
    builds: BuildController
    controller: DeploymentController

    # -- building the world ------------------------------------------------------------------

    async def apply(self, name: str = "api", **spec: Any) -> str:
        """Apply a Service Spec (through the resolvers); the service's ID."""
        return (await apply_service(self.ctx, spec_yaml(name, **spec))).service.id

    async def pending_release(self, service_id: str) -> str:
        """A PENDING release of the test app: by path on SQLite, as an uploaded tarball on
        PostgreSQL (where paths are refused)."""
        if self.store.backend == "sqlite":
            pending = await create_release(self.ctx, service_id, source_path=str(self.source))
            return pending.id
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(self.source, arcname="app")
        data = buffer.getvalue()

        async def chunks() -> AsyncIterator[bytes]:
            yield data

        key = await self.blobs.put(chunks())
        return (await create_release(self.ctx, service_id, blob_key=key)).id

    async def build(self, release_id: str) -> str:
        await self.builds.reconcile(release_id)
        built = await self.get(Release, release_id)
        assert built.status is ReleaseStatus.READY, built.status_reason
        return built.id

    async def release(self, service_id: str) -> str:
        """A built, signed, READY release of the test app."""
        return await self.build(await self.pending_release(service_id))

    async def row_release(
        self,
        service_id: str,
        status: ReleaseStatus = ReleaseStatus.READY,
        reason: str | None = None,
    ) -> str:
        """A release as a plain row, of the service's current spec (never run)."""
        async with self.store.write() as session:
            spec_version = await session.scalar(
                select(ServiceSpecVersion.id)
                .where(ServiceSpecVersion.service_id == service_id)
                .order_by(ServiceSpecVersion.version.desc())
                .limit(1)
            )
            release = Release(
                id=new_id("release"),
                service_id=service_id,
                spec_version_id=spec_version,
                image_ref=f"local/app@sha256:{'0' * 64}",
                status=status,
                status_reason=reason,
                created_by=self.owner.owner.id,
            )
            session.add(release)
        return release.id

    async def history(self, service_id: str, *releases: str) -> list[str]:
        """Rows for what the controller leaves after deploying ``releases`` in turn, each
        healthy: deployments, the last release serving and the one before it warm."""
        ids: list[str] = []
        previous: str | None = None
        async with self.store.write() as session:
            for release_id in releases:
                deployment = Deployment(
                    id=new_id("deployment"),
                    service_id=service_id,
                    from_release_id=previous,
                    to_release_id=release_id,
                    strategy=DeploymentStrategy.ROLLING,
                    phase=DeploymentPhase.HEALTHY,
                    conditions=[],
                    created_by=self.owner.owner.id,
                    started_at=utcnow(),
                    finished_at=utcnow(),
                )
                session.add(deployment)
                ids.append(deployment.id)
                previous = release_id
            await session.flush()
            for i, release_id in enumerate(releases[-2:][::-1]):
                session.add(
                    Runtime(
                        id=new_id("runtime"),
                        service_id=service_id,
                        release_id=release_id,
                        replicas_desired=1,
                        replicas_ready=1,
                        status=RuntimeStatus.RUNNING,
                        weight=100 if i == 0 else 0,
                        warm_until=None if i == 0 else utcnow() + timedelta(minutes=10),
                        replicas=[],
                    )
                )
        return ids

    async def runtime_row(
        self,
        service_id: str,
        release_id: str,
        weight: int,
        status: RuntimeStatus = RuntimeStatus.RUNNING,
        warm_until: datetime | None = None,
    ) -> str:
        async with self.store.write() as session:
            row = Runtime(
                id=new_id("runtime"),
                service_id=service_id,
                release_id=release_id,
                replicas_desired=0 if status is RuntimeStatus.STOPPED else 1,
                replicas_ready=0 if status is RuntimeStatus.STOPPED else 1,
                status=status,
                weight=weight,
                warm_until=warm_until,
                replicas=[],
            )
            session.add(row)
        return row.id

    async def set_phase(
        self, deployment_id: str, phase: DeploymentPhase, reason: str | None = None
    ) -> None:
        async with self.store.write() as session:
            row = await session.get(Deployment, deployment_id)
            assert row is not None
            row.phase, row.reason, row.finished_at = phase, reason, utcnow()

    async def member(self, name: str, role: Role, project_id: str | None = None) -> Member:
        """A user with ``role`` on the account (or on ``project_id`` only) and a token."""
        account_id = self.owner.owner.account_id
        async with self.store.write() as session:
            user = User(
                id=new_id("user"),
                account_id=account_id,
                subject=f"test:{name}",
                email=f"{name}@example.test",
                display_name=name,
            )
            session.add(user)
            await session.flush()
            session.add(
                Membership(
                    id=new_id("membership"),
                    account_id=account_id,
                    project_id=project_id,
                    user_id=user.id,
                    scope_ref=project_id or account_id,
                    role=role,
                )
            )
            row, secret = bootstrap_token(user)
            row.name = f"{name}-token"
            row.scopes = ["*"]
            session.add(row)
            user_id = user.id
        return Member(user_id, Api(self.api.client, auth(secret)), secret)

    # -- acting through the API --------------------------------------------------------------

    async def deploy(
        self,
        service_id: str,
        release_id: str,
        strategy: str | None = None,
        caller: Api | None = None,
    ) -> dict[str, Any]:
        given: dict[str, Any] = {"serviceId": service_id, "releaseId": release_id}
        if strategy is not None:
            given["strategy"] = strategy
        data = await (caller or self.api).data(DEPLOY, {"input": given})
        result: dict[str, Any] = data["deploy"]
        return result

    async def rollback(
        self, service_id: str, to: str | None = None, caller: Api | None = None
    ) -> dict[str, Any]:
        given: dict[str, Any] = {"serviceId": service_id}
        if to is not None:
            given["toReleaseId"] = to
        data = await (caller or self.api).data(ROLLBACK, {"input": given})
        result: dict[str, Any] = data["rollback"]
        return result

    async def deployment(self, deployment_id: str) -> dict[str, Any]:
        found: dict[str, Any] = (await self.api.data(DEPLOYMENT, {"id": deployment_id}))[
            "deployment"
        ]
        return found

    # -- the controller ----------------------------------------------------------------------

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

    async def until_phase(
        self, service_id: str, deployment_id: str, phase: DeploymentPhase
    ) -> None:
        async def reached() -> bool:
            return (await self.get(Deployment, deployment_id)).phase is phase

        await self.converge(service_id, reached, f"{deployment_id} becomes {phase.value}")

    async def deployed(self, service_id: str, release_id: str) -> dict[str, Any]:
        """Deploy through the API and drive the controller until the deployment is healthy."""
        deployment = success(await self.deploy(service_id, release_id), "DeploySuccess")
        await self.until_phase(service_id, deployment["id"], DeploymentPhase.HEALTHY)
        return deployment

    # -- observing ---------------------------------------------------------------------------

    async def get(self, model: type[T], id: str) -> T:
        async with self.store.read() as session:
            row = await session.get(model, id)
            assert row is not None
            return row

    async def events(self, stream: str) -> list[tuple[str, str | None, dict[str, Any]]]:
        async with self.store.read() as session:
            return [(e.type, e.entity_id, e.payload) for e in await read_events(session, stream, 0)]

    async def audit(self) -> list[AuditEvent]:
        async with self.store.read() as session:
            return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))

    async def state(self) -> dict[str, Any]:
        """The row count of every table, and every deployment as it stands: what a refused
        request must leave exactly as it was."""
        async with self.store.read() as session:
            counts = {
                table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
                for table in Base.metadata.sorted_tables
            }
            deployments = [
                (d.id, d.phase, d.reason, d.finished_at, d.updated_at)
                for d in await session.scalars(select(Deployment).order_by(Deployment.id))
            ]
        return {"counts": counts, "deployments": deployments}


def success(result: dict[str, Any], typename: str) -> dict[str, Any]:
    assert result["__typename"] == typename, result
    deployment: dict[str, Any] = result["deployment"]
    return deployment


def validation(path: Sequence[str], message: str) -> dict[str, Any]:
    return {
        "__typename": "ValidationError",
        "problems": [{"path": list(path), "message": message}],
        "message": message,
        "code": "VALIDATION_FAILED",
        "path": list(path),
    }


def conflict(path: Sequence[str], message: str, existing: str | None = None) -> dict[str, Any]:
    return {
        "__typename": "ConflictError",
        "existingId": existing,
        "existing": {"id": existing} if existing else None,
        "message": message,
        "code": "CONFLICT",
        "path": list(path),
    }


def not_found(path: Sequence[str], message: str) -> dict[str, Any]:
    return {
        "__typename": "NotFoundError",
        "message": message,
        "code": "NOT_FOUND",
        "path": list(path),
    }


def conditions(deployment: dict[str, Any]) -> dict[str, tuple[str, str | None, str | None]]:
    return {
        c["type"]: (c["status"], c["reason"], c.get("message")) for c in deployment["conditions"]
    }


@pytest.fixture
async def world(
    ctx: Context, store: Store, api: Api, owner: Bootstrap, tmp_path: Path
) -> AsyncIterator[World]:
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
    try:
        yield World(
            ctx=ctx,
            store=store,
            api=api,
            owner=owner,
            project_id=project.id,
            source=source,
            blobs=blobs,
            builds=BuildController(store, data_dir, key, blobs, logs),
            controller=DeploymentController(store, driver, key),
        )
    finally:
        await driver.stop_everything()
        await logs.close()


# -- deploy ----------------------------------------------------------------------------------


async def test_deploy_queues_a_deployment_from_the_serving_release(world: World) -> None:
    service = await world.apply(strategy="blue-green")
    serving, warm, new = [await world.row_release(service) for _ in range(3)]
    await world.runtime_row(service, warm, 0, warm_until=utcnow() + timedelta(minutes=5))
    await world.runtime_row(service, serving, 100)
    audit_before = len(await world.audit())
    events_before = len(await world.events(project_stream(world.project_id)))

    deployment = success(await world.deploy(service, new), "DeploySuccess")

    assert deployment == {
        "id": deployment["id"],
        "kind": "DEPLOY",
        "phase": "QUEUED",
        "strategy": "BLUE_GREEN",  # the release's spec.deploy.strategy
        "reason": None,
        "createdBy": world.owner.owner.id,
        "generation": 1,
        "startedAt": None,
        "deadlineAt": None,
        "finishedAt": None,
        "service": {"id": service},
        "fromRelease": {"id": serving},
        "toRelease": {"id": new},
        "conditions": [],
    }
    row = await world.get(Deployment, deployment["id"])
    assert (row.phase, row.kind, row.from_release_id, row.to_release_id) == (
        DeploymentPhase.QUEUED,
        DeploymentKind.DEPLOY,
        serving,
        new,
    )
    [audit] = (await world.audit())[audit_before:]
    assert (audit.action, audit.outcome, audit.actor_id, audit.actor_display) == (
        "deployment.create",
        AuditOutcome.SUCCEEDED,
        world.owner.owner.id,
        OWNER_DISPLAY,
    )
    assert (audit.entity_type, audit.entity_id, audit.project_id) == (
        "deployment",
        deployment["id"],
        world.project_id,
    )
    assert audit.payload["before"] is None
    assert audit.payload["after"]["to_release_id"] == new
    assert audit.payload["after"]["phase"] == "queued"
    announced = {
        "service": "api",
        "environment": "stage",
        "release": new,
        "kind": "deploy",
        "strategy": "blue-green",
        "phase": "queued",
    }
    project_events = (await world.events(project_stream(world.project_id)))[events_before:]
    assert project_events == [("deployment.deploy", deployment["id"], announced)]
    assert await world.events(deployment_stream(deployment["id"])) == [
        ("deployment.queued", deployment["id"], announced)
    ]
    # The controller is woken for the service (applying its spec woke it too, for routes).
    assert [(t, e) for t, e, _ in await world.events(DEPLOYMENTS_STREAM)][-1] == (
        "deployment",
        service,
    )


async def test_a_first_deploy_comes_from_nothing_and_a_strategy_given_wins(world: World) -> None:
    service = await world.apply(strategy="rolling")
    # A release still building may be deployed: the deployment waits for it.
    building = await world.row_release(service, ReleaseStatus.BUILDING)
    deployment = success(await world.deploy(service, building, "BLUE_GREEN"), "DeploySuccess")
    assert (deployment["phase"], deployment["strategy"]) == ("QUEUED", "BLUE_GREEN")
    assert (deployment["fromRelease"], deployment["toRelease"]) == (None, {"id": building})

    other = await world.apply("web", strategy="blue-green")
    release = await world.row_release(other)
    rolling = success(await world.deploy(other, release, "ROLLING"), "DeploySuccess")
    assert rolling["strategy"] == "ROLLING"


async def test_refused_deploys_change_nothing(world: World) -> None:
    service = await world.apply()
    web = await world.apply("web")
    nightly = await world.apply("nightly", type_="job")
    ready = await world.row_release(service)
    failed = await world.row_release(service, ReleaseStatus.FAILED, "Build failed: pip exploded")
    of_web = await world.row_release(web)
    of_nightly = await world.row_release(nightly)
    missing_release = "rel_01M8EH5K0V56WD37Z896MQ0S8X"
    cases: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        (
            "an unknown service",
            {"serviceId": MISSING_SERVICE, "releaseId": ready},
            not_found(["input", "serviceId"], f"Service {MISSING_SERVICE!r} not found."),
        ),
        (
            "a release of another service",
            {"serviceId": service, "releaseId": of_web},
            validation(
                ["input", "releaseId"], f"release {of_web!r} is not a release of service 'api'"
            ),
        ),
        (
            "a release that does not exist",
            {"serviceId": service, "releaseId": missing_release},
            validation(
                ["input", "releaseId"],
                f"release {missing_release!r} is not a release of service 'api'",
            ),
        ),
        (
            "a release that failed to build",
            {"serviceId": service, "releaseId": failed},
            validation(
                ["input", "releaseId"],
                f"release {failed} failed to build (Build failed: pip exploded); fix the source "
                "and create a new release",
            ),
        ),
        (
            "canary steps on a rolling deploy",
            {
                "serviceId": service,
                "releaseId": ready,
                "strategy": "ROLLING",
                "steps": [{"setWeight": 10}],
            },
            validation(["input", "steps"], "steps apply to the canary strategy only"),
        ),
        (
            "a job service",
            {"serviceId": nightly, "releaseId": of_nightly},
            validation(
                ["input", "serviceId"],
                "'nightly' is a job service: it runs on its schedule or with runJob, it is "
                "not deployed",
            ),
        ),
    ]
    for label, given, expected in cases:
        before = await world.state()
        result = (await world.api.data(DEPLOY, {"input": given}))["deploy"]
        assert result == expected, label
        assert await world.state() == before, f"{label} changed the database"


async def test_deploying_the_deployed_release_again_is_a_conflict(world: World) -> None:
    service = await world.apply()
    release = await world.row_release(service)
    first = success(await world.deploy(service, release), "DeploySuccess")
    for phase in (DeploymentPhase.QUEUED, DeploymentPhase.DEPLOYING, DeploymentPhase.HEALTHY):
        if phase is not DeploymentPhase.QUEUED:
            await world.set_phase(first["id"], phase)
        before = await world.state()
        result = await world.deploy(service, release)
        assert result == conflict(
            ["input", "releaseId"],
            f"release {release} is already deployed (deployment {first['id']} is {phase.value})",
            first["id"],
        )
        assert await world.state() == before
    # A deployment that failed may be tried again.
    await world.set_phase(first["id"], DeploymentPhase.FAILED, "0 of 1 replicas ready")
    again = success(await world.deploy(service, release), "DeploySuccess")
    assert (again["phase"], again["toRelease"]) == ("QUEUED", {"id": release})
    assert again["id"] != first["id"]


@pytest.mark.parametrize("on_project", [False, True], ids=["account", "project"])
async def test_a_readonly_member_may_neither_deploy_nor_roll_back(
    world: World, on_project: bool
) -> None:
    service = await world.apply()
    old, current, new = [await world.row_release(service) for _ in range(3)]
    await world.history(service, old, current)
    reader = await world.member("reader", Role.READONLY, world.project_id if on_project else None)
    for field, document, given, action in (
        ("deploy", DEPLOY, {"serviceId": service, "releaseId": new}, "deployment.create"),
        ("rollback", ROLLBACK, {"serviceId": service}, "deployment.rollback"),
    ):
        before = await world.state()
        audit_before = len(await world.audit())
        body = await reader.api.execute(document, {"input": given})
        assert body["data"] is None
        assert [(e["message"], e["extensions"]["code"], e["path"]) for e in body["errors"]] == [
            (DENIED, "FORBIDDEN", [field])
        ]
        # Nothing changed but the audit trail, which records the attempt.
        after = await world.state()
        for audit_table in ("audit_events", "audit_chain_heads"):
            before["counts"].pop(audit_table)
            after["counts"].pop(audit_table)
        assert after == before
        denied = (await world.audit())[audit_before:]
        assert [
            (a.action, a.outcome, a.actor_id, a.entity_type, a.entity_id, a.payload) for a in denied
        ] == [
            (
                action,
                AuditOutcome.DENIED,
                reader.user_id,
                "project",
                world.project_id,
                {"reason": DENIED, "permission": "deploy"},
            )
        ]

    developer = await world.member("dev", Role.DEVELOPER, world.project_id)
    allowed = await world.deploy(service, new, caller=developer.api)
    assert success(allowed, "DeploySuccess")["createdBy"] == developer.user_id


async def test_a_member_of_another_project_finds_no_service_to_deploy(world: World) -> None:
    service = await world.apply()
    release = await world.row_release(service)
    elsewhere = await make_project(world.ctx, "elsewhere")
    outsider = await world.member("outsider", Role.OWNER, elsewhere.id)
    before = await world.state()
    message = f"Service {service!r} not found."
    assert await world.deploy(service, release, caller=outsider.api) == not_found(
        ["input", "serviceId"], message
    )
    assert await world.rollback(service, caller=outsider.api) == not_found(
        ["input", "serviceId"], message
    )
    assert await world.state() == before


async def test_two_deploys_of_one_release_at_once_are_one_success_and_one_conflict(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deploying the release that is already deployed is a ConflictError — also when two
    requests (a retried CI job, two people) deploy it at the same moment. Regression: on
    PostgreSQL both succeeded, because locking the newest deployment cannot lock a row
    another transaction is inserting; deploys of a service now lock the service row first.

    Made deterministic by holding each request just after its check until both have passed
    it (or, when the other cannot get there, for at most a second)."""
    service = await world.apply()
    release = await world.row_release(service)
    both_checked = asyncio.Barrier(2)
    original = deployment_resolvers.serving_release

    async def after_the_check(session: AsyncSession, service_id: str) -> str | None:
        with contextlib.suppress(TimeoutError, asyncio.BrokenBarrierError):
            await asyncio.wait_for(both_checked.wait(), 1.0)
        return await original(session, service_id)

    monkeypatch.setattr(deployment_resolvers, "serving_release", after_the_check)
    results = await asyncio.gather(world.deploy(service, release), world.deploy(service, release))
    assert sorted(r["__typename"] for r in results) == ["ConflictError", "DeploySuccess"]
    async with world.store.read() as session:
        queued = await session.scalar(
            select(func.count()).select_from(Deployment).where(Deployment.service_id == service)
        )
    assert queued == 1


# -- rollback --------------------------------------------------------------------------------


async def test_rollback_returns_to_the_release_the_current_deployment_replaced(
    world: World,
) -> None:
    service = await world.apply()
    first = await world.release(service)
    one = await world.deployed(service, first)
    second = await world.release(service)
    two = await world.deployed(service, second)
    assert two["fromRelease"] == {"id": first}
    audit_before = len(await world.audit())
    events_before = len(await world.events(project_stream(world.project_id)))

    back = success(await world.rollback(service), "RollbackSuccess")

    assert {k: back[k] for k in ("kind", "phase", "strategy", "fromRelease", "toRelease")} == {
        "kind": "ROLLBACK",
        "phase": "QUEUED",
        "strategy": "ROLLING",
        "fromRelease": {"id": second},
        "toRelease": {"id": first},
    }
    replaced = await world.deployment(two["id"])
    assert replaced["phase"] == "ROLLED_BACK"
    assert replaced["reason"] == f"rolled back to release {first} by {OWNER_DISPLAY}"
    assert replaced["finishedAt"] is not None
    # The deployment before it is history and stays as it was.
    assert (await world.deployment(one["id"]))["phase"] == "HEALTHY"

    [audit] = (await world.audit())[audit_before:]
    assert (audit.action, audit.outcome, audit.entity_id, audit.project_id) == (
        "deployment.rollback",
        AuditOutcome.SUCCEEDED,
        back["id"],
        world.project_id,
    )
    assert audit.payload["rolledBack"] == two["id"]
    assert audit.payload["before"]["phase"] == "healthy"
    assert audit.payload["after"]["to_release_id"] == first
    project_events = (await world.events(project_stream(world.project_id)))[events_before:]
    assert [(t, e) for t, e, _ in project_events] == [("deployment.rollback", back["id"])]
    assert [
        t
        for t, _, _ in await world.events(deployment_stream(two["id"]))
        if t != DEPLOYMENT_PROGRESS
    ] == [
        "deployment.queued",
        "deployment.deploying",
        "deployment.healthy",
        "deployment.rolled-back",
    ]

    # The first release is still warm: one reconcile moves all traffic back.
    await world.controller.reconcile(service)
    assert (await world.deployment(back["id"]))["phase"] == "HEALTHY"
    data = await world.api.data(RUNTIME, {"id": service})
    assert [(r["release"]["id"], r["weight"]) for r in data["runtime"]] == [
        (first, 100),
        (second, 0),
    ]
    assert data["service"]["runtime"]["release"] == {"id": first}


async def test_rollback_to_a_named_release(world: World) -> None:
    service = await world.apply()
    a, b, c = [await world.row_release(service) for _ in range(3)]
    deployments = await world.history(service, a, b, c)
    audit_before = len(await world.audit())

    back = success(await world.rollback(service, to=a), "RollbackSuccess")

    assert (back["kind"], back["phase"]) == ("ROLLBACK", "QUEUED")
    assert (back["fromRelease"], back["toRelease"]) == ({"id": c}, {"id": a})
    replaced = await world.deployment(deployments[-1])
    assert (replaced["phase"], replaced["reason"]) == (
        "ROLLED_BACK",
        f"rolled back to release {a} by {OWNER_DISPLAY}",
    )
    assert [(e.action, e.outcome) for e in (await world.audit())[audit_before:]] == [
        ("deployment.rollback", AuditOutcome.SUCCEEDED)
    ]
    # What the rollback replaced: the new deployment is now the current one.
    async with world.store.read() as session:
        newest = await session.scalar(
            select(Deployment.id)
            .where(Deployment.service_id == service)
            .order_by(Deployment.id.desc())
            .limit(1)
        )
    assert newest == back["id"]


async def test_refused_rollbacks_change_nothing(world: World) -> None:
    service = await world.apply()
    never = await world.apply("web")
    await world.row_release(never)
    only = await world.row_release(service)
    [current] = await world.history(service, only)
    pending = await world.row_release(service, ReleaseStatus.PENDING)
    failed = await world.row_release(service, ReleaseStatus.FAILED, "Build failed: no cmd")
    of_web = await world.row_release(never)
    cases: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        (
            "a service never deployed",
            {"serviceId": never},
            conflict(
                ["input", "serviceId"],
                "'web' has never been deployed: there is nothing to roll back",
            ),
        ),
        (
            "no earlier release",
            {"serviceId": service},
            conflict(
                ["input", "toReleaseId"],
                "'api' has no earlier healthy release to roll back to; name one with toReleaseId",
            ),
        ),
        (
            "a target still pending",
            {"serviceId": service, "toReleaseId": pending},
            validation(
                ["input", "toReleaseId"],
                f"release {pending} is pending, not a built release; roll back to a release "
                "that was deployed before",
            ),
        ),
        (
            "a target that failed to build",
            {"serviceId": service, "toReleaseId": failed},
            validation(
                ["input", "toReleaseId"],
                f"release {failed} is failed, not a built release; roll back to a release "
                "that was deployed before",
            ),
        ),
        (
            "the current release",
            {"serviceId": service, "toReleaseId": only},
            conflict(
                ["input", "toReleaseId"],
                f"release {only} is the current release (deployment {current} is healthy)",
                current,
            ),
        ),
        (
            "a release of another service",
            {"serviceId": service, "toReleaseId": of_web},
            validation(
                ["input", "toReleaseId"], f"release {of_web!r} is not a release of service 'api'"
            ),
        ),
        (
            "an unknown service",
            {"serviceId": MISSING_SERVICE},
            not_found(["input", "serviceId"], f"Service {MISSING_SERVICE!r} not found."),
        ),
    ]
    for label, given, expected in cases:
        before = await world.state()
        result = (await world.api.data(ROLLBACK, {"input": given}))["rollback"]
        assert result == expected, label
        assert await world.state() == before, f"{label} changed the database"


# -- queries ---------------------------------------------------------------------------------


async def test_deployment_and_runtime_after_a_rollout(world: World) -> None:
    service = await world.apply(replicas=2, deadline_s=30, window_s=600)
    first = await world.release(service)
    await world.deployed(service, first)
    second = await world.release(service)
    two = await world.deployed(service, second)

    found = await world.deployment(two["id"])
    digest = (await world.get(Release, second)).digest
    assert conditions(found) == {
        "ReleaseReady": ("True", "Built", f"release {second} is ready"),
        "Verified": ("True", "SignatureValid", f"signature and digest {digest} verified"),
        "Available": ("True", "ReplicasReady", "2 of 2 replicas ready"),
        "Progressing": (
            "True",
            "RolloutComplete",
            f"rollout complete: release {second} takes all traffic",
        ),
    }
    assert [c["observedGeneration"] for c in found["conditions"]] == [1, 1, 1, 1]
    assert all(c["lastTransitionTime"] for c in found["conditions"])
    assert (found["phase"], found["fromRelease"], found["toRelease"]) == (
        "HEALTHY",
        {"id": first},
        {"id": second},
    )
    started, finished = when(found["startedAt"]), when(found["finishedAt"])
    assert when(found["deadlineAt"]) == started + timedelta(seconds=30)
    assert started <= finished

    data = await world.api.data(RUNTIME, {"id": service})
    serving, warm = data["runtime"]
    assert {k: serving[k] for k in serving if k != "replicas"} == {
        "release": {"id": second},
        "weight": 100,
        "status": "RUNNING",
        "replicasDesired": 2,
        "replicasReady": 2,
        "warmUntil": None,
    }
    assert {k: warm[k] for k in warm if k not in ("replicas", "warmUntil")} == {
        "release": {"id": first},
        "weight": 0,
        "status": "RUNNING",
        "replicasDesired": 2,
        "replicasReady": 2,
    }
    # Warm for the rollback window from when the second release took all traffic.
    assert finished < when(warm["warmUntil"]) <= finished + timedelta(seconds=600)
    for runtime in (serving, warm):
        release = runtime["release"]["id"]
        replicas = runtime["replicas"]
        assert [(r["index"], r["phase"], r["ready"], r["restarts"]) for r in replicas] == [
            (0, "running", True, 0),
            (1, "running", True, 0),
        ]
        assert all(r["pid"] and release in r["name"] for r in replicas)
        addresses = [r["address"] for r in replicas]
        assert len(set(addresses)) == 2
        assert all(a.startswith("127.0.0.1:") for a in addresses)
        assert {answer(a) for a in addresses} == {release}
    assert data["service"]["runtime"]["release"] == {"id": second}
    [listed] = data["project"]["environment"]["services"]["nodes"]
    assert listed["runtime"]["release"] == {"id": second}


async def test_service_runtime_is_the_release_taking_most_traffic(world: World) -> None:
    service = await world.apply()
    a, b, c, d = [await world.row_release(service) for _ in range(4)]
    await world.runtime_row(service, c, 0, RuntimeStatus.STOPPED)
    ra = await world.runtime_row(service, a, 75)
    rb = await world.runtime_row(service, b, 25)
    await world.runtime_row(service, d, 0, warm_until=utcnow() + timedelta(minutes=5))

    async def seen() -> tuple[list[tuple[str, int]], str | None, str | None]:
        data = await world.api.data(RUNTIME, {"id": service})
        [listed] = data["project"]["environment"]["services"]["nodes"]
        by_id = data["service"]["runtime"]
        return (
            [(r["release"]["id"], r["weight"]) for r in data["runtime"]],
            by_id["id"] if by_id else None,
            listed["runtime"]["id"] if listed["runtime"] else None,
        )

    # Serving first; warm ones after; stopped ones are not listed.
    assert await seen() == ([(a, 75), (b, 25), (d, 0)], ra, ra)
    async with world.store.write() as session:
        for runtime in await session.scalars(select(Runtime).where(Runtime.service_id == service)):
            if runtime.release_id in (a, b):
                runtime.weight = 20 if runtime.release_id == a else 80
    assert await seen() == ([(b, 80), (a, 20), (d, 0)], rb, rb)
    # Half and half: the newer runtime first, in the list and as Service.runtime alike.
    async with world.store.write() as session:
        for runtime in await session.scalars(select(Runtime).where(Runtime.service_id == service)):
            if runtime.release_id in (a, b):
                runtime.weight = 50
    assert await seen() == ([(b, 50), (a, 50), (d, 0)], rb, rb)

    nothing = await world.apply("web")
    data = await world.api.data(RUNTIME, {"id": nothing})
    assert (data["runtime"], data["service"]["runtime"]) == ([], None)


def tally(samples: Sequence[tuple[int, float, int]]) -> Tally:
    """(status, latency ms, how many times)."""
    result = Tally()
    for status, latency, times in samples:
        for _ in range(times):
            result.record(status, latency)
    return result


def expected_traffic(t: Tally, span: float) -> dict[str, Any]:
    return {
        "requests": t.requests,
        "requestsPerSecond": pytest.approx(t.requests / span),
        "errorRate": pytest.approx(t.by_class["5xx"] / t.requests),
        "p50Ms": t.quantile(0.50),
        "p95Ms": t.quantile(0.95),
        "p99Ms": t.quantile(0.99),
        "meanMs": pytest.approx(t.latency_sum_ms / t.requests),
        "byStatusClass": {f"status{k}": v for k, v in t.by_class.items()},
    }


async def test_metrics_sum_what_the_router_recorded(world: World) -> None:
    service = await world.apply()
    old, new = sorted([await world.row_release(service), await world.row_release(service)])
    now = utcnow()
    a_now = [(200, 4.0, 60), (200, 9.0, 25), (503, 150.0, 5), (301, 1.0, 10)]
    a_earlier = [(200, 6.0, 40), (500, 300.0, 10)]
    b_now = [(200, 2.0, 18), (404, 0.5, 2)]
    long_ago = [(500, 5000.0, 7)]
    async with world.store.write() as session:
        # The router flushes the current window more than once: the counts add up.
        await add_window(session, window_start(now), {(service, old): tally(a_now[:2])})
    async with world.store.write() as session:
        await add_window(
            session,
            window_start(now),
            {(service, old): tally(a_now[2:]), (service, new): tally(b_now)},
        )
        await add_window(
            session, window_start(now - timedelta(seconds=200)), {(service, old): tally(a_earlier)}
        )
        await add_window(
            session, window_start(now - timedelta(seconds=1000)), {(service, old): tally(long_ago)}
        )

    data = (await world.api.data(METRICS, {"id": service, "window": 300}))["metrics"]
    span = data["windowSeconds"]
    # Whole windows: the oldest one overlapping the range counts in full.
    assert 300 <= span < 330
    old_tally, new_tally = tally(a_now + a_earlier), tally(b_now)
    both = tally(a_now + a_earlier + b_now)
    assert data["serviceId"] == service
    assert data["overall"] == expected_traffic(both, span)
    assert data["overall"]["requests"] == 170
    assert data["overall"]["errorRate"] == pytest.approx(15 / 170)
    assert data["releases"] == [
        {"releaseId": old, "traffic": expected_traffic(old_tally, span)},
        {"releaseId": new, "traffic": expected_traffic(new_tally, span)},
    ]
    assert (
        data["releases"][0]["traffic"]["requests"],
        data["releases"][1]["traffic"]["requests"],
    ) == (150, 20)
    # Percentiles are real percentiles of every request, to the bucket width (about 10%).
    p50 = data["overall"]["p50Ms"]
    assert 4.0 / 1.1 <= p50 <= 4.0 * 1.1

    # A longer window reaches the old window too.
    hour = (await world.api.data(METRICS, {"id": service, "window": 3600}))["metrics"]
    assert hour["overall"]["requests"] == 177
    assert hour["overall"]["byStatusClass"]["status5xx"] == 22

    empty = await world.apply("web")
    quiet = (await world.api.data(METRICS, {"id": empty, "window": 60}))["metrics"]
    assert quiet["releases"] == []
    assert {k: v for k, v in quiet["overall"].items() if k != "byStatusClass"} == {
        "requests": 0,
        "requestsPerSecond": 0.0,
        "errorRate": 0.0,
        "p50Ms": None,
        "p95Ms": None,
        "p99Ms": None,
        "meanMs": None,
    }


@pytest.mark.parametrize("window", [10, 604800])
async def test_metrics_window_bounds_are_allowed(world: World, window: int) -> None:
    service = await world.apply()
    data = (await world.api.data(METRICS, {"id": service, "window": window}))["metrics"]
    assert window <= data["windowSeconds"] < window + 20


@pytest.mark.parametrize("window", [9, 0, -300, 604801])
async def test_metrics_window_out_of_bounds_is_bad_user_input(world: World, window: int) -> None:
    service = await world.apply()
    body = await world.api.execute(METRICS, {"id": service, "window": window})
    assert body["data"] is None
    assert [(e["message"], e["extensions"]["code"], e["path"]) for e in body["errors"]] == [
        (
            f"window must be between 10 and 604800 seconds, got {window}",
            "BAD_USER_INPUT",
            ["metrics"],
        )
    ]


async def test_queries_of_things_not_there_are_not_found(world: World) -> None:
    service = await world.apply()
    elsewhere = await make_project(world.ctx, "elsewhere")
    outsider = await world.member("outsider", Role.OWNER, elsewhere.id)
    reader = await world.member("reader", Role.READONLY, world.project_id)
    release = await world.row_release(service)
    deployment = success(await world.deploy(service, release), "DeploySuccess")

    async def error(caller: Api, document: str, variables: dict[str, Any]) -> tuple[str, str]:
        body = await caller.execute(document, variables)
        assert body["data"] is None
        [found] = body["errors"]
        return found["message"], found["extensions"]["code"]

    assert await error(world.api, DEPLOYMENT, {"id": MISSING_DEPLOYMENT}) == (
        f"Deployment {MISSING_DEPLOYMENT!r} not found.",
        "NOT_FOUND",
    )
    runtime_only = "query($id: ID!) { runtime(serviceId: $id) { weight } }"
    for document, variables in (
        (runtime_only, {"id": MISSING_SERVICE}),
        (METRICS, {"id": MISSING_SERVICE, "window": 300}),
    ):
        assert await error(world.api, document, variables) == (
            f"Service {MISSING_SERVICE!r} not found.",
            "NOT_FOUND",
        )
    # Someone who may not see the project sees none of it.
    for document, variables in (
        (DEPLOYMENT, {"id": deployment["id"]}),
        (runtime_only, {"id": service}),
        (METRICS, {"id": service, "window": 300}),
    ):
        _message, code = await error(outsider.api, document, variables)
        assert code == "NOT_FOUND"
    # A ReadOnly member of the project sees all of it.
    data = await reader.api.data(
        "query($d: ID!, $s: ID!) { deployment(id: $d) { phase } runtime(serviceId: $s) "
        "{ weight } metrics(serviceId: $s) { overall { requests } } }",
        {"d": deployment["id"], "s": service},
    )
    assert data == {
        "deployment": {"phase": "QUEUED"},
        "runtime": [],
        "metrics": {"overall": {"requests": 0}},
    }


async def test_an_invisible_deployment_is_reported_as_missing(world: World) -> None:
    """Things a caller may not see are reported exactly like things that do not exist.
    Regression: a member of another project asking for dep_X was told "Service 'svc_Y' not
    found.", which said that dep_X exists and which service it belongs to."""
    service = await world.apply()
    release = await world.row_release(service)
    deployment = success(await world.deploy(service, release), "DeploySuccess")
    elsewhere = await make_project(world.ctx, "elsewhere")
    outsider = await world.member("outsider", Role.OWNER, elsewhere.id)
    body = await outsider.api.execute(DEPLOYMENT, {"id": deployment["id"]})
    [error] = body["errors"]
    assert (error["message"], error["extensions"]["code"]) == (
        f"Deployment {deployment['id']!r} not found.",
        "NOT_FOUND",
    )


# -- the deploymentStatus subscription -------------------------------------------------------


def status_of(data: dict[str, Any]) -> tuple[int, str]:
    status = data["deploymentStatus"]
    return status["sequence"], status["deployment"]["phase"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_deployment_status_follows_the_rollout_until_it_ends(
    world: World, live_server: LiveServer, token: str, protocol: str
) -> None:
    service = await world.apply()
    release = await world.release(service)
    deployment = success(await world.deploy(service, release), "DeploySuccess")
    async with GraphQLWebSocket.connect(live_server.ws_url, protocol, auth(token)) as ws:
        op = await ws.subscribe(STATUS, {"id": deployment["id"]})
        # First, the deployment as it is now.
        first = await ws.next_data(op)
        assert status_of(first) == (1, "QUEUED")
        assert first["deploymentStatus"]["deployment"]["toRelease"] == {"id": release}
        # One reconcile starts the replicas: DEPLOYING.
        await world.controller.reconcile(service)
        assert status_of(await ws.next_data(op)) == (2, "DEPLOYING")
        await world.until_phase(service, deployment["id"], DeploymentPhase.HEALTHY)
        last = await ws.next_data(op)
        assert status_of(last) == (3, "HEALTHY")
        progressing = {c["type"]: c for c in last["deploymentStatus"]["deployment"]["conditions"]}
        assert (progressing["Progressing"]["status"], progressing["Progressing"]["reason"]) == (
            "True",
            "RolloutComplete",
        )
        # Then the stream ends.
        done = await ws.receive_type("complete")
        assert done["id"] == op


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_finished_deployment_sends_one_status_and_completes(
    world: World, live_server: LiveServer, token: str, protocol: str
) -> None:
    service = await world.apply()
    release = await world.row_release(service)
    deployment = success(await world.deploy(service, release), "DeploySuccess")
    await world.set_phase(deployment["id"], DeploymentPhase.FAILED, "0 of 1 replicas ready")
    async with GraphQLWebSocket.connect(live_server.ws_url, protocol, auth(token)) as ws:
        op = await ws.subscribe(STATUS, {"id": deployment["id"]})
        data = await ws.next_data(op)
        done = await ws.receive_type("complete")
    assert data["deploymentStatus"] == {
        "sequence": 1,
        "deployment": {
            "id": deployment["id"],
            "phase": "FAILED",
            "reason": "0 of 1 replicas ready",
            "toRelease": {"id": release},
            "conditions": [],
        },
    }
    assert done["id"] == op


async def test_following_an_unknown_deployment_is_an_error(
    world: World, live_server: LiveServer, token: str
) -> None:
    async with GraphQLWebSocket.connect(live_server.ws_url, payload=auth(token)) as ws:
        op = await ws.subscribe(STATUS, {"id": MISSING_DEPLOYMENT})
        with pytest.raises(WsProtocolError) as caught:
            await ws.next_data(op)
    assert f"Deployment '{MISSING_DEPLOYMENT}' not found" in str(caught.value)
    assert "NOT_FOUND" in str(caught.value)


async def test_a_member_of_another_project_cannot_follow_a_deployment(
    world: World, live_server: LiveServer
) -> None:
    service = await world.apply()
    release = await world.row_release(service)
    deployment = success(await world.deploy(service, release), "DeploySuccess")
    elsewhere = await make_project(world.ctx, "elsewhere")
    outsider = await world.member("outsider", Role.OWNER, elsewhere.id)
    async with GraphQLWebSocket.connect(live_server.ws_url, payload=auth(outsider.token)) as ws:
        op = await ws.subscribe(STATUS, {"id": deployment["id"]})
        with pytest.raises(WsProtocolError) as caught:
            await ws.next_data(op)
    assert "NOT_FOUND" in str(caught.value)
    assert "QUEUED" not in str(caught.value)
    # A member of the project may.
    reader = await world.member("reader", Role.READONLY, world.project_id)
    async with GraphQLWebSocket.connect(live_server.ws_url, payload=auth(reader.token)) as ws:
        op = await ws.subscribe(STATUS, {"id": deployment["id"]})
        assert status_of(await ws.next_data(op)) == (1, "QUEUED")


async def test_deployment_status_of_a_release_still_building(
    world: World, live_server: LiveServer, token: str
) -> None:
    service = await world.apply()
    release = await world.pending_release(service)
    deployment = success(await world.deploy(service, release), "DeploySuccess")
    async with GraphQLWebSocket.connect(live_server.ws_url, payload=auth(token)) as ws:
        op = await ws.subscribe(STATUS, {"id": deployment["id"]})
        assert status_of(await ws.next_data(op)) == (1, "QUEUED")
        await world.controller.reconcile(service)
        building = await ws.next_data(op)
        assert status_of(building) == (2, "BUILDING")
        ready = {c["type"]: c for c in building["deploymentStatus"]["deployment"]["conditions"]}
        assert (ready["ReleaseReady"]["status"], ready["ReleaseReady"]["reason"]) == (
            "False",
            "Building",
        )
        await world.build(release)
        await world.controller.reconcile(service)
        assert status_of(await ws.next_data(op)) == (3, "DEPLOYING")
        await world.until_phase(service, deployment["id"], DeploymentPhase.HEALTHY)
        assert status_of(await ws.next_data(op)) == (4, "HEALTHY")
        assert (await ws.receive_type("complete"))["id"] == op


async def test_a_followed_deployment_that_is_rolled_back_ends_the_stream(
    world: World, live_server: LiveServer, token: str
) -> None:
    service = await world.apply()
    good, bad = await world.row_release(service), await world.row_release(service)
    await world.history(service, good)
    deployment = success(await world.deploy(service, bad), "DeploySuccess")
    async with GraphQLWebSocket.connect(live_server.ws_url, payload=auth(token)) as ws:
        op = await ws.subscribe(STATUS, {"id": deployment["id"]})
        assert status_of(await ws.next_data(op)) == (1, "QUEUED")
        back = success(await world.rollback(service), "RollbackSuccess")
        assert back["toRelease"] == {"id": good}
        last = await ws.next_data(op)
        done = await ws.receive_type("complete")
    assert status_of(last) == (2, "ROLLED_BACK")
    assert last["deploymentStatus"]["deployment"]["reason"] == (
        f"rolled back to release {good} by {OWNER_DISPLAY}"
    )
    assert done["id"] == op
