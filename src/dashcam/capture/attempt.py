"""One observed model-call attempt, and the Bedrock-shaped record it becomes.

Capture splits its work in two so the application pays as little as possible:

* on the application's thread, a hook fills an :class:`Attempt` with references and timings only
  (a request snapshot, the response, stream chunks, ``perf_counter`` readings);
* on the shipper's thread, :func:`build_record` turns it into a ``ModelInvocationLog`` 1.0 record
  (``dashcam.records``), asking the provider module's ``describe`` function what the bodies say
  (tokens, stop reason, error code) and applying the body mode.

Records carry the derived fields dashcam computes at ingest where capture knows better
(``latencyMs`` and ``timeToFirstTokenMs`` measured here, ``stopReason``, ``provider``, ``source``
``sdk``); the server never overwrites a field a record already has. Cost is left to the server,
whose price catalog (with its overrides) is the one that counts.
"""

from __future__ import annotations

import base64
import datetime as _dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dashcam.capture.settings import BODY_METADATA, BODY_OFF, CaptureSettings
from dashcam.records import SCHEMA_TYPE, SCHEMA_VERSION

SOURCE = "sdk"
_ERROR_MESSAGE_CHARS = 512

# Members that hold what people wrote or what a model answered. Metadata mode drops them wherever
# they appear, so parameters, usage, stop reasons and ids remain and no text, image or vector does.
CONTENT_KEYS = frozenset({
    "messages", "system", "content", "text", "prompt", "inputText", "input", "instructions",
    "message", "outputText", "generation", "completion", "embedding", "embeddings", "arguments",
    "partial_json", "reasoningContent", "refusal", "bytes", "image", "document", "video", "audio",
    "output_text", "summary",
})


@dataclass
class Described:
    """What a provider module read from an attempt's request and response bodies."""

    model_id: str | None = None
    input_body: Any = None
    output_body: Any = None
    input_content_type: str = "application/json"
    output_content_type: str = "application/json"
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    stop_reason: str | None = None
    request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_metadata: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] | None = None  # provider-specific top-level fields (responseModelId)


class Attempt:
    """The facts of one HTTP attempt of one model call, gathered on the application's thread.

    Times are ``time.perf_counter()`` readings except ``started_at`` (epoch seconds). ``request``
    and ``response`` hold whatever the provider module's ``describe`` knows how to read: snapshots
    (bytes) where the application could still change the original, references otherwise.
    """

    __slots__ = (
        "provider", "operation", "describe", "model_id", "region", "started_at", "started",
        "first_chunk", "ended", "number", "invocation_id", "request_id", "status", "error_code",
        "error_message", "request", "response", "chunks", "headers", "labels", "done",
    )

    def __init__(self, provider: str, operation: str, describe: Callable[["Attempt"], Described],
                 started_at: float, started: float, labels: Mapping[str, str]) -> None:
        self.provider = provider
        self.operation = operation
        self.describe = describe
        self.started_at = started_at
        self.started = started
        self.labels = labels
        self.model_id: str | None = None
        self.region: str | None = None
        self.first_chunk: float | None = None
        self.ended: float | None = None
        self.number = 1
        self.invocation_id: str | None = None
        self.request_id: str | None = None
        self.status: int | None = None
        self.error_code: str | None = None
        self.error_message: str | None = None
        self.request: Any = None
        self.response: Any = None
        self.chunks: list[Any] | None = None
        self.headers: Mapping[str, str] | None = None
        self.done = False


def build_record(attempt: Attempt, settings: CaptureSettings) -> dict[str, Any]:
    """The ``ModelInvocationLog`` 1.0 record of a finished attempt (runs on the shipper thread)."""
    facts = attempt.describe(attempt)
    model_id = attempt.model_id or facts.model_id
    record: dict[str, Any] = {
        "schemaType": SCHEMA_TYPE,
        "schemaVersion": SCHEMA_VERSION,
        "timestamp": rfc3339_ms(attempt.started_at),
    }
    if attempt.provider == "aws.bedrock":  # an AWS account and IAM identity mean nothing to other providers
        account = settings.account_id or _account_of(model_id)
        if account:
            record["accountId"] = account
        if settings.identity_arn:
            record["identity"] = {"arn": settings.identity_arn}
    if attempt.region:
        record["region"] = attempt.region
    request_id = attempt.request_id or facts.request_id
    if request_id:
        record["requestId"] = request_id
    record["operation"] = attempt.operation
    record["modelId"] = model_id

    mode = settings.body
    record["input"] = _without_none({
        "inputContentType": facts.input_content_type,
        "inputBodyJson": shape_body(facts.input_body, mode),
        "inputTokenCount": facts.input_tokens,
        "cacheReadInputTokenCount": facts.cache_read,
        "cacheWriteInputTokenCount": facts.cache_write,
    })
    error_code = attempt.error_code or facts.error_code
    if facts.output_body is not None or facts.output_tokens is not None or not error_code:
        record["output"] = _without_none({
            "outputContentType": facts.output_content_type,
            "outputBodyJson": shape_body(facts.output_body, mode),
            "outputTokenCount": facts.output_tokens,
        })
    if error_code:
        record["errorCode"] = error_code
        message = attempt.error_message or facts.error_message
        if message:
            record["errorMessage"] = str(message)[:_ERROR_MESSAGE_CHARS]
    if attempt.status is not None:
        record["status"] = str(attempt.status)

    metadata: dict[str, str] = dict(attempt.labels)
    if facts.request_metadata:
        metadata.update({str(k): str(v) for k, v in facts.request_metadata.items()})
    metadata["attempt"] = str(attempt.number)
    if attempt.invocation_id:
        metadata["invocationId"] = attempt.invocation_id
    record["requestMetadata"] = metadata

    ended = attempt.ended if attempt.ended is not None else attempt.started
    record["latencyMs"] = round((ended - attempt.started) * 1000, 3)
    if attempt.first_chunk is not None:
        record["timeToFirstTokenMs"] = round((attempt.first_chunk - attempt.started) * 1000, 3)
    if facts.stop_reason is not None:
        record["stopReason"] = facts.stop_reason
    if facts.extra:
        record.update({k: v for k, v in facts.extra.items() if k not in record})
    record["provider"] = attempt.provider
    record["source"] = SOURCE
    return record


def shape_body(body: Any, mode: str) -> Any:
    """A body as the body mode keeps it: whole (``on``), without content (``metadata``), or None."""
    if body is None or mode == BODY_OFF:
        return None
    if mode == BODY_METADATA:
        return strip_content(body)
    return body


def strip_content(value: Any) -> Any:
    """``value`` without any member named in :data:`CONTENT_KEYS`, at any depth."""
    if isinstance(value, dict):
        return {k: strip_content(v) for k, v in value.items() if k not in CONTENT_KEYS}
    if isinstance(value, list):
        return [strip_content(v) for v in value]
    return value


def json_default(value: Any) -> Any:
    """How request snapshots serialize what JSON cannot hold: bytes as base64 (as the wire
    carries them), pydantic models as their JSON form, anything else as its text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_unset=True)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def rfc3339_ms(epoch_seconds: float) -> str:
    """RFC 3339 UTC text with milliseconds, e.g. ``2026-03-02T10:00:00.123Z``."""
    moment = _dt.datetime.fromtimestamp(epoch_seconds, _dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def as_int(value: Any) -> int | None:
    """A token count as an int, or None when it is missing or not a number."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def first_int(*values: Any) -> int | None:
    """The first of ``values`` that is a number, as an int."""
    for value in values:
        number = as_int(value)
        if number is not None:
            return number
    return None


def dig(value: Any, *path: str | int) -> Any:
    """``value[p0][p1]...`` or None when any step is missing or of the wrong kind."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return None
        elif not isinstance(value, dict):
            return None
        value = value[step] if isinstance(step, int) else value.get(step)
    return value


def _account_of(model_id: str | None) -> str | None:
    """The account in an inference-profile or provisioned-model ARN used as a model id."""
    if model_id and model_id.startswith("arn:"):
        parts = model_id.split(":")
        if len(parts) > 4 and parts[4].isdigit() and len(parts[4]) == 12:
            return parts[4]
    return None


def _without_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}
