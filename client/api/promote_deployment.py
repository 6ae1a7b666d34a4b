from typing import Literal, Union

from pydantic import Field

from .base_model import BaseModel
from .fragments import DeploymentView


class PromoteDeployment(BaseModel):
    promote_deployment: Union[
        "PromoteDeploymentPromoteDeploymentDeploymentOverrideSuccess",
        "PromoteDeploymentPromoteDeploymentValidationError",
        "PromoteDeploymentPromoteDeploymentNotFoundError",
        "PromoteDeploymentPromoteDeploymentConflictError",
    ] = Field(alias="promoteDeployment", discriminator="typename__")


class PromoteDeploymentPromoteDeploymentDeploymentOverrideSuccess(BaseModel):
    typename__: Literal["DeploymentOverrideSuccess"] = Field(alias="__typename")
    deployment: "PromoteDeploymentPromoteDeploymentDeploymentOverrideSuccessDeployment"


PromoteDeploymentPromoteDeploymentDeploymentOverrideSuccessDeployment = DeploymentView


class PromoteDeploymentPromoteDeploymentValidationError(BaseModel):
    typename__: Literal["ValidationError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class PromoteDeploymentPromoteDeploymentNotFoundError(BaseModel):
    typename__: Literal["NotFoundError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class PromoteDeploymentPromoteDeploymentConflictError(BaseModel):
    typename__: Literal["ConflictError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


PromoteDeployment.model_rebuild()
PromoteDeploymentPromoteDeploymentDeploymentOverrideSuccess.model_rebuild()
