from datetime import datetime
from typing import Literal, Optional, Union

from pydantic import Field

from .base_model import BaseModel


class CreateToken(BaseModel):
    create_token: Union[
        "CreateTokenCreateTokenCreateTokenSuccess",
        "CreateTokenCreateTokenValidationError",
        "CreateTokenCreateTokenNotFoundError",
    ] = Field(alias="createToken", discriminator="typename__")


class CreateTokenCreateTokenCreateTokenSuccess(BaseModel):
    typename__: Literal["CreateTokenSuccess"] = Field(alias="__typename")
    secret: str
    token: "CreateTokenCreateTokenCreateTokenSuccessToken"


class CreateTokenCreateTokenCreateTokenSuccessToken(BaseModel):
    id: str
    name: str
    display_prefix: str = Field(alias="displayPrefix")
    scopes: list[str]
    expires_at: Optional[datetime] = Field(alias="expiresAt")
    project: Optional["CreateTokenCreateTokenCreateTokenSuccessTokenProject"]


class CreateTokenCreateTokenCreateTokenSuccessTokenProject(BaseModel):
    slug: str


class CreateTokenCreateTokenValidationError(BaseModel):
    typename__: Literal["ValidationError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


class CreateTokenCreateTokenNotFoundError(BaseModel):
    typename__: Literal["NotFoundError"] = Field(alias="__typename")
    message: str
    code: str
    path: list[str]


CreateToken.model_rebuild()
CreateTokenCreateTokenCreateTokenSuccess.model_rebuild()
CreateTokenCreateTokenCreateTokenSuccessToken.model_rebuild()
