from typing import Any, Literal, Optional, Union

from pydantic import Field

from .base_model import BaseModel


class ApplyService(BaseModel):
    apply_service: Union[
        "ApplyServiceApplyServiceApplyServiceSuccess",
        "ApplyServiceApplyServiceValidationError",
        "ApplyServiceApplyServiceNotFoundError",
        "ApplyServiceApplyServiceConflictError",
    ] = Field(alias="applyService", discriminator="typename__")


class ApplyServiceApplyServiceApplyServiceSuccess(BaseModel):
    typename__: Literal["ApplyServiceSuccess"] = Field(alias="__typename")
    created: bool
    unchanged: bool
    service: "ApplyServiceApplyServiceApplyServiceSuccessService"
    version: "ApplyServiceApplyServiceApplyServiceSuccessVersion"
    changes: list["ApplyServiceApplyServiceApplyServiceSuccessChanges"]


class ApplyServiceApplyServiceApplyServiceSuccessService(BaseModel):
    id: str
    name: str


class ApplyServiceApplyServiceApplyServiceSuccessVersion(BaseModel):
    version: int


class ApplyServiceApplyServiceApplyServiceSuccessChanges(BaseModel):
    path: str
    kind: str
    before: Optional[Any]
    after: Optional[Any]


class ApplyServiceApplyServiceValidationError(BaseModel):
    typename__: Literal["ValidationError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class ApplyServiceApplyServiceNotFoundError(BaseModel):
    typename__: Literal["NotFoundError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class ApplyServiceApplyServiceConflictError(BaseModel):
    typename__: Literal["ConflictError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


ApplyService.model_rebuild()
ApplyServiceApplyServiceApplyServiceSuccess.model_rebuild()
