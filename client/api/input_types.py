from datetime import datetime
from typing import Any, Optional

from pydantic import Field

from .base_model import BaseModel, Upload
from .enums import AuditOutcome, DeploymentStrategy, Role


class AbortDeploymentInput(BaseModel):
    """Roll a canary back now; traffic returns to the stable release."""

    deployment_id: str = Field(alias="deploymentId")
    reason: Optional[str] = None
    "Recorded with it."


class AddRouteInput(BaseModel):
    service_id: str = Field(alias="serviceId")
    host: str
    path: Optional[str] = None
    "Prefix; defaults to '/'."
    tls_cert_ref: Optional[str] = Field(alias="tlsCertRef", default=None)


class ApplyServiceInput(BaseModel):
    spec_yaml: str = Field(alias="specYaml")
    "An enclii.yaml document."
    git_sha: Optional[str] = Field(alias="gitSha", default=None)
    "Fills {{ git.sha }}."
    git_branch: Optional[str] = Field(alias="gitBranch", default=None)
    "Fills {{ git.branch }}."
    environment: Optional[str] = None
    "Apply into this environment instead of metadata.environment (one enclii.yaml for stage and prod)."


class AuditEventFilter(BaseModel):
    """Every field narrows the result; all are optional."""

    project_id: Optional[str] = Field(alias="projectId", default=None)
    actor_id: Optional[str] = Field(alias="actorId", default=None)
    action: Optional[str] = None
    "Exact (service.apply), or a prefix ending in '.' (service.)."
    entity_id: Optional[str] = Field(alias="entityId", default=None)
    outcome: Optional[AuditOutcome] = None
    since: Optional[datetime] = None
    until: Optional[datetime] = None


class CanaryStepInput(BaseModel):
    """One canary step; set exactly one field."""

    set_weight: Optional[int] = Field(alias="setWeight", default=None)
    "Percent, 1..100."
    pause_seconds: Optional[int] = Field(alias="pauseSeconds", default=None)
    "Hold this long."
    pause_until_promoted: Optional[bool] = Field(
        alias="pauseUntilPromoted", default=None
    )
    "true: hold until promoteDeployment."
    analysis: Optional[bool] = None
    "true: hold until an analysis check passes."


class ChangeRoleInput(BaseModel):
    id: str
    "The membership."
    role: Role


class CreateEnvironmentInput(BaseModel):
    project_id: str = Field(alias="projectId")
    name: str
    "dev, stage, prod or preview-<name>."
    region: Optional[str] = None
    "Defaults to 'local'."
    limits: Optional["EnvironmentLimitsInput"] = None


class CreateProjectInput(BaseModel):
    name: str
    slug: Optional[str] = None
    "DNS label; derived from the name when omitted."


class CreateReleaseInput(BaseModel):
    """Give a local folder (embedded default only) or upload a tarball (.tar.gz) as a GraphQL multipart request."""

    service_id: str = Field(alias="serviceId")
    source_path: Optional[str] = Field(alias="sourcePath", default=None)
    "Absolute path of the folder holding the source."
    source: Optional[Upload] = None
    "A source tarball."
    git_sha: Optional[str] = Field(alias="gitSha", default=None)
    "Recorded in the provenance; detected from a git folder."


class CreateTokenInput(BaseModel):
    name: str
    scopes: list[str]
    "deploy:write, routes:write, logs:read, secrets:read, secrets:write, projects:write, environments:write, metrics:read, cost:read, budgets:write, roles:write, audit:read, or * for everything your role allows."
    project_id: Optional[str] = Field(alias="projectId", default=None)
    "Limit the token to one project."
    expires_in: Optional[str] = Field(alias="expiresIn", default=None)
    "30d, 12h, 2w… (default 90d, at most 366d)."


class DeleteServiceInput(BaseModel):
    id: str


class DeployInput(BaseModel):
    """Deploy a release of a service (it may still be building)."""

    service_id: str = Field(alias="serviceId")
    release_id: str = Field(alias="releaseId")
    strategy: Optional[DeploymentStrategy] = None
    "ROLLING, BLUE_GREEN or CANARY; default: the release's spec.deploy.strategy."
    steps: Optional[list["CanaryStepInput"]] = None
    "For CANARY: the steps to follow instead of spec.deploy.canary.steps."
    fix: bool = False
    "A fix: a CANARY deploy marked so goes out even while the service's error budget is frozen."


class EnvironmentLimitsInput(BaseModel):
    """Caps for an environment; omitted fields stay as they are."""

    cpu: Optional[str] = None
    "Cores (8) or millicores."
    memory: Optional[str] = None
    "e.g. 16Gi."
    egress_gib: Optional[int] = Field(alias="egressGib", default=None)
    budget_monthly_usd: Optional[Any] = Field(alias="budgetMonthlyUsd", default=None)


class InviteMemberInput(BaseModel):
    email: str
    role: Role
    project_id: Optional[str] = Field(alias="projectId", default=None)
    "A role on one project; omit for the whole account."


class PauseDeploymentInput(BaseModel):
    """Hold a canary at its weight until promoted."""

    deployment_id: str = Field(alias="deploymentId")


class PromoteDeploymentInput(BaseModel):
    """Promote a canary past its current step, or all the way."""

    deployment_id: str = Field(alias="deploymentId")
    full: bool = False
    "Send it all traffic now, skipping the remaining steps."


class RemoveMemberInput(BaseModel):
    id: str
    "The membership."


class RemoveRouteInput(BaseModel):
    id: str


class RevokeTokenInput(BaseModel):
    id: str


class RollbackInput(BaseModel):
    """Move a service back to an earlier release."""

    service_id: str = Field(alias="serviceId")
    to_release_id: Optional[str] = Field(alias="toReleaseId", default=None)
    "Default: the release the current deployment replaced."


class ScaleServiceInput(BaseModel):
    service_id: str = Field(alias="serviceId")
    min: Optional[int] = None
    "replicas.min (0..100)."
    max: Optional[int] = None
    "replicas.max (1..100)."


class UpdateEnvironmentInput(BaseModel):
    id: str
    region: Optional[str] = None
    limits: Optional["EnvironmentLimitsInput"] = None


class UpdateProjectInput(BaseModel):
    id: str
    name: Optional[str] = None


CreateEnvironmentInput.model_rebuild()
DeployInput.model_rebuild()
UpdateEnvironmentInput.model_rebuild()
