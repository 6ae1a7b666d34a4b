from typing import Literal, Union

from pydantic import Field

from .base_model import BaseModel
from .fragments import DeploymentView


class Deploy(BaseModel):
    deploy: Union[
        "DeployDeployDeploySuccess",
        "DeployDeployValidationError",
        "DeployDeployNotFoundError",
        "DeployDeployConflictError",
    ] = Field(discriminator="typename__")


class DeployDeployDeploySuccess(BaseModel):
    typename__: Literal["DeploySuccess"] = Field(alias="__typename")
    deployment: "DeployDeployDeploySuccessDeployment"


DeployDeployDeploySuccessDeployment = DeploymentView


class DeployDeployValidationError(BaseModel):
    typename__: Literal["ValidationError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class DeployDeployNotFoundError(BaseModel):
    typename__: Literal["NotFoundError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class DeployDeployConflictError(BaseModel):
    typename__: Literal["ConflictError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


Deploy.model_rebuild()
DeployDeployDeploySuccess.model_rebuild()
