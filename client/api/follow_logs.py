from pydantic import Field

from .base_model import BaseModel
from .fragments import LogLineView


class FollowLogs(BaseModel):
    log_batches: "FollowLogsLogBatches" = Field(alias="logBatches")


class FollowLogsLogBatches(BaseModel):
    lines: list["FollowLogsLogBatchesLines"]


FollowLogsLogBatchesLines = LogLineView
FollowLogs.model_rebuild()
FollowLogsLogBatches.model_rebuild()
