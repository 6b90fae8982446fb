"""The CloudWatch Logs API (JSON 1.1, ``X-Amz-Target: Logs_20140328.*``) on ``POST /``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["cloudwatch-logs"])
