from typing import Optional

from pydantic import Field

from .base_model import BaseModel
from .enums import Role
from .fragments import CapabilitiesView


class ProjectAccess(BaseModel):
    project: Optional["ProjectAccessProject"]


class ProjectAccessProject(BaseModel):
    id: str
    slug: str
    viewer_role: Optional[Role] = Field(alias="viewerRole")
    viewer_can: "ProjectAccessProjectViewerCan" = Field(alias="viewerCan")


ProjectAccessProjectViewerCan = CapabilitiesView
ProjectAccess.model_rebuild()
ProjectAccessProject.model_rebuild()
