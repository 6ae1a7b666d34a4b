from typing import Optional

from pydantic import Field

from .base_model import BaseModel
from .fragments import DeploymentView


class DeliveryStats(BaseModel):
    delivery_stats: "DeliveryStatsDeliveryStats" = Field(alias="deliveryStats")


class DeliveryStatsDeliveryStats(BaseModel):
    days: list["DeliveryStatsDeliveryStatsDays"]
    deploys: int
    succeeded: int
    failed: int
    rolled_back: int = Field(alias="rolledBack")
    success_rate: Optional[float] = Field(alias="successRate")
    recent_rollbacks: list["DeliveryStatsDeliveryStatsRecentRollbacks"] = Field(
        alias="recentRollbacks"
    )


class DeliveryStatsDeliveryStatsDays(BaseModel):
    day: str
    deploys: int
    succeeded: int
    failed: int
    rolled_back: int = Field(alias="rolledBack")


DeliveryStatsDeliveryStatsRecentRollbacks = DeploymentView
DeliveryStats.model_rebuild()
DeliveryStatsDeliveryStats.model_rebuild()
