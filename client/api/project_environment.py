from typing import Optional

from pydantic import Field

from .base_model import BaseModel


class ProjectEnvironment(BaseModel):
    project: Optional["ProjectEnvironmentProject"]


class ProjectEnvironmentProject(BaseModel):
    id: str
    slug: str
    environment: Optional["ProjectEnvironmentProjectEnvironment"]


class ProjectEnvironmentProjectEnvironment(BaseModel):
    id: str
    name: str
    is_preview: bool = Field(alias="isPreview")


ProjectEnvironment.model_rebuild()
ProjectEnvironmentProject.model_rebuild()
