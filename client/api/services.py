from typing import Optional

from pydantic import Field

from .base_model import BaseModel
from .enums import RuntimeStatus, ServiceType


class Services(BaseModel):
    project: Optional["ServicesProject"]


class ServicesProject(BaseModel):
    environment: Optional["ServicesProjectEnvironment"]


class ServicesProjectEnvironment(BaseModel):
    services: "ServicesProjectEnvironmentServices"


class ServicesProjectEnvironmentServices(BaseModel):
    total_count: int = Field(alias="totalCount")
    page_info: "ServicesProjectEnvironmentServicesPageInfo" = Field(alias="pageInfo")
    nodes: list["ServicesProjectEnvironmentServicesNodes"]


class ServicesProjectEnvironmentServicesPageInfo(BaseModel):
    has_next_page: bool = Field(alias="hasNextPage")
    end_cursor: Optional[str] = Field(alias="endCursor")


class ServicesProjectEnvironmentServicesNodes(BaseModel):
    id: str
    name: str
    type_: ServiceType = Field(alias="type")
    runtime: Optional["ServicesProjectEnvironmentServicesNodesRuntime"]
    traffic: "ServicesProjectEnvironmentServicesNodesTraffic"


class ServicesProjectEnvironmentServicesNodesRuntime(BaseModel):
    status: RuntimeStatus
    replicas_desired: int = Field(alias="replicasDesired")
    replicas_ready: int = Field(alias="replicasReady")
    release: "ServicesProjectEnvironmentServicesNodesRuntimeRelease"


class ServicesProjectEnvironmentServicesNodesRuntimeRelease(BaseModel):
    id: str


class ServicesProjectEnvironmentServicesNodesTraffic(BaseModel):
    requests: int
    requests_per_second: float = Field(alias="requestsPerSecond")
    error_rate: float = Field(alias="errorRate")
    p_95_ms: Optional[float] = Field(alias="p95Ms")


Services.model_rebuild()
ServicesProject.model_rebuild()
ServicesProjectEnvironment.model_rebuild()
ServicesProjectEnvironmentServices.model_rebuild()
ServicesProjectEnvironmentServicesNodes.model_rebuild()
ServicesProjectEnvironmentServicesNodesRuntime.model_rebuild()
