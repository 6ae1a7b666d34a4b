from pydantic import Field

from .base_model import BaseModel
from .fragments import DeploymentView


class FollowDeployment(BaseModel):
    deployment_status: "FollowDeploymentDeploymentStatus" = Field(
        alias="deploymentStatus"
    )


class FollowDeploymentDeploymentStatus(BaseModel):
    sequence: int
    deployment: "FollowDeploymentDeploymentStatusDeployment"


FollowDeploymentDeploymentStatusDeployment = DeploymentView
FollowDeployment.model_rebuild()
FollowDeploymentDeploymentStatus.model_rebuild()
