from pydantic import Field

from .base_model import BaseModel
from .fragments import CanarySampleView


class FollowCanary(BaseModel):
    canary_metrics: "FollowCanaryCanaryMetrics" = Field(alias="canaryMetrics")


FollowCanaryCanaryMetrics = CanarySampleView
FollowCanary.model_rebuild()
