"""deploy, rollback, status, releases: getting a release running, and back."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from client.cli.exit_codes import ExitCode
from client.cli.i18n import t
from client.cli.output import Output
from client.cli.session import client, connection, expect, fail, run
from client.cli.target import SPEC_FILE, git_facts, tarball, target

if TYPE_CHECKING:
    from client.api.canary_info import CanaryInfoDeploymentCanary as CanaryView
    from client.api.client import EncliiClient
    from client.api.enums import DeploymentStrategy
    from client.api.fragments import DeploymentView

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
EnvOption = Annotated[
    str | None, typer.Option("--env", "-e", help="Environment (default: from enclii.yaml).")
]
ProjectOption = Annotated[
    str | None, typer.Option("--project", "-p", help="Project (default: from enclii.yaml).")
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait before giving up (exit 40).")
]

TERMINAL = {"HEALTHY", "FAILED", "ROLLED_BACK", "SUPERSEDED"}
BUILD_POLL_S = 0.5


def deploy(
    env: EnvOption = None,
    strategy: Annotated[
        str | None,
        typer.Option(help="rolling, blue-green or canary (default: the spec's deploy.strategy)."),
    ] = None,
    release: Annotated[
        str | None,
        typer.Option(help="Deploy this release instead of building the folder first."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the deployment; exit with its outcome.")
    ] = False,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Mark it as a fix: a canary fix deploys even while the error budget is frozen.",
        ),
    ] = False,
    file: Annotated[Path, typer.Option("--file", "-f", help="The Service Spec.")] = Path(SPEC_FILE),
    timeout: TimeoutOption = 900.0,
    json_: JsonOption = False,
) -> None:
    """Apply enclii.yaml, build this folder into a signed release, and deploy it.

    The spec's project and environment are created on first use when your role allows it.
    With --wait the exit code is the outcome: 0 healthy, 20 build failed, 30 deployment
    failed or rolled back (a canary's analysis prints each check as it is made), 40 still
    going at --timeout. A service whose error budget is spent refuses deploys (30) except
    `--strategy canary --fix`.
    """
    out = Output(json=json_)
    run(out, lambda: deploy_folder(out, file, env, strategy, release, wait, timeout, fix=fix))


async def deploy_folder(
    out: Output,
    file: Path,
    env: str | None,
    strategy: str | None,
    release: str | None,
    wait: bool,
    limit_s: float,
    *,
    fix: bool = False,
) -> None:
    """What `deploy` and `up` do: apply, build (unless a release is given), deploy, and
    with ``wait`` follow it to its end."""
    deadline = time.monotonic() + limit_s
    chosen_strategy = parse_strategy(strategy)
    spec_path = file.resolve()
    try:
        spec_text = spec_path.read_text()
    except FileNotFoundError:
        fail(t("missing.spec", file=file))
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    chosen = target(None, env, None, spec_path)
    assert chosen.service is not None
    folder = spec_path.parent
    sha, branch = git_facts(folder)
    async with client() as api:
        service_id = await apply_spec(api, out, spec_text, chosen.environment, sha, branch)
        release_id = release or await build(api, out, service_id, folder, sha, limit_s)
        deployment = await start(api, service_id, release_id, chosen_strategy, fix=fix)
        report: dict[str, Any] = {
            "service": {"id": service_id, "name": chosen.service},
            "release": {"id": release_id},
            "deployment": deployment.model_dump(mode="json", by_alias=True),
        }
        if not wait:
            out.note(t("deploy.queued", deployment=deployment.id, release=release_id))
            if out.json:
                out.document(report)
            else:
                out.line(deployment.id)
            return
        left = max(1.0, deadline - time.monotonic())  # one --timeout for build and rollout
        final = await follow_with_analysis(api, out, deployment, left, report)
        report["deployment"] = final.model_dump(mode="json", by_alias=True)
        report["url"] = service_url(final)
        conclude(out, final, report)


def rollback(
    service: Annotated[str | None, typer.Argument(help="Service name.")] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Release ID (default: the one replaced last).")
    ] = None,
    env: EnvOption = None,
    project: ProjectOption = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow it to the end.")] = False,
    timeout: TimeoutOption = 300.0,
    json_: JsonOption = False,
) -> None:
    """Move all traffic back to an earlier release (warm ones switch in under a second)."""
    out = Output(json=json_)

    async def verb() -> None:
        from client.api.input_types import RollbackInput
        from client.api.rollback import RollbackRollbackRollbackSuccess

        chosen = target(service, env, project)
        async with client() as api:
            service_id = await find_service(api, chosen.project, chosen.environment, chosen.service)
            result = (
                await api.rollback(RollbackInput(service_id=service_id, to_release_id=to))
            ).rollback
            deployment = expect(result, RollbackRollbackRollbackSuccess).deployment
            out.note(
                t(
                    "rollback.done",
                    service=chosen.service,
                    release=deployment.to_release.id,
                    deployment=deployment.id,
                )
            )
            report: dict[str, Any] = {
                "deployment": deployment.model_dump(mode="json", by_alias=True)
            }
            if wait:
                final = await follow(api, out, deployment.id, timeout)
                report["deployment"] = final.model_dump(mode="json", by_alias=True)
                conclude(out, final, report)
            elif out.json:
                out.document(report)
            else:
                out.line(deployment.id)

    run(out, verb)


def status(
    deployment_id: Annotated[str, typer.Argument(help="A deployment ID (dep_…).")],
    wait: Annotated[bool, typer.Option("--wait", help="Follow it to the end.")] = False,
    timeout: TimeoutOption = 900.0,
    json_: JsonOption = False,
) -> None:
    """A deployment's phase, conditions and releases; --wait follows it to the end."""
    out = Output(json=json_)

    async def verb() -> None:
        async with client() as api:
            found = (await api.deployment_info(deployment_id)).deployment
            report: dict[str, Any] = {}
            if wait and found.phase.value not in TERMINAL:
                found = await follow_with_analysis(api, out, found, timeout, report)
            canary = None
            if found.strategy.value == "CANARY":
                info = (await api.canary_info(deployment_id)).deployment
                canary = info.canary if info is not None else None
            document = {
                **found.model_dump(mode="json", by_alias=True),
                **({"canary": canary.model_dump(mode="json", by_alias=True)} if canary else {}),
                **report,
            }
            if wait and found.phase.value != "HEALTHY":
                if not out.json:
                    describe(out, found, canary)
                conclude(out, found, document)
            if out.json:
                out.document(document)
                return
            describe(out, found, canary)

    run(out, verb)


def releases(
    service: Annotated[str | None, typer.Argument(help="Service name.")] = None,
    env: EnvOption = None,
    project: ProjectOption = None,
    limit: Annotated[int, typer.Option(help="How many, newest first (at most 100).")] = 20,
    json_: JsonOption = False,
) -> None:
    """A service's releases, newest first; the one serving is marked."""
    out = Output(json=json_)

    async def verb() -> None:
        chosen = target(service, env, project)
        assert chosen.service is not None
        async with client() as api:
            found = (
                await api.releases(
                    chosen.project, chosen.environment, chosen.service, min(max(limit, 1), 100)
                )
            ).service
            if found is None:
                missing_service(chosen.project, chosen.environment, chosen.service)
            serving = found.runtime.release.id if found.runtime else None
            rows = found.releases.nodes
            if out.json:
                out.document(
                    {
                        "serving": serving,
                        "total": found.releases.total_count,
                        "releases": [r.model_dump(mode="json", by_alias=True) for r in rows],
                    }
                )
                return
            if not rows:
                out.note(t("empty.releases", service=chosen.service))
                return
            out.table(
                ["", "RELEASE", "STATUS", "GIT", "CREATED", "BY"],
                [
                    [
                        "▶" if r.id == serving else "",
                        r.id,
                        r.status.value.lower(),
                        (r.git_sha or "")[:12],
                        r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                        r.created_by_user.display_name if r.created_by_user else r.created_by,
                    ]
                    for r in rows
                ],
            )

    run(out, verb)


# -- shared steps -----------------------------------------------------------------------------


async def find_service(api: EncliiClient, project: str, environment: str, name: str | None) -> str:
    assert name is not None
    found = (await api.service_by_name(project, environment, name)).service
    if found is None:
        missing_service(project, environment, name)
    return found.id


def missing_service(project: str, environment: str, name: str) -> NoReturn:
    fail(t("missing.service", name=name, project=project, environment=environment))


async def apply_spec(
    api: EncliiClient,
    out: Output,
    spec_text: str,
    environment: str,
    sha: str | None,
    branch: str | None,
) -> str:
    """Apply the spec into ``environment``, creating the project and the environment the
    first time (when the caller's role allows); the service's ID."""
    from client.api.apply_service import (
        ApplyServiceApplyServiceApplyServiceSuccess,
        ApplyServiceApplyServiceNotFoundError,
    )
    from client.api.input_types import ApplyServiceInput

    created: set[str] = set()
    while True:
        result = (
            await api.apply_service(
                ApplyServiceInput(
                    spec_yaml=spec_text, environment=environment, git_sha=sha, git_branch=branch
                )
            )
        ).apply_service
        if isinstance(result, ApplyServiceApplyServiceNotFoundError) and result.path:
            what = result.path[-1]
            if what in ("project", "environment") and what not in created:
                await create_missing(api, out, what, spec_text, environment)
                created.add(what)
                continue
        applied = expect(result, ApplyServiceApplyServiceApplyServiceSuccess)
        # The file's bounds win over an earlier `enclii scale`: say so, it is easy to miss.
        moved = [
            f"{c.path.rsplit('.', 1)[1]} {c.before} → {c.after}"
            for c in applied.changes
            if c.path.startswith("spec.runtime.replicas.") and c.kind == "changed"
        ]
        if moved:
            out.note(t("spec.bounds", moves=", ".join(sorted(moved)), file=SPEC_FILE))
        out.step(
            t(
                "spec.applied",
                service=applied.service.name,
                version=applied.version.version,
                note=t("spec.unchanged") if applied.unchanged else "",
            )
        )
        return applied.service.id


async def create_missing(
    api: EncliiClient, out: Output, what: str, spec_text: str, environment: str
) -> None:
    import yaml

    from client.api.create_environment import (
        CreateEnvironmentCreateEnvironmentCreateEnvironmentSuccess,
    )
    from client.api.create_project import CreateProjectCreateProjectCreateProjectSuccess
    from client.api.input_types import CreateEnvironmentInput, CreateProjectInput

    metadata = (yaml.safe_load(spec_text) or {}).get("metadata") or {}
    slug = str(metadata.get("project", ""))
    if what == "project":
        made = (await api.create_project(CreateProjectInput(name=slug, slug=slug))).create_project
        expect(made, CreateProjectCreateProjectCreateProjectSuccess)
        out.note(t("created.project", project=slug))
        return
    found = (await api.project_environment(slug, environment)).project
    if found is None:
        fail(f"project {slug!r} is not visible to you")
    env = (
        await api.create_environment(CreateEnvironmentInput(project_id=found.id, name=environment))
    ).create_environment
    expect(env, CreateEnvironmentCreateEnvironmentCreateEnvironmentSuccess)
    out.note(t("created.environment", environment=environment, project=slug))


async def build(
    api: EncliiClient,
    out: Output,
    service_id: str,
    folder: Path,
    sha: str | None,
    limit_s: float,
) -> str:
    """Upload the folder as a new release and wait for its build; the release's ID."""
    import asyncio
    import io

    from client.api.base_model import Upload
    from client.api.create_release import CreateReleaseCreateReleaseCreateReleaseSuccess
    from client.api.input_types import CreateReleaseInput
    from client.api.release_state import ReleaseStateNodeRelease

    archive = tarball(folder)
    source = Upload("source.tar.gz", io.BytesIO(archive), "application/gzip")
    made = (
        await api.create_release(
            CreateReleaseInput(service_id=service_id, source=source, git_sha=sha)
        )
    ).create_release
    release_id = expect(made, CreateReleaseCreateReleaseCreateReleaseSuccess).release.id
    deadline = time.monotonic() + limit_s
    with out.spinner(t("build.start", service=service_id, folder=folder)):
        while True:
            node = (await api.release_state(release_id)).node
            if not isinstance(node, ReleaseStateNodeRelease):
                fail(f"release {release_id} disappeared while building")
            if node.status.value == "READY":
                out.step(t("build.ready", release=release_id))
                return release_id
            if node.status.value == "FAILED":
                fail(
                    t("build.failed", release=release_id, reason=node.status_reason or "?"),
                    ExitCode.BUILD_FAILED,
                    hint=f"the build's output: enclii logs --release {release_id}",
                )
            if time.monotonic() > deadline:
                fail(f"release {release_id} was still building at --timeout", ExitCode.TIMEOUT)
            await asyncio.sleep(BUILD_POLL_S)


def parse_strategy(strategy: str | None) -> DeploymentStrategy | None:
    """--strategy, checked before anything is applied or built."""
    from client.api.enums import DeploymentStrategy

    if strategy is None:
        return None
    names = {s.value.lower().replace("_", "-"): s for s in DeploymentStrategy}
    if strategy.lower() not in names:
        fail(f"--strategy {strategy!r}: use one of {', '.join(sorted(names))}")
    return names[strategy.lower()]


async def start(
    api: EncliiClient,
    service_id: str,
    release_id: str,
    strategy: DeploymentStrategy | None,
    *,
    fix: bool = False,
) -> DeploymentView:
    from client.api.deploy import DeployDeployDeploySuccess, DeployDeployFrozenError
    from client.api.input_types import DeployInput

    result = (
        await api.deploy(
            DeployInput(service_id=service_id, release_id=release_id, strategy=strategy, fix=fix)
        )
    ).deploy
    if isinstance(result, DeployDeployFrozenError):
        # Refused by policy, not for its input: the deploy failed (30), with the numbers.
        fail(
            result.message,
            ExitCode.DEPLOY_FAILED,
            details={"frozen": result.model_dump(mode="json", by_alias=True)},
        )
    return expect(result, DeployDeployDeploySuccess).deployment


async def follow_with_analysis(
    api: EncliiClient,
    out: Output,
    deployment: DeploymentView,
    limit_s: float,
    report: dict[str, Any],
) -> DeploymentView:
    """``follow``, printing a canary's analysis checks beside its phases (and keeping them
    in the report); the check that decided a rollback is printed before the verdict."""
    if deployment.strategy.value != "CANARY":
        return await follow(api, out, deployment.id, limit_s)
    import asyncio

    from client.cli.canary import DRAIN_S, follow_analysis

    samples: list[dict[str, Any]] = []
    report["analysis"] = samples
    analysis = asyncio.create_task(follow_analysis(api, out, deployment.id, samples))
    try:
        final = await follow(api, out, deployment.id, limit_s)
        # The analysis stream completes once the deployment has ended.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_S):
                await asyncio.shield(analysis)
        return final
    finally:
        analysis.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await analysis


async def follow(
    api: EncliiClient, out: Output, deployment_id: str, limit_s: float
) -> DeploymentView:
    """Follow ``deploymentStatus`` until the deployment ends; it, as it ended. A stream that
    ends early or drops (the server restarting) is joined again until ``limit_s``."""
    import asyncio

    from client.api.base_client import ApiUnreachable

    delay = 0.5
    try:
        async with asyncio.timeout(limit_s):
            with out.spinner(t("holding")):
                while True:
                    try:
                        async for update in api.follow_deployment(deployment_id):
                            last = update.deployment_status.deployment
                            out.step(
                                t(
                                    "deploy.waiting",
                                    phase=last.phase.value.lower(),
                                    progress=progress(last),
                                )
                            )
                            if last.phase.value in TERMINAL:
                                return last
                    except ApiUnreachable:
                        pass
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
                    try:
                        now = (await api.deployment_info(deployment_id)).deployment
                    except ApiUnreachable:
                        continue
                    if now.phase.value in TERMINAL:
                        return now
    except TimeoutError:
        fail(t("timeout", seconds=limit_s, id=deployment_id), ExitCode.TIMEOUT)


def progress(deployment: DeploymentView) -> str:
    for condition in deployment.conditions:
        if condition.type_ == "Progressing" and condition.message:
            return condition.message
    return deployment.reason or ""


def conclude(out: Output, final: DeploymentView, report: dict[str, Any]) -> None:
    """Say how a followed deployment ended; fail with 30 unless it is healthy."""
    phase = final.phase.value
    if phase == "HEALTHY":
        if out.json:
            out.document(report)
        out.note(
            t(
                "deploy.healthy",
                service=final.service.name,
                release=final.to_release.id,
                url=service_url(final),
            )
        )
        if not out.json:
            out.line(final.id)
        return
    key = "deploy.rolled_back" if phase == "ROLLED_BACK" else "deploy.failed"
    fail(
        t(key, deployment=final.id, reason=final.reason or phase.lower()),
        ExitCode.DEPLOY_FAILED,
        details=report,
    )


def service_url(deployment: DeploymentView) -> str:
    """Where the service answers: its default host, on the local router's port when the
    CLI found the local server (a remote router's address is its operator's to tell)."""
    service = deployment.service
    host = f"{service.name}.{service.environment.name}.{service.project.slug}.localhost"
    router = connection().router
    port = router.rsplit(":", 1)[-1] if router else None
    return f"http://{host}:{port}/" if port else f"http://{host}/"


def describe(out: Output, deployment: DeploymentView, canary: CanaryView | None = None) -> None:
    service = deployment.service
    out.table(
        ["FIELD", "VALUE"],
        [
            ["deployment", deployment.id],
            ["service", f"{service.project.slug}/{service.environment.name}/{service.name}"],
            ["kind", deployment.kind.value.lower()],
            ["strategy", deployment.strategy.value.lower().replace("_", "-")],
            ["phase", deployment.phase.value.lower()],
            ["from", deployment.from_release.id if deployment.from_release else "—"],
            ["to", deployment.to_release.id],
            ["reason", deployment.reason or ""],
            ["started", deployment.started_at or ""],
            ["finished", deployment.finished_at or ""],
        ],
    )
    if canary is not None:
        from client.cli.canary import sample_line

        steps = len(canary.steps)
        out.line("")
        out.table(
            ["CANARY", "VALUE"],
            [
                ["step", f"{min(canary.step + 1, steps)} of {steps}"],
                ["weight", f"{canary.weight}%"],
                ["checks", canary.checks],
                ["paused by", canary.paused_by or "—"],
                ["latest", sample_line(canary.latest) if canary.latest else "—"],
                ["decided", canary.decision.reason if canary.decision else "—"],
            ],
        )
    if deployment.conditions:
        out.line("")
        out.table(
            ["CONDITION", "STATUS", "REASON", "MESSAGE"],
            [[c.type_, c.status, c.reason, c.message] for c in deployment.conditions],
        )
