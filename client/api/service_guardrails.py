from datetime import datetime
from typing import Optional

from pydantic import Field

from .base_model import BaseModel
from .enums import AlertStatus


class ServiceGuardrails(BaseModel):
    service: Optional["ServiceGuardrailsService"]


class ServiceGuardrailsService(BaseModel):
    id: str
    name: str
    slo: Optional["ServiceGuardrailsServiceSlo"]
    alert_deliveries: list["ServiceGuardrailsServiceAlertDeliveries"] = Field(
        alias="alertDeliveries"
    )


class ServiceGuardrailsServiceSlo(BaseModel):
    computed_at: datetime = Field(alias="computedAt")
    window_days: int = Field(alias="windowDays")
    requests: int
    budget_spent: float = Field(alias="budgetSpent")
    burn_rate: float = Field(alias="burnRate")
    burning: bool
    frozen: bool
    frozen_at: Optional[datetime] = Field(alias="frozenAt")
    reason: Optional[str]
    objectives: list["ServiceGuardrailsServiceSloObjectives"]


class ServiceGuardrailsServiceSloObjectives(BaseModel):
    name: str
    objective_percent: float = Field(alias="objectivePercent")
    threshold_ms: Optional[float] = Field(alias="thresholdMs")
    bad: int
    allowed: float
    budget_spent: float = Field(alias="budgetSpent")
    burn_rate: Optional[float] = Field(alias="burnRate")


class ServiceGuardrailsServiceAlertDeliveries(BaseModel):
    id: str
    policy: str
    event: str
    destination: str
    text: str
    status: AlertStatus
    attempts: int
    last_error: Optional[str] = Field(alias="lastError")
    created_at: datetime = Field(alias="createdAt")
    delivered_at: Optional[datetime] = Field(alias="deliveredAt")


ServiceGuardrails.model_rebuild()
ServiceGuardrailsService.model_rebuild()
ServiceGuardrailsServiceSlo.model_rebuild()
