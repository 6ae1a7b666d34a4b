from typing import Literal, Union

from pydantic import Field

from .base_model import BaseModel


class CreateEnvironment(BaseModel):
    create_environment: Union[
        "CreateEnvironmentCreateEnvironmentCreateEnvironmentSuccess",
        "CreateEnvironmentCreateEnvironmentValidationError",
        "CreateEnvironmentCreateEnvironmentNotFoundError",
        "CreateEnvironmentCreateEnvironmentConflictError",
    ] = Field(alias="createEnvironment", discriminator="typename__")


class CreateEnvironmentCreateEnvironmentCreateEnvironmentSuccess(BaseModel):
    typename__: Literal["CreateEnvironmentSuccess"] = Field(alias="__typename")
    environment: "CreateEnvironmentCreateEnvironmentCreateEnvironmentSuccessEnvironment"


class CreateEnvironmentCreateEnvironmentCreateEnvironmentSuccessEnvironment(BaseModel):
    id: str
    name: str
    is_preview: bool = Field(alias="isPreview")


class CreateEnvironmentCreateEnvironmentValidationError(BaseModel):
    typename__: Literal["ValidationError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class CreateEnvironmentCreateEnvironmentNotFoundError(BaseModel):
    typename__: Literal["NotFoundError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class CreateEnvironmentCreateEnvironmentConflictError(BaseModel):
    typename__: Literal["ConflictError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


CreateEnvironment.model_rebuild()
CreateEnvironmentCreateEnvironmentCreateEnvironmentSuccess.model_rebuild()
