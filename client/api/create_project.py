from typing import Literal, Union

from pydantic import Field

from .base_model import BaseModel


class CreateProject(BaseModel):
    create_project: Union[
        "CreateProjectCreateProjectCreateProjectSuccess",
        "CreateProjectCreateProjectValidationError",
        "CreateProjectCreateProjectConflictError",
    ] = Field(alias="createProject", discriminator="typename__")


class CreateProjectCreateProjectCreateProjectSuccess(BaseModel):
    typename__: Literal["CreateProjectSuccess"] = Field(alias="__typename")
    project: "CreateProjectCreateProjectCreateProjectSuccessProject"


class CreateProjectCreateProjectCreateProjectSuccessProject(BaseModel):
    id: str
    slug: str


class CreateProjectCreateProjectValidationError(BaseModel):
    typename__: Literal["ValidationError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class CreateProjectCreateProjectConflictError(BaseModel):
    typename__: Literal["ConflictError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


CreateProject.model_rebuild()
CreateProjectCreateProjectCreateProjectSuccess.model_rebuild()
