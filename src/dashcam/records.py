"""The one record that flows through dashcam.

Every source produces Amazon Bedrock ``ModelInvocationLog`` 1.0 records (``operation``,
``modelId``, ``input.inputTokenCount``, ``output.outputTokenCount``, ``errorCode``,
``identity.arn``, ``requestMetadata``, ...), so a query written for real Bedrock logs works on
records from any source. :func:`normalize` adds the derived top-level fields that DESIGN.md lists
(``latencyMs``, ``timeToFirstTokenMs``, ``costUsd``, ``throttled``, ``provider``, ``source``,
``stopReason`` and the correlation ids) without ever overwriting a field the record already has.

:data:`HOT_FIELDS` is the table of fields the store keeps as typed columns — a cache of what the
JSON says, like CloudWatch field indexes — so common queries never parse JSON. The query compiler
maps a field path to its column through the same table.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from xxhash import xxh3_64_intdigest

from dashcam import pricing
from dashcam.errors import InputError

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

SCHEMA_TYPE = "ModelInvocationLog"
SCHEMA_VERSION = "1.0"

# Error codes that mean "slow down": Bedrock's own, and what other providers say for HTTP 429.
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "RateLimitError", "rate_limit_exceeded", "429"}
)

# requestMetadata keys that carry correlation ids, by the derived field they fill (first wins).
_CORRELATION_KEYS: dict[str, tuple[str, ...]] = {
    "traceId": ("traceId", "trace_id"),
    "spanId": ("spanId", "span_id"),
    "sessionId": ("sessionId", "session_id", "session"),
    "userId": ("userId", "user_id", "user"),
    "app": ("app", "application", "appName", "service"),
}


@dataclass(frozen=True)
class HotField:
    """A field kept as a typed store column.

    ``path`` is the field as users write it in a query; ``kind`` is one of ``string``, ``int``,
    ``float``, ``timestamp``; ``derived`` fields are computed by :func:`normalize` rather than
    read from the record's own JSON.
    """

    path: str
    column: str
    kind: str
    derived: bool = False


# System fields every event has (CloudWatch Logs' @-fields).
SYSTEM_FIELDS: tuple[HotField, ...] = (
    HotField("@timestamp", "ts", "timestamp"),
    HotField("@ingestionTime", "ingestion_time", "timestamp"),
    HotField("@logStream", "log_stream", "string"),
    HotField("@log", "log_group", "string"),
    HotField("@message", "message", "string"),
)

# Fields of the record cached as typed columns, in store column order.
RECORD_FIELDS: tuple[HotField, ...] = (
    HotField("operation", "operation", "string"),
    HotField("modelId", "model_id", "string"),
    HotField("requestId", "request_id", "string"),
    HotField("accountId", "account_id", "string"),
    HotField("region", "region", "string"),
    HotField("inferenceRegion", "inference_region", "string"),
    HotField("identity.arn", "identity_arn", "string"),
    HotField("errorCode", "error_code", "string"),
    HotField("input.inputTokenCount", "input_tokens", "int"),
    HotField("output.outputTokenCount", "output_tokens", "int"),
    HotField("input.cacheReadInputTokenCount", "cache_read_tokens", "int"),
    HotField("input.cacheWriteInputTokenCount", "cache_write_tokens", "int"),
    HotField("input.inputBodyS3Path", "input_body_s3_path", "string"),
    HotField("output.outputBodyS3Path", "output_body_s3_path", "string"),
    HotField("latencyMs", "latency_ms", "float", derived=True),
    HotField("timeToFirstTokenMs", "ttft_ms", "float", derived=True),
    HotField("costUsd", "cost_usd", "float", derived=True),
    HotField("throttled", "throttled", "int", derived=True),
    HotField("stopReason", "stop_reason", "string", derived=True),
    HotField("provider", "provider", "string", derived=True),
    HotField("source", "source", "string", derived=True),
    HotField("traceId", "trace_id", "string", derived=True),
    HotField("spanId", "span_id", "string", derived=True),
    HotField("sessionId", "session_id", "string", derived=True),
    HotField("userId", "user_id", "string", derived=True),
    HotField("app", "app", "string", derived=True),
)

HOT_FIELDS: tuple[HotField, ...] = SYSTEM_FIELDS + RECORD_FIELDS
HOT_FIELD_BY_PATH: dict[str, HotField] = {f.path: f for f in HOT_FIELDS}


LOG_GROUP_NAME = re.compile(r"[.\-_/#A-Za-z0-9]{1,512}")


def check_log_group_name(name: str) -> str:
    """``name`` if CloudWatch would accept it as a log group name (1-512 of ``.-_/#`` and
    letters and digits); otherwise an InputError that says so."""
    if not isinstance(name, str) or not LOG_GROUP_NAME.fullmatch(name):
        raise InputError(
            f"log group name {name!r} is not valid: use 1 to 512 letters, digits and . - _ / #"
        )
    return name


def normalize(record: dict[str, Any], *, source: str, provider: str = "aws.bedrock",
              at_ms: int | None = None) -> dict[str, Any]:
    """Add the derived top-level fields to ``record`` in place and return it.

    A field the record already has (not null) is kept as it is. ``source`` names where the
    record came from (``bedrock-log``, ``otlp``, ``sdk``, ``gateway``, ``api``); ``provider`` is
    used when the record does not name one. ``at_ms`` is :func:`timestamp_ms` of the record's
    ``timestamp`` when the caller has read it already (it prices the call).
    """
    if not isinstance(record, dict):
        raise InputError(f"an invocation record must be a JSON object, got {type(record).__name__}")
    output = record.get("output")
    body = output.get("outputBodyJson") if isinstance(output, dict) else None

    if record.get("latencyMs") is None:
        record["latencyMs"] = _latency_ms(body)
    if record.get("timeToFirstTokenMs") is None:
        record["timeToFirstTokenMs"] = _stream_metric(body, "firstByteLatency")
    if record.get("stopReason") is None:
        record["stopReason"] = _stop_reason(body)
    if record.get("throttled") is None:
        code = record.get("errorCode")
        status = record.get("status")
        record["throttled"] = 1 if (code in THROTTLING_CODES or str(status) == "429") else 0
    if record.get("costUsd") is None:
        record["costUsd"] = _cost(record, at_ms)
    if record.get("provider") is None:
        record["provider"] = provider
    if record.get("source") is None:
        record["source"] = source

    metadata = record.get("requestMetadata")
    for field, keys in _CORRELATION_KEYS.items():
        if record.get(field) is None:
            record[field] = _first_key(metadata, keys)
    return record


def hot_values(record: dict[str, Any]) -> tuple[Any, ...]:
    """The values of :data:`RECORD_FIELDS` for a normalized record, in column order, typed."""
    inp, out = _input_output(record)
    identity = record.get("identity")
    arn = identity.get("arn") if isinstance(identity, dict) else None
    return (
        _as_str(record.get("operation")),
        _as_str(record.get("modelId")),
        _as_str(record.get("requestId")),
        _as_str(record.get("accountId")),
        _as_str(record.get("region")),
        _as_str(record.get("inferenceRegion")),
        _as_str(arn),
        _as_str(record.get("errorCode")),
        _as_int(inp.get("inputTokenCount")),
        _as_int(out.get("outputTokenCount")),
        _as_int(inp.get("cacheReadInputTokenCount")),
        _as_int(inp.get("cacheWriteInputTokenCount")),
        _as_str(inp.get("inputBodyS3Path")),
        _as_str(out.get("outputBodyS3Path")),
        _as_float(record.get("latencyMs")),
        _as_float(record.get("timeToFirstTokenMs")),
        _as_float(record.get("costUsd")),
        _as_int(record.get("throttled")),
        _as_str(record.get("stopReason")),
        _as_str(record.get("provider")),
        _as_str(record.get("source")),
        _as_str(record.get("traceId")),
        _as_str(record.get("spanId")),
        _as_str(record.get("sessionId")),
        _as_str(record.get("userId")),
        _as_str(record.get("app")),
    )


# The UTC form most records carry (Bedrock's own logs, dashcam's sources), read without a general
# date parser: the seconds are parsed once per distinct second.
_UTC_SECOND_MS = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{3}))?Z")


def timestamp_ms(value: Any) -> int:
    """Epoch milliseconds of a record ``timestamp``: RFC 3339 text, or epoch seconds/ms as a number."""
    if isinstance(value, str):
        match = _UTC_SECOND_MS.fullmatch(value)
        if match is not None:
            second = _utc_second_ms(match[1])
            if second is not None:  # else not a real date: the general parser says why
                return second + int(match[2] or 0)
        # Four digits then "-" is a date, never a number: skip float()'s exception (most records).
        if value[4:5] != "-" or not value[:4].isdigit():
            try:
                return timestamp_ms(float(value))
            except ValueError:
                pass
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"timestamp {value!r} is not an RFC 3339 date-time") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return (parsed - _EPOCH) // timedelta(milliseconds=1)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # Numbers below 1e11 cannot be milliseconds of any date after 1973: take them as seconds.
        return int(value * 1000) if abs(value) < 1e11 else int(value)
    raise InputError(f"timestamp must be RFC 3339 text or epoch number, got {value!r}")


def stable_event_id(log_group: str, message: bytes) -> int:
    """A 64-bit id for an event, the same every time the same message arrives in the same group.

    Re-importing a file or re-sending a batch therefore finds the events already stored. It is
    XXH3-64 of the message, seeded by the log group's own XXH3-64, shifted into the signed range.
    """
    return xxh3_64_intdigest(message, _group_seed(log_group)) - 2**63


def stable_event_ids_in(log_group: str, buffer: memoryview, starts: list[int], ends: list[int]) -> list[int]:
    """:func:`stable_event_id` of the messages ``buffer[starts[i]:ends[i]]``, hashed in place."""
    seed = _group_seed(log_group)
    return [xxh3_64_intdigest(buffer[start:end], seed) - 2**63 for start, end in zip(starts, ends)]


@functools.lru_cache(maxsize=4096)
def _utc_second_ms(text: str) -> int | None:
    try:
        parsed = datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


def _input_output(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The record's ``input`` and ``output`` objects ({} for a missing or non-object one)."""
    inp, out = record.get("input"), record.get("output")
    return inp if isinstance(inp, dict) else {}, out if isinstance(out, dict) else {}


@functools.lru_cache(maxsize=1024)
def _group_seed(log_group: str) -> int:
    return xxh3_64_intdigest(log_group.encode())


def _cost(record: dict[str, Any], at_ms: int | None = None) -> float | None:
    """USD by the current price catalog (see :mod:`dashcam.pricing` for the rule)."""
    if at_ms is None:
        try:
            at_ms = timestamp_ms(record["timestamp"]) if record.get("timestamp") is not None else _now_ms()
        except InputError:
            at_ms = _now_ms()
    inp, out = _input_output(record)
    return pricing.current().cost(
        _as_str(record.get("modelId")), at_ms,
        input_tokens=_as_int(inp.get("inputTokenCount")), output_tokens=_as_int(out.get("outputTokenCount")),
        cache_read=_as_int(inp.get("cacheReadInputTokenCount")),
        cache_write=_as_int(inp.get("cacheWriteInputTokenCount")), error_code=_as_str(record.get("errorCode")),
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


def _latency_ms(body: Any) -> float | None:
    if isinstance(body, dict):
        metrics = body.get("metrics")
        if isinstance(metrics, dict) and metrics.get("latencyMs") is not None:
            return _as_float(metrics.get("latencyMs"))
    return _stream_metric(body, "invocationLatency")


def _stream_metric(body: Any, name: str) -> float | None:
    """A number from ``amazon-bedrock-invocationMetrics``: in the last stream chunk, or the body itself."""
    chunk = body[-1] if isinstance(body, list) and body else body
    if isinstance(chunk, dict):
        metrics = chunk.get("amazon-bedrock-invocationMetrics")
        if isinstance(metrics, dict):
            return _as_float(metrics.get(name))
    return None


def _stop_reason(body: Any) -> str | None:
    """The stop reason wherever the provider puts it (Converse, Anthropic, Llama, Titan, OpenAI).

    For a stream (a list of chunks) it is the last chunk value of the first key that any chunk
    has: Anthropic's ``delta.stop_reason``, then ``stop_reason``, ``stopReason``,
    ``completionReason``. The store's bulk import derives it by the same rule in SQL.
    """
    if isinstance(body, dict):
        for key in ("stopReason", "stop_reason", "finish_reason"):
            if body.get(key) is not None:
                return _as_str(body[key])
        for key, inner in (("results", "completionReason"), ("choices", "finish_reason")):
            items = body.get(key)
            if isinstance(items, list) and items and isinstance(items[0], dict) and items[0].get(inner):
                return _as_str(items[0][inner])
        return None
    if isinstance(body, list):
        chunks = [c for c in body if isinstance(c, dict)]
        deltas = [c["delta"] for c in chunks if isinstance(c.get("delta"), dict)]
        for source, key in ((deltas, "stop_reason"), (chunks, "stop_reason"), (chunks, "stopReason"),
                            (chunks, "completionReason")):
            values = [c[key] for c in source if c.get(key) is not None]
            if values:
                return _as_str(values[-1])
    return None


def _first_key(mapping: Any, keys: tuple[str, ...]) -> str | None:
    if isinstance(mapping, dict):
        for key in keys:
            value = mapping.get(key)
            if value is not None:
                return _as_str(value)
    return None


def _as_str(value: Any) -> str | None:
    """Text of a JSON value as the store keeps it: objects and arrays as compact JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)


def _as_float(value: Any) -> float | None:
    """A JSON value as a number: numbers and numeric text; booleans and anything else None."""
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if result != result else result


def _as_int(value: Any) -> int | None:
    """Like :func:`_as_float`, truncated toward zero; None outside the 64-bit range."""
    if isinstance(value, int) and not isinstance(value, bool):
        result: float | int = value
    else:
        number = _as_float(value)
        if number is None or number in (float("inf"), float("-inf")):
            return None
        result = int(number)
    return result if -(2**63) <= result < 2**63 else None
