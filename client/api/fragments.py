from datetime import datetime
from typing import Any, Optional

from pydantic import Field

from .base_model import BaseModel
from .enums import (
    CanaryVerdict,
    DeploymentKind,
    DeploymentPhase,
    DeploymentStrategy,
    ReleaseStatus,
)


class CanarySampleView(BaseModel):
    sequence: Optional[int]
    at: datetime
    weight: int
    step: int
    verdict: CanaryVerdict
    reason: str
    canary: "CanarySampleViewCanary"
    stable: "CanarySampleViewStable"


class CanarySampleViewCanary(BaseModel):
    requests: int
    errors: int
    error_rate: float = Field(alias="errorRate")
    p_95_ms: Optional[float] = Field(alias="p95Ms")


class CanarySampleViewStable(BaseModel):
    requests: int
    errors: int
    error_rate: float = Field(alias="errorRate")
    p_95_ms: Optional[float] = Field(alias="p95Ms")


class CapabilitiesView(BaseModel):
    deploy: bool
    routes: bool
    observe: bool
    read_audit: bool = Field(alias="readAudit")
    write_project: bool = Field(alias="writeProject")
    write_environments: bool = Field(alias="writeEnvironments")
    manage_roles: bool = Field(alias="manageRoles")
    read_cost: bool = Field(alias="readCost")


class DeploymentView(BaseModel):
    id: str
    kind: DeploymentKind
    strategy: DeploymentStrategy
    phase: DeploymentPhase
    reason: Optional[str]
    created_at: datetime = Field(alias="createdAt")
    started_at: Optional[datetime] = Field(alias="startedAt")
    finished_at: Optional[datetime] = Field(alias="finishedAt")
    conditions: list["DeploymentViewConditions"]
    from_release: Optional["DeploymentViewFromRelease"] = Field(alias="fromRelease")
    to_release: "DeploymentViewToRelease" = Field(alias="toRelease")
    service: "DeploymentViewService"


class DeploymentViewConditions(BaseModel):
    type_: str = Field(alias="type")
    status: str
    reason: Optional[str]
    message: Optional[str]


class DeploymentViewFromRelease(BaseModel):
    id: str


class DeploymentViewToRelease(BaseModel):
    id: str
    status: ReleaseStatus


class DeploymentViewService(BaseModel):
    id: str
    name: str
    environment: "DeploymentViewServiceEnvironment"
    project: "DeploymentViewServiceProject"


class DeploymentViewServiceEnvironment(BaseModel):
    name: str


class DeploymentViewServiceProject(BaseModel):
    slug: str


class LogLineView(BaseModel):
    sequence: int
    ts: datetime
    level: str
    message: str
    source: str
    stream: str
    release_id: Optional[str] = Field(alias="releaseId")
    fields: Any


CanarySampleView.model_rebuild()
CapabilitiesView.model_rebuild()
DeploymentView.model_rebuild()
LogLineView.model_rebuild()
