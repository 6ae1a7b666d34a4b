from typing import Optional

from pydantic import Field

from .base_model import BaseModel
from .enums import Role
from .fragments import CapabilitiesView


class Whoami(BaseModel):
    viewer: "WhoamiViewer"


class WhoamiViewer(BaseModel):
    user: "WhoamiViewerUser"
    account: "WhoamiViewerAccount"
    role: Optional[Role]
    can: "WhoamiViewerCan"


class WhoamiViewerUser(BaseModel):
    id: str
    subject: str
    display_name: str = Field(alias="displayName")
    email: Optional[str]


class WhoamiViewerAccount(BaseModel):
    id: str
    name: str


WhoamiViewerCan = CapabilitiesView
Whoami.model_rebuild()
WhoamiViewer.model_rebuild()
