from datetime import datetime
from typing import Optional

from pydantic import Field

from .base_model import BaseModel
from .enums import RouteSource


class Routes(BaseModel):
    service: Optional["RoutesService"]


class RoutesService(BaseModel):
    id: str
    routes: "RoutesServiceRoutes"


class RoutesServiceRoutes(BaseModel):
    nodes: list["RoutesServiceRoutesNodes"]


class RoutesServiceRoutesNodes(BaseModel):
    id: str
    host: str
    path: str
    source: RouteSource
    created_at: datetime = Field(alias="createdAt")


Routes.model_rebuild()
RoutesService.model_rebuild()
RoutesServiceRoutes.model_rebuild()
