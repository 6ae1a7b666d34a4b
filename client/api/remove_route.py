from typing import Literal, Union

from pydantic import Field

from .base_model import BaseModel


class RemoveRoute(BaseModel):
    remove_route: Union[
        "RemoveRouteRemoveRouteRemoveRouteSuccess",
        "RemoveRouteRemoveRouteNotFoundError",
        "RemoveRouteRemoveRouteConflictError",
    ] = Field(alias="removeRoute", discriminator="typename__")


class RemoveRouteRemoveRouteRemoveRouteSuccess(BaseModel):
    typename__: Literal["RemoveRouteSuccess"] = Field(alias="__typename")
    removed_route_id: str = Field(alias="removedRouteId")


class RemoveRouteRemoveRouteNotFoundError(BaseModel):
    typename__: Literal["NotFoundError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class RemoveRouteRemoveRouteConflictError(BaseModel):
    typename__: Literal["ConflictError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


RemoveRoute.model_rebuild()
