from typing import Annotated, Literal, Optional, Union

from pydantic import Field

from .base_model import BaseModel
from .enums import ReleaseStatus


class ReleaseState(BaseModel):
    node: Optional[
        Annotated[
            Union["ReleaseStateNodeNode", "ReleaseStateNodeRelease"],
            Field(discriminator="typename__"),
        ]
    ]


class ReleaseStateNodeNode(BaseModel):
    typename__: Literal[
        "Account",
        "ApiToken",
        "AuditEvent",
        "CostSample",
        "Deployment",
        "Environment",
        "Job",
        "JobRun",
        "Membership",
        "Node",
        "Project",
        "Route",
        "Runtime",
        "Secret",
        "SecretVersion",
        "Service",
        "ServiceSpecVersion",
        "User",
        "Volume",
    ] = Field(alias="__typename")


class ReleaseStateNodeRelease(BaseModel):
    typename__: Literal["Release"] = Field(alias="__typename")
    id: str
    status: ReleaseStatus
    status_reason: Optional[str] = Field(alias="statusReason")


ReleaseState.model_rebuild()
