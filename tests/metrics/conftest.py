"""Invocation records built field by field, for tests that know exactly what each metric should see."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

GROUP = "/aws/bedrock/modelinvocations"
STREAM = "aws/bedrock/modelinvocations"
_serial = itertools.count()


def make_invocation(ts_ms: int, *, model: str = "model-a", operation: str = "Converse", error: str | None = None,
               latency: float | None = None, ttft: float | None = None, input_tokens: int | None = None,
               output_tokens: int | None = None, cache_read: int | None = None, cache_write: int | None = None,
               cost: float | None = None, caller: str = "arn:aws:iam::123456789012:user/alice",
               metadata: dict[str, str] | None = None, images: int | None = None) -> dict[str, Any]:
    """A ModelInvocationLog record with exactly the given facts (derived fields set explicitly)."""
    record: dict[str, Any] = {
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": ts_ms,
        "accountId": "123456789012", "identity": {"arn": caller}, "region": "us-east-1",
        "requestId": f"req-{next(_serial)}", "operation": operation, "modelId": model,
        "input": {"inputContentType": "application/json"},
    }
    for key, value in (("inputTokenCount", input_tokens), ("cacheReadInputTokenCount", cache_read),
                       ("cacheWriteInputTokenCount", cache_write)):
        if value is not None:
            record["input"][key] = value
    if error is None:
        record["output"] = {"outputContentType": "application/json"}
        if output_tokens is not None:
            record["output"]["outputTokenCount"] = output_tokens
        if images is not None:
            record["output"]["outputBodyJson"] = {"images": ["aW1n"] * images}
    else:
        record["errorCode"] = error
    if latency is not None:
        record["latencyMs"] = latency
    if ttft is not None:
        record["timeToFirstTokenMs"] = ttft
    if cost is not None:  # else priced from the catalog at ingest (test models are unpriced: no cost)
        record["costUsd"] = cost
    if metadata:
        record["requestMetadata"] = metadata
    return record


@pytest.fixture(scope="session")
def invocation():
    """``invocation(ts_ms, model=..., error=..., latency=..., ...)``: one record (see make_invocation)."""
    return make_invocation


@pytest.fixture(scope="session")
def write():
    """``write(store, records)``: commit invocation records to the test log group."""
    def commit(store, records: list[dict[str, Any]], group: str = GROUP) -> None:
        store.write_records(group, STREAM, records, source="api")
    return commit
