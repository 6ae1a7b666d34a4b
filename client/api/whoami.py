from typing import Optional

from pydantic import Field

from .base_model import BaseModel


class Whoami(BaseModel):
    viewer: "WhoamiViewer"


class WhoamiViewer(BaseModel):
    user: "WhoamiViewerUser"
    account: "WhoamiViewerAccount"


class WhoamiViewerUser(BaseModel):
    id: str
    subject: str
    display_name: str = Field(alias="displayName")
    email: Optional[str]


class WhoamiViewerAccount(BaseModel):
    id: str
    name: str


Whoami.model_rebuild()
WhoamiViewer.model_rebuild()
