from datetime import datetime
from typing import Literal, Optional, Union

from pydantic import Field

from .base_model import BaseModel
from .fragments import DeploymentView


class Deploy(BaseModel):
    deploy: Union[
        "DeployDeployDeploySuccess",
        "DeployDeployValidationError",
        "DeployDeployNotFoundError",
        "DeployDeployConflictError",
        "DeployDeployFrozenError",
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


class DeployDeployFrozenError(BaseModel):
    typename__: Literal["FrozenError"] = Field(alias="__typename")
    window_days: int = Field(alias="windowDays")
    budget_spent: float = Field(alias="budgetSpent")
    frozen_since: Optional[datetime] = Field(alias="frozenSince")
    objectives: list["DeployDeployFrozenErrorObjectives"]
    message: str
    code: str
    path: list[str]


class DeployDeployFrozenErrorObjectives(BaseModel):
    name: str
    objective_percent: float = Field(alias="objectivePercent")
    bad: int
    allowed: float
    budget_spent: float = Field(alias="budgetSpent")


Deploy.model_rebuild()
DeployDeployDeploySuccess.model_rebuild()
DeployDeployFrozenError.model_rebuild()
