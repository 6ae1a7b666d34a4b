from typing import Optional

from .base_model import BaseModel


class ProjectBySlug(BaseModel):
    project: Optional["ProjectBySlugProject"]


class ProjectBySlugProject(BaseModel):
    id: str
    slug: str
    name: str


ProjectBySlug.model_rebuild()
