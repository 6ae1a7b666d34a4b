from datetime import datetime
from typing import Optional

from pydantic import Field

from .base_model import BaseModel
from .enums import ReleaseStatus


class Releases(BaseModel):
    service: Optional["ReleasesService"]


class ReleasesService(BaseModel):
    id: str
    runtime: Optional["ReleasesServiceRuntime"]
    releases: "ReleasesServiceReleases"


class ReleasesServiceRuntime(BaseModel):
    release: "ReleasesServiceRuntimeRelease"


class ReleasesServiceRuntimeRelease(BaseModel):
    id: str


class ReleasesServiceReleases(BaseModel):
    total_count: int = Field(alias="totalCount")
    nodes: list["ReleasesServiceReleasesNodes"]


class ReleasesServiceReleasesNodes(BaseModel):
    id: str
    status: ReleaseStatus
    status_reason: Optional[str] = Field(alias="statusReason")
    git_sha: Optional[str] = Field(alias="gitSha")
    digest: Optional[str]
    created_at: datetime = Field(alias="createdAt")
    created_by: str = Field(alias="createdBy")
    created_by_user: Optional["ReleasesServiceReleasesNodesCreatedByUser"] = Field(
        alias="createdByUser"
    )


class ReleasesServiceReleasesNodesCreatedByUser(BaseModel):
    display_name: str = Field(alias="displayName")


Releases.model_rebuild()
ReleasesService.model_rebuild()
ReleasesServiceRuntime.model_rebuild()
ReleasesServiceReleases.model_rebuild()
ReleasesServiceReleasesNodes.model_rebuild()
