from typing import Any, Literal, Union

from pydantic import Field

from .base_model import BaseModel


class ScaleService(BaseModel):
    scale_service: Union[
        "ScaleServiceScaleServiceApplyServiceSuccess",
        "ScaleServiceScaleServiceValidationError",
        "ScaleServiceScaleServiceNotFoundError",
        "ScaleServiceScaleServiceConflictError",
    ] = Field(alias="scaleService", discriminator="typename__")


class ScaleServiceScaleServiceApplyServiceSuccess(BaseModel):
    typename__: Literal["ApplyServiceSuccess"] = Field(alias="__typename")
    unchanged: bool
    service: "ScaleServiceScaleServiceApplyServiceSuccessService"
    version: "ScaleServiceScaleServiceApplyServiceSuccessVersion"


class ScaleServiceScaleServiceApplyServiceSuccessService(BaseModel):
    id: str
    name: str


class ScaleServiceScaleServiceApplyServiceSuccessVersion(BaseModel):
    version: int
    spec: Any


class ScaleServiceScaleServiceValidationError(BaseModel):
    typename__: Literal["ValidationError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class ScaleServiceScaleServiceNotFoundError(BaseModel):
    typename__: Literal["NotFoundError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class ScaleServiceScaleServiceConflictError(BaseModel):
    typename__: Literal["ConflictError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


ScaleService.model_rebuild()
ScaleServiceScaleServiceApplyServiceSuccess.model_rebuild()
