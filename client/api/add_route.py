from typing import Literal, Union

from pydantic import Field

from .base_model import BaseModel
from .enums import RouteSource


class AddRoute(BaseModel):
    add_route: Union[
        "AddRouteAddRouteAddRouteSuccess",
        "AddRouteAddRouteValidationError",
        "AddRouteAddRouteNotFoundError",
        "AddRouteAddRouteConflictError",
    ] = Field(alias="addRoute", discriminator="typename__")


class AddRouteAddRouteAddRouteSuccess(BaseModel):
    typename__: Literal["AddRouteSuccess"] = Field(alias="__typename")
    route: "AddRouteAddRouteAddRouteSuccessRoute"


class AddRouteAddRouteAddRouteSuccessRoute(BaseModel):
    id: str
    host: str
    path: str
    source: RouteSource


class AddRouteAddRouteValidationError(BaseModel):
    typename__: Literal["ValidationError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class AddRouteAddRouteNotFoundError(BaseModel):
    typename__: Literal["NotFoundError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class AddRouteAddRouteConflictError(BaseModel):
    typename__: Literal["ConflictError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


AddRoute.model_rebuild()
AddRouteAddRouteAddRouteSuccess.model_rebuild()
