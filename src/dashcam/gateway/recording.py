"""Records of what went through the gateway, built and delivered off the hot path.

The gateway reuses in-process capture's machinery end to end: an attempt is a
:class:`~dashcam.capture.attempt.Attempt` (filled on the event loop with references and
``perf_counter`` readings only), capture's :class:`~dashcam.capture.shipper.Shipper` queues it
(bounded; full means dropped and counted, never waited for), and on the shipper's thread
:func:`~dashcam.capture.attempt.build_record` turns it into a ``ModelInvocationLog`` record with
capture's provider describers (:mod:`dashcam.capture.bedrock_records`,
:mod:`dashcam.capture.openai_records`). What the gateway adds, in its describe functions here, is
reading the wire: the Bedrock request body (with its ``requestMetadata``), the binary event
stream of Bedrock's streaming operations, Bedrock's error headers — and the caller's identity.

Delivery: to a dashcam server (``dashcam_url``, through ``POST /api/v1/records``, which commits
before it answers) or into the data directory (through the server that owns it, else straight into
its store), in batches — the same durable, batched path every other source takes.

One record per upstream attempt, as capture and Bedrock's own logs do: a throttled attempt the
gateway retried is a record of its own (``throttled`` 1), and all attempts of one call share
``requestMetadata.invocationId``. Gateway fields, in ``requestMetadata``: ``gatewayWaitMs`` (time
the attempt waited in the gateway before it went out: the shaping queue, or the backoff before a
retry), ``gatewayAttempts`` (attempts the call made), ``gatewayShaped`` (1 when the gateway itself
answered 429). ``latencyMs`` runs from the attempt going upstream to its last byte reaching the
caller; ``timeToFirstTokenMs`` to the first byte of a streamed answer.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson
from botocore.eventstream import EventStreamBuffer, ParserError

from dashcam.capture.attempt import Attempt, Described
from dashcam.capture.bedrock_records import DESCRIBERS
from dashcam.capture.openai_records import describe_openai
from dashcam.capture.settings import CaptureSettings
from dashcam.capture.shipper import CaptureStats, Delivery, Sender, Shipper, sender_for

log = logging.getLogger("dashcam.gateway")

SOURCE = "gateway"
LOG_STREAM = "gateway"
BEDROCK_PROVIDER = "aws.bedrock"
OPENAI_PROVIDER = "openai"
IDENTITY_PREFIX = "arn:dashcam:iam::key/"
ANONYMOUS_ARN = "arn:dashcam:iam::anonymous"
STREAMED_CHUNKS = "InvokeModelWithResponseStream"
MALFORMED_STREAM = "MalformedEventStream"
GATEWAY_METADATA_PREFIX = "gateway"


def caller_arn(key_id: str | None) -> str:
    """The ``identity.arn`` of a caller: ``arn:dashcam:iam::key/<key id>``, or the anonymous ARN
    when the gateway runs open (no keys)."""
    return IDENTITY_PREFIX + key_id if key_id else ANONYMOUS_ARN


class SentRequest(NamedTuple):
    """The request body as the caller sent it (what capture's OpenAI describer reads)."""

    content: bytes


class GatewayAttempt(Attempt):
    """An :class:`Attempt` with what only the gateway knows: who called, and the raw bytes of a
    Bedrock event stream (decoded later, on the shipper thread, unless the hot path already
    needed its usage)."""

    __slots__ = ("caller", "raw_stream")

    def __init__(self, *args: Any, caller: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.caller = caller
        self.raw_stream: list[bytes] | None = None


class DecodedStream(NamedTuple):
    """A Bedrock event stream read back: events as botocore hands them to an application, and the
    error it ended with (an in-stream exception, or bytes that are not an event stream)."""

    events: list[Any]
    error_code: str | None
    error_message: str | None


def decode_event_stream(chunks: list[bytes], operation: str) -> DecodedStream:
    """Decode ``application/vnd.amazon.eventstream`` bytes with botocore's decoder. ConverseStream
    events become ``{eventType: payload}``; InvokeModelWithResponseStream events the decoded bytes
    of each chunk. Exception messages end the stream with their code (``throttlingException`` is
    reported as ``ThrottlingException``, as the API names it)."""
    buffer = EventStreamBuffer()
    events: list[Any] = []
    try:
        for chunk in chunks:
            buffer.add_data(chunk)
            for message in buffer:
                headers = message.headers
                if headers.get(":message-type") == "event":
                    payload = orjson.loads(message.payload) if message.payload else {}
                    if operation == STREAMED_CHUNKS:
                        events.append(base64.b64decode(payload.get("bytes") or b""))
                    else:
                        events.append({headers.get(":event-type"): payload})
                    continue
                code = str(headers.get(":exception-type") or headers.get(":error-code") or "UnknownError")
                try:
                    text = orjson.loads(message.payload).get("message") if message.payload else None
                except (orjson.JSONDecodeError, AttributeError):
                    text = message.payload.decode("utf-8", "replace")
                return DecodedStream(events, code[:1].upper() + code[1:],
                                     text or headers.get(":error-message"))
    except (ParserError, orjson.JSONDecodeError, binascii.Error, AttributeError, TypeError) as exc:
        return DecodedStream(events, MALFORMED_STREAM, f"the upstream's event stream cannot be read: {exc}")
    return DecodedStream(events, None, None)


def decode_stream_now(attempt: GatewayAttempt) -> DecodedStream:
    """Decode the attempt's raw event stream (once) and keep the events for its record."""
    decoded = decode_event_stream(attempt.raw_stream or [], attempt.operation)
    attempt.raw_stream = None
    attempt.chunks = decoded.events
    if decoded.error_code and not attempt.error_code:
        attempt.error_code, attempt.error_message = decoded.error_code, decoded.error_message
    return decoded


def describe_bedrock(attempt: GatewayAttempt) -> Described:
    """A Bedrock attempt as capture's describer for its operation sees it, plus the caller."""
    metadata: Any = None
    if attempt.operation in ("Converse", "ConverseStream") and isinstance(attempt.request, (bytes, bytearray)):
        request = _json(attempt.request)
        if isinstance(request, dict):
            metadata = request.pop("requestMetadata", None)
        attempt.request = request
    if attempt.raw_stream is not None:
        decode_stream_now(attempt)
    if attempt.status is not None and attempt.status >= 300 and attempt.response is not None:
        body = attempt.response[0] if isinstance(attempt.response, tuple) else attempt.response
        error = _json(body)
        if isinstance(error, dict) and not attempt.error_message:
            attempt.error_message = error.get("message") or error.get("Message")
        attempt.response = None  # an error body is not the model's output
    facts = DESCRIBERS[attempt.operation](attempt)
    return _with_gateway_facts(facts, attempt, metadata if isinstance(metadata, dict) else None)


def describe_openai_call(attempt: GatewayAttempt) -> Described:
    """An OpenAI attempt as capture's describer sees it, plus the caller."""
    return _with_gateway_facts(describe_openai(attempt), attempt, None)


def _with_gateway_facts(facts: Described, attempt: GatewayAttempt, caller_metadata: Mapping | None) -> Described:
    facts.extra = {**(facts.extra or {}), "identity": {"arn": attempt.caller}}
    gateway = {k: v for k, v in attempt.labels.items() if k.startswith(GATEWAY_METADATA_PREFIX)}
    if caller_metadata or facts.request_metadata:
        # The caller's requestMetadata is kept, but it cannot pass for the gateway's own fields.
        facts.request_metadata = {**(facts.request_metadata or {}), **(caller_metadata or {}), **gateway}
    return facts


def _json(raw: Any) -> Any:
    try:
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        return None


class _GatewaySender:
    """A capture sender whose records say they came from the gateway (``source`` = gateway)."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner

    def send(self, records: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Delivery:
        """Mark the batch as the gateway's and deliver it (the rest as capture's Sender takes it)."""
        for record in records:
            record["source"] = SOURCE
        return self.inner.send(records, *args, **kwargs)

    def close(self) -> None:
        """Close the delivery channel."""
        self.inner.close()


def recorder_settings(*, url: str | None, key: str | None, data_dir: str, store: str | None, body: str,
                      log_group: str, queue_size: int, flush_interval: float) -> CaptureSettings:
    """Capture settings for the gateway's records (never read from capture's environment)."""
    return CaptureSettings(url=url.rstrip("/") if url else None, key=key, data_dir=data_dir, store=store, body=body,
                           log_group=log_group, log_stream=LOG_STREAM, queue_size=queue_size,
                           flush_interval=flush_interval)


class Recorder:
    """The gateway's end of capture's shipper: submit never blocks; delivery happens in batches on
    the shipper's thread."""

    def __init__(self, settings: CaptureSettings, sender: Sender | None = None) -> None:
        self.settings = settings
        self.shipper = Shipper(settings, _GatewaySender(sender or sender_for(settings)))

    def submit(self, attempts: list[GatewayAttempt]) -> None:
        """Queue a finished call's attempts (dropped and counted when the queue is full)."""
        total = str(len(attempts))
        for attempt in attempts:
            attempt.labels["gatewayAttempts"] = total
            self.shipper.submit(attempt)

    def stats(self) -> CaptureStats:
        """Records captured, sent, dropped, pending."""
        return self.shipper.stats()

    def flush(self, timeout: float = 5.0) -> bool:
        """Deliver every record submitted so far; True if that finished within ``timeout``."""
        return self.shipper.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued (within ``timeout``) and stop."""
        self.shipper.close(timeout)
