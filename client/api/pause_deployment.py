from typing import Literal, Union

from pydantic import Field

from .base_model import BaseModel
from .fragments import DeploymentView


class PauseDeployment(BaseModel):
    pause_deployment: Union[
        "PauseDeploymentPauseDeploymentDeploymentOverrideSuccess",
        "PauseDeploymentPauseDeploymentValidationError",
        "PauseDeploymentPauseDeploymentNotFoundError",
        "PauseDeploymentPauseDeploymentConflictError",
    ] = Field(alias="pauseDeployment", discriminator="typename__")


class PauseDeploymentPauseDeploymentDeploymentOverrideSuccess(BaseModel):
    typename__: Literal["DeploymentOverrideSuccess"] = Field(alias="__typename")
    deployment: "PauseDeploymentPauseDeploymentDeploymentOverrideSuccessDeployment"


PauseDeploymentPauseDeploymentDeploymentOverrideSuccessDeployment = DeploymentView


class PauseDeploymentPauseDeploymentValidationError(BaseModel):
    typename__: Literal["ValidationError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class PauseDeploymentPauseDeploymentNotFoundError(BaseModel):
    typename__: Literal["NotFoundError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class PauseDeploymentPauseDeploymentConflictError(BaseModel):
    typename__: Literal["ConflictError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


PauseDeployment.model_rebuild()
PauseDeploymentPauseDeploymentDeploymentOverrideSuccess.model_rebuild()
