"""The Mutation root. Each mutation returns a union: its success payload, or an error
member (ValidationError, NotFoundError, ConflictError) that says what to fix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from strawberry.file_uploads import Upload
from strawberry.scalars import JSON

from graph.context import Info
from graph.types.errors import (
    ConflictError,
    FrozenError,
    NotFoundError,
    ValidationError,
    error_from,
)
from graph.types.guardrails import CanaryStepInput
from graph.types.nodes import (
    ApiToken,
    Deployment,
    Environment,
    Membership,
    Project,
    Release,
    Route,
    Service,
    ServiceSpecVersion,
)
from resolvers import canary, deployments, projects, releases, routes, services
from resolvers.errors import Failure, ValidationFailed
from resolvers.identity import members, tokens
from store import models
from store.blobs import BlobError

UPLOAD_CHUNK = 1 << 20

# -- inputs --------------------------------------------------------------------------------


@strawberry.input
class CreateProjectInput:
    name: str
    slug: str | None = strawberry.field(
        default=None, description="DNS label; derived from the name when omitted."
    )


@strawberry.input
class UpdateProjectInput:
    id: strawberry.ID
    name: str | None = None


@strawberry.input(description="Caps for an environment; omitted fields stay as they are.")
class EnvironmentLimitsInput:
    cpu: str | None = strawberry.field(default=None, description="Cores (8) or millicores.")
    memory: str | None = strawberry.field(default=None, description="e.g. 16Gi.")
    egress_gib: int | None = None
    budget_monthly_usd: Decimal | None = None

    def to_resolver(self) -> projects.LimitsInput:
        return projects.LimitsInput(
            cpu=self.cpu,
            memory=self.memory,
            egress_gib=self.egress_gib,
            budget_monthly_usd=self.budget_monthly_usd,
        )


@strawberry.input
class CreateEnvironmentInput:
    project_id: strawberry.ID
    name: str = strawberry.field(description="dev, stage, prod or preview-<name>.")
    region: str | None = strawberry.field(default=None, description="Defaults to 'local'.")
    limits: EnvironmentLimitsInput | None = None


@strawberry.input
class UpdateEnvironmentInput:
    id: strawberry.ID
    region: str | None = None
    limits: EnvironmentLimitsInput | None = None


@strawberry.input
class ApplyServiceInput:
    spec_yaml: str = strawberry.field(description="An enclii.yaml document.")
    git_sha: str | None = strawberry.field(default=None, description="Fills {{ git.sha }}.")
    git_branch: str | None = strawberry.field(default=None, description="Fills {{ git.branch }}.")
    environment: str | None = strawberry.field(
        default=None,
        description="Apply into this environment instead of metadata.environment (one "
        "enclii.yaml for stage and prod).",
    )


@strawberry.input
class ScaleServiceInput:
    service_id: strawberry.ID
    min: int | None = strawberry.field(default=None, description="replicas.min (0..100).")
    max: int | None = strawberry.field(default=None, description="replicas.max (1..100).")


@strawberry.input
class DeleteServiceInput:
    id: strawberry.ID


@strawberry.input
class AddRouteInput:
    service_id: strawberry.ID
    host: str
    path: str | None = strawberry.field(default=None, description="Prefix; defaults to '/'.")
    tls_cert_ref: str | None = None


@strawberry.input
class RemoveRouteInput:
    id: strawberry.ID


@strawberry.input
class CreateTokenInput:
    name: str
    scopes: list[str] = strawberry.field(
        description="deploy:write, routes:write, logs:read, secrets:read, secrets:write, "
        "projects:write, environments:write, metrics:read, cost:read, budgets:write, "
        "roles:write, audit:read, or * for everything your role allows."
    )
    project_id: strawberry.ID | None = strawberry.field(
        default=None, description="Limit the token to one project."
    )
    expires_in: str | None = strawberry.field(
        default=None, description="30d, 12h, 2w… (default 90d, at most 366d)."
    )


@strawberry.input
class RevokeTokenInput:
    id: strawberry.ID


@strawberry.input
class InviteMemberInput:
    email: str
    role: models.Role
    project_id: strawberry.ID | None = strawberry.field(
        default=None, description="A role on one project; omit for the whole account."
    )


@strawberry.input
class ChangeRoleInput:
    id: strawberry.ID = strawberry.field(description="The membership.")
    role: models.Role


@strawberry.input
class RemoveMemberInput:
    id: strawberry.ID = strawberry.field(description="The membership.")


@strawberry.input(
    description="Give a local folder (embedded default only) or upload a tarball (.tar.gz) "
    "as a GraphQL multipart request."
)
class CreateReleaseInput:
    service_id: strawberry.ID
    source_path: str | None = strawberry.field(
        default=None, description="Absolute path of the folder holding the source."
    )
    source: Upload | None = strawberry.field(default=None, description="A source tarball.")
    git_sha: str | None = strawberry.field(
        default=None, description="Recorded in the provenance; detected from a git folder."
    )


@strawberry.input(description="Deploy a release of a service (it may still be building).")
class DeployInput:
    service_id: strawberry.ID
    release_id: strawberry.ID
    strategy: models.DeploymentStrategy | None = strawberry.field(
        default=None,
        description="ROLLING, BLUE_GREEN or CANARY; default: the release's spec.deploy.strategy.",
    )
    steps: list[CanaryStepInput] | None = strawberry.field(
        default=None,
        description="For CANARY: the steps to follow instead of spec.deploy.canary.steps.",
    )
    fix: bool = strawberry.field(
        default=False,
        description="A fix: a CANARY deploy marked so goes out even while the service's "
        "error budget is frozen.",
    )


@strawberry.input(description="Promote a canary past its current step, or all the way.")
class PromoteDeploymentInput:
    deployment_id: strawberry.ID
    full: bool = strawberry.field(
        default=False, description="Send it all traffic now, skipping the remaining steps."
    )


@strawberry.input(description="Hold a canary at its weight until promoted.")
class PauseDeploymentInput:
    deployment_id: strawberry.ID


@strawberry.input(description="Roll a canary back now; traffic returns to the stable release.")
class AbortDeploymentInput:
    deployment_id: strawberry.ID
    reason: str | None = strawberry.field(default=None, description="Recorded with it.")


@strawberry.input(description="Move a service back to an earlier release.")
class RollbackInput:
    service_id: strawberry.ID
    to_release_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Default: the release the current deployment replaced.",
    )


# -- payloads ------------------------------------------------------------------------------


@strawberry.type
class CreateProjectSuccess:
    project: Project


@strawberry.type
class UpdateProjectSuccess:
    project: Project


@strawberry.type
class CreateEnvironmentSuccess:
    environment: Environment


@strawberry.type
class UpdateEnvironmentSuccess:
    environment: Environment


@strawberry.type(description="One difference between the previous spec version and this one.")
class SpecChange:
    path: str
    kind: str = strawberry.field(description="added, removed or changed.")
    before: JSON | None
    after: JSON | None


@strawberry.type
class ApplyServiceSuccess:
    service: Service
    version: ServiceSpecVersion
    changes: list[SpecChange] = strawberry.field(description="Against the previous version.")
    created: bool = strawberry.field(description="The service did not exist before.")
    unchanged: bool = strawberry.field(
        description="The spec equals the current version; nothing was written."
    )

    @classmethod
    def from_result(cls, result: services.ApplyResult) -> ApplyServiceSuccess:
        return cls(
            service=Service.from_row(result.service),
            version=ServiceSpecVersion.from_row(result.version),
            changes=[
                SpecChange(
                    path=c.path, kind=c.kind.value, before=JSON(c.before), after=JSON(c.after)
                )
                for c in result.changes
            ],
            created=result.created,
            unchanged=result.unchanged,
        )


@strawberry.type
class DeleteServiceSuccess:
    deleted_service_id: strawberry.ID


@strawberry.type
class AddRouteSuccess:
    route: Route


@strawberry.type
class RemoveRouteSuccess:
    removed_route_id: strawberry.ID


@strawberry.type
class CreateTokenSuccess:
    token: ApiToken
    secret: str = strawberry.field(
        description="The token itself. It is shown this once and never stored; keep it safe."
    )


@strawberry.type
class RevokeTokenSuccess:
    token: ApiToken
    closed_connections: int = strawberry.field(
        description="Websocket connections of this token that were closed."
    )


@strawberry.type
class MembershipSuccess:
    membership: Membership


@strawberry.type
class RemoveMemberSuccess:
    removed_membership_id: strawberry.ID


@strawberry.type
class CreateReleaseSuccess:
    release: Release


@strawberry.type
class DeploySuccess:
    deployment: Deployment


@strawberry.type(description="The override is recorded; the controller acts on it at once.")
class DeploymentOverrideSuccess:
    deployment: Deployment


@strawberry.type
class RollbackSuccess:
    deployment: Deployment = strawberry.field(description="The rollback deployment.")


def _union(name: str) -> Any:
    return strawberry.union(name)


CreateProjectResult = Annotated[
    CreateProjectSuccess | ValidationError | ConflictError, _union("CreateProjectResult")
]
UpdateProjectResult = Annotated[
    UpdateProjectSuccess | ValidationError | NotFoundError, _union("UpdateProjectResult")
]
CreateEnvironmentResult = Annotated[
    CreateEnvironmentSuccess | ValidationError | NotFoundError | ConflictError,
    _union("CreateEnvironmentResult"),
]
UpdateEnvironmentResult = Annotated[
    UpdateEnvironmentSuccess | ValidationError | NotFoundError,
    _union("UpdateEnvironmentResult"),
]
ApplyServiceResult = Annotated[
    ApplyServiceSuccess | ValidationError | NotFoundError | ConflictError,
    _union("ApplyServiceResult"),
]
DeleteServiceResult = Annotated[DeleteServiceSuccess | NotFoundError, _union("DeleteServiceResult")]
AddRouteResult = Annotated[
    AddRouteSuccess | ValidationError | NotFoundError | ConflictError, _union("AddRouteResult")
]
RemoveRouteResult = Annotated[
    RemoveRouteSuccess | NotFoundError | ConflictError, _union("RemoveRouteResult")
]


CreateReleaseResult = Annotated[
    CreateReleaseSuccess | ValidationError | NotFoundError, _union("CreateReleaseResult")
]
DeployResult = Annotated[
    DeploySuccess | ValidationError | NotFoundError | ConflictError | FrozenError,
    _union("DeployResult"),
]
DeploymentOverrideResult = Annotated[
    DeploymentOverrideSuccess | ValidationError | NotFoundError | ConflictError,
    _union("DeploymentOverrideResult"),
]
RollbackResult = Annotated[
    RollbackSuccess | ValidationError | NotFoundError | ConflictError, _union("RollbackResult")
]
CreateTokenResult = Annotated[
    CreateTokenSuccess | ValidationError | NotFoundError, _union("CreateTokenResult")
]
RevokeTokenResult = Annotated[
    RevokeTokenSuccess | NotFoundError | ConflictError, _union("RevokeTokenResult")
]
MembershipResult = Annotated[
    MembershipSuccess | ValidationError | NotFoundError | ConflictError,
    _union("MembershipResult"),
]
RemoveMemberResult = Annotated[
    RemoveMemberSuccess | NotFoundError | ConflictError, _union("RemoveMemberResult")
]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a project; its slug is unique in the account.")
    async def create_project(self, info: Info, input: CreateProjectInput) -> CreateProjectResult:
        try:
            row = await projects.create_project(info.context.ctx, input.name, input.slug)
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        return CreateProjectSuccess(project=Project.from_row(row))

    @strawberry.mutation
    async def update_project(self, info: Info, input: UpdateProjectInput) -> UpdateProjectResult:
        try:
            row = await projects.update_project(info.context.ctx, str(input.id), input.name)
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        return UpdateProjectSuccess(project=Project.from_row(row))

    @strawberry.mutation(description="Add dev, stage, prod or a preview-* environment.")
    async def create_environment(
        self, info: Info, input: CreateEnvironmentInput
    ) -> CreateEnvironmentResult:
        try:
            row = await projects.create_environment(
                info.context.ctx,
                str(input.project_id),
                input.name,
                input.region,
                input.limits.to_resolver() if input.limits else None,
            )
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        return CreateEnvironmentSuccess(environment=Environment.from_row(row))

    @strawberry.mutation
    async def update_environment(
        self, info: Info, input: UpdateEnvironmentInput
    ) -> UpdateEnvironmentResult:
        try:
            row = await projects.update_environment(
                info.context.ctx,
                str(input.id),
                input.region,
                input.limits.to_resolver() if input.limits else None,
            )
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        return UpdateEnvironmentSuccess(environment=Environment.from_row(row))

    @strawberry.mutation(
        description="Create or update a service from its Service Spec. An identical spec "
        "changes nothing; a different one becomes the next immutable version."
    )
    async def apply_service(self, info: Info, input: ApplyServiceInput) -> ApplyServiceResult:
        try:
            result = await services.apply_service(
                info.context.ctx,
                input.spec_yaml,
                input.git_sha,
                input.git_branch,
                environment=input.environment,
            )
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        return ApplyServiceSuccess.from_result(result)

    @strawberry.mutation(
        description="Change a service's replica bounds (replicas.min/max, the autoscaler's "
        "range). Takes effect at once, with no rollout; it is the next spec version."
    )
    async def scale_service(self, info: Info, input: ScaleServiceInput) -> ApplyServiceResult:
        try:
            result = await services.scale_service(
                info.context.ctx, str(input.service_id), input.min, input.max
            )
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        return ApplyServiceSuccess.from_result(result)

    @strawberry.mutation(
        description="Delete a service: its routes and jobs go, its volumes are kept detached."
    )
    async def delete_service(self, info: Info, input: DeleteServiceInput) -> DeleteServiceResult:
        try:
            row = await services.delete_service(info.context.ctx, str(input.id))
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        return DeleteServiceSuccess(deleted_service_id=strawberry.ID(row.id))

    @strawberry.mutation(description="Bind a host and path prefix to a service.")
    async def add_route(self, info: Info, input: AddRouteInput) -> AddRouteResult:
        try:
            row = await routes.add_route(
                info.context.ctx, str(input.service_id), input.host, input.path, input.tls_cert_ref
            )
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        return AddRouteSuccess(route=Route.from_row(row))

    @strawberry.mutation(description="Unbind a route added with addRoute.")
    async def remove_route(self, info: Info, input: RemoveRouteInput) -> RemoveRouteResult:
        try:
            row = await routes.remove_route(info.context.ctx, str(input.id))
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        return RemoveRouteSuccess(removed_route_id=strawberry.ID(row.id))

    @strawberry.mutation(
        description="Create a personal access token for yourself. It can never do more than "
        "you can; its secret is in the result, once."
    )
    async def create_token(self, info: Info, input: CreateTokenInput) -> CreateTokenResult:
        try:
            created = await tokens.create_token(
                info.context.ctx,
                input.name,
                input.scopes,
                str(input.project_id) if input.project_id else None,
                input.expires_in,
            )
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        return CreateTokenSuccess(token=ApiToken.from_row(created.row), secret=created.secret)

    @strawberry.mutation(
        description="Revoke a token (yours, or anyone's with the admin role). Its open "
        "websocket connections are closed at once."
    )
    async def revoke_token(self, info: Info, input: RevokeTokenInput) -> RevokeTokenResult:
        try:
            row = await tokens.revoke_token(info.context.ctx, str(input.id))
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        closed = 0
        if info.context.authenticator is not None:
            info.context.authenticator.forget(token_id=row.id)
        if info.context.connections is not None:
            closed = await info.context.connections.close_token(row.id, "token revoked")
        return RevokeTokenSuccess(token=ApiToken.from_row(row), closed_connections=closed)

    @strawberry.mutation(description="Give someone a role on the account or on one project.")
    async def invite_member(self, info: Info, input: InviteMemberInput) -> MembershipResult:
        try:
            row = await members.invite_member(
                info.context.ctx,
                input.email,
                input.role,
                str(input.project_id) if input.project_id else None,
            )
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        if info.context.authenticator is not None:
            info.context.authenticator.forget(user_id=row.user_id)
        return MembershipSuccess(membership=Membership.from_row(row))

    @strawberry.mutation
    async def change_role(self, info: Info, input: ChangeRoleInput) -> MembershipResult:
        try:
            row = await members.change_role(info.context.ctx, str(input.id), input.role)
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        if info.context.authenticator is not None:
            info.context.authenticator.forget(user_id=row.user_id)
        return MembershipSuccess(membership=Membership.from_row(row))

    @strawberry.mutation
    async def remove_member(self, info: Info, input: RemoveMemberInput) -> RemoveMemberResult:
        try:
            row = await members.remove_member(info.context.ctx, str(input.id))
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        if info.context.authenticator is not None:
            info.context.authenticator.forget(user_id=row.user_id)
        return RemoveMemberSuccess(removed_membership_id=strawberry.ID(row.id))

    @strawberry.mutation(
        description="Build a new release of a service from source. It starts PENDING; the "
        "build controller builds, signs and readies it (or fails it with the reason), and "
        "the project's events report each step."
    )
    async def create_release(self, info: Info, input: CreateReleaseInput) -> CreateReleaseResult:
        blob_key = None
        try:
            if input.source is not None:
                blob_key = await _store_upload(info, input.source)
            row = await releases.create_release(
                info.context.ctx,
                str(input.service_id),
                source_path=input.source_path,
                blob_key=blob_key,
                git_sha=input.git_sha,
            )
        except Failure as failure:
            # A refused request keeps nothing: its upload goes unless a release uses it.
            blobs = info.context.blobs
            if (
                blob_key is not None
                and blobs is not None
                and not await releases.blob_in_use(info.context.ctx, blob_key)
            ):
                blobs.discard(blob_key)
            return error_from(failure)  # type: ignore[return-value]
        return CreateReleaseSuccess(release=Release.from_row(row))

    @strawberry.mutation(
        description="Deploy a release: the deployment is QUEUED, then BUILDING while its "
        "release builds, DEPLOYING as replicas start and traffic moves, and HEALTHY (or "
        "FAILED with the reason). Follow it with the deploymentStatus subscription."
    )
    async def deploy(self, info: Info, input: DeployInput) -> DeployResult:
        try:
            row = await deployments.deploy(
                info.context.ctx,
                str(input.service_id),
                str(input.release_id),
                input.strategy,
                steps=[step.to_spec() for step in input.steps] if input.steps else None,
                fix=input.fix,
            )
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        return DeploySuccess(deployment=Deployment.from_row(row))

    @strawberry.mutation(
        description="Roll a service back: all traffic moves to the earlier release as soon as "
        "one of its replicas is ready — at once while it is still warm (within its "
        "rollbackWindowSeconds of leaving traffic)."
    )
    async def rollback(self, info: Info, input: RollbackInput) -> RollbackResult:
        try:
            row = await deployments.rollback(
                info.context.ctx,
                str(input.service_id),
                str(input.to_release_id) if input.to_release_id else None,
            )
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        return RollbackSuccess(deployment=Deployment.from_row(row))

    @strawberry.mutation(
        description="Promote a canary: end its current pause or analysis step (and a manual "
        "pause), or with full: true send it all traffic now."
    )
    async def promote_deployment(
        self, info: Info, input: PromoteDeploymentInput
    ) -> DeploymentOverrideResult:
        try:
            row = await canary.promote(info.context.ctx, str(input.deployment_id), full=input.full)
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        return DeploymentOverrideSuccess(deployment=Deployment.from_row(row))

    @strawberry.mutation(
        description="Pause a canary at its weight until promoteDeployment. Analysis goes on: "
        "a failing canary is still rolled back."
    )
    async def pause_deployment(
        self, info: Info, input: PauseDeploymentInput
    ) -> DeploymentOverrideResult:
        try:
            row = await canary.pause(info.context.ctx, str(input.deployment_id))
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        return DeploymentOverrideSuccess(deployment=Deployment.from_row(row))

    @strawberry.mutation(
        description="Abort a canary: traffic returns to the stable release within a second; "
        "the deployment ends ROLLED_BACK."
    )
    async def abort_deployment(
        self, info: Info, input: AbortDeploymentInput
    ) -> DeploymentOverrideResult:
        try:
            row = await canary.abort(info.context.ctx, str(input.deployment_id), input.reason)
        except Failure as failure:
            return error_from(failure)  # type: ignore[return-value]
        return DeploymentOverrideSuccess(deployment=Deployment.from_row(row))


async def _store_upload(info: Info, upload: Any) -> str:
    blobs = info.context.blobs
    if blobs is None:
        raise ValidationFailed.one(("input", "source"), "this server does not accept uploads")

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await upload.read(UPLOAD_CHUNK):
            yield chunk

    try:
        return await blobs.put(chunks())
    except BlobError as exc:
        raise ValidationFailed.one(("input", "source"), str(exc)) from None
