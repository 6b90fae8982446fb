"""OTLP/HTTP receiver: ``/v1/traces`` and ``/v1/logs`` (protobuf and JSON, gzip)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["otlp"])
