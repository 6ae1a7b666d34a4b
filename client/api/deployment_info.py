from .base_model import BaseModel
from .fragments import DeploymentView


class DeploymentInfo(BaseModel):
    deployment: "DeploymentInfoDeployment"


DeploymentInfoDeployment = DeploymentView
DeploymentInfo.model_rebuild()
