from .base_model import BaseModel
from .fragments import LogLineView


class FollowLogs(BaseModel):
    logs: "FollowLogsLogs"


FollowLogsLogs = LogLineView
FollowLogs.model_rebuild()
