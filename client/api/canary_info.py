from typing import Optional

from pydantic import Field

from .base_model import BaseModel
from .enums import DeploymentPhase
from .fragments import CanarySampleView


class CanaryInfo(BaseModel):
    deployment: "CanaryInfoDeployment"


class CanaryInfoDeployment(BaseModel):
    id: str
    phase: DeploymentPhase
    reason: Optional[str]
    canary: Optional["CanaryInfoDeploymentCanary"]


class CanaryInfoDeploymentCanary(BaseModel):
    step: int
    weight: int
    checks: int
    paused_by: Optional[str] = Field(alias="pausedBy")
    steps: list["CanaryInfoDeploymentCanarySteps"]
    latest: Optional["CanaryInfoDeploymentCanaryLatest"]
    decision: Optional["CanaryInfoDeploymentCanaryDecision"]


class CanaryInfoDeploymentCanarySteps(BaseModel):
    set_weight: Optional[int] = Field(alias="setWeight")
    pause_seconds: Optional[int] = Field(alias="pauseSeconds")
    pause_until_promoted: bool = Field(alias="pauseUntilPromoted")
    analysis: bool


CanaryInfoDeploymentCanaryLatest = CanarySampleView


class CanaryInfoDeploymentCanaryDecision(BaseModel):
    reason: str
    automated: bool
    sample: Optional["CanaryInfoDeploymentCanaryDecisionSample"]


CanaryInfoDeploymentCanaryDecisionSample = CanarySampleView
CanaryInfo.model_rebuild()
CanaryInfoDeployment.model_rebuild()
CanaryInfoDeploymentCanary.model_rebuild()
CanaryInfoDeploymentCanaryDecision.model_rebuild()
