"""Exit codes, as the product spec fixes them (section 7.1)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    VALIDATION = 10
    BUILD_FAILED = 20
    DEPLOY_FAILED = 30
    TIMEOUT = 40
    AUTH = 50
