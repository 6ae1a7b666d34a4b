from typing import Literal, Union

from pydantic import Field

from .base_model import BaseModel
from .enums import ReleaseStatus


class CreateRelease(BaseModel):
    create_release: Union[
        "CreateReleaseCreateReleaseCreateReleaseSuccess",
        "CreateReleaseCreateReleaseValidationError",
        "CreateReleaseCreateReleaseNotFoundError",
    ] = Field(alias="createRelease", discriminator="typename__")


class CreateReleaseCreateReleaseCreateReleaseSuccess(BaseModel):
    typename__: Literal["CreateReleaseSuccess"] = Field(alias="__typename")
    release: "CreateReleaseCreateReleaseCreateReleaseSuccessRelease"


class CreateReleaseCreateReleaseCreateReleaseSuccessRelease(BaseModel):
    id: str
    status: ReleaseStatus


class CreateReleaseCreateReleaseValidationError(BaseModel):
    typename__: Literal["ValidationError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class CreateReleaseCreateReleaseNotFoundError(BaseModel):
    typename__: Literal["NotFoundError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


CreateRelease.model_rebuild()
CreateReleaseCreateReleaseCreateReleaseSuccess.model_rebuild()
