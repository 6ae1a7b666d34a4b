from typing import Optional

from pydantic import Field

from .base_model import BaseModel
from .enums import ServiceType


class ServiceByName(BaseModel):
    service: Optional["ServiceByNameService"]


class ServiceByNameService(BaseModel):
    id: str
    name: str
    type_: ServiceType = Field(alias="type")


ServiceByName.model_rebuild()
