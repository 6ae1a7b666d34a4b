from typing import Literal, Union

from pydantic import Field

from .base_model import BaseModel
from .fragments import DeploymentView


class AbortDeployment(BaseModel):
    abort_deployment: Union[
        "AbortDeploymentAbortDeploymentDeploymentOverrideSuccess",
        "AbortDeploymentAbortDeploymentValidationError",
        "AbortDeploymentAbortDeploymentNotFoundError",
        "AbortDeploymentAbortDeploymentConflictError",
    ] = Field(alias="abortDeployment", discriminator="typename__")


class AbortDeploymentAbortDeploymentDeploymentOverrideSuccess(BaseModel):
    typename__: Literal["DeploymentOverrideSuccess"] = Field(alias="__typename")
    deployment: "AbortDeploymentAbortDeploymentDeploymentOverrideSuccessDeployment"


AbortDeploymentAbortDeploymentDeploymentOverrideSuccessDeployment = DeploymentView


class AbortDeploymentAbortDeploymentValidationError(BaseModel):
    typename__: Literal["ValidationError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class AbortDeploymentAbortDeploymentNotFoundError(BaseModel):
    typename__: Literal["NotFoundError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class AbortDeploymentAbortDeploymentConflictError(BaseModel):
    typename__: Literal["ConflictError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


AbortDeployment.model_rebuild()
AbortDeploymentAbortDeploymentDeploymentOverrideSuccess.model_rebuild()
