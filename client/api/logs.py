from typing import Optional

from pydantic import Field

from .base_model import BaseModel
from .fragments import LogLineView


class Logs(BaseModel):
    logs: "LogsLogs"


class LogsLogs(BaseModel):
    has_more: bool = Field(alias="hasMore")
    cursor: Optional[int]
    lines: list["LogsLogsLines"]


LogsLogsLines = LogLineView
Logs.model_rebuild()
LogsLogs.model_rebuild()
