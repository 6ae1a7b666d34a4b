from typing import Literal, Union

from pydantic import Field

from .base_model import BaseModel
from .fragments import DeploymentView


class Rollback(BaseModel):
    rollback: Union[
        "RollbackRollbackRollbackSuccess",
        "RollbackRollbackValidationError",
        "RollbackRollbackNotFoundError",
        "RollbackRollbackConflictError",
    ] = Field(discriminator="typename__")


class RollbackRollbackRollbackSuccess(BaseModel):
    typename__: Literal["RollbackSuccess"] = Field(alias="__typename")
    deployment: "RollbackRollbackRollbackSuccessDeployment"


RollbackRollbackRollbackSuccessDeployment = DeploymentView


class RollbackRollbackValidationError(BaseModel):
    typename__: Literal["ValidationError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class RollbackRollbackNotFoundError(BaseModel):
    typename__: Literal["NotFoundError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class RollbackRollbackConflictError(BaseModel):
    typename__: Literal["ConflictError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


Rollback.model_rebuild()
RollbackRollbackRollbackSuccess.model_rebuild()
