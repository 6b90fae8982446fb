"""OTLP request bodies to store events: decompression, protobuf/JSON decoding, the mapping.

Everything a ``/v1/traces`` or ``/v1/logs`` request costs before its commit but the Arrow table,
free of the web framework and of Arrow so that a mapping worker process
(:mod:`dashcam.api.otlp_workers`) imports little. :mod:`dashcam.api.otlp` is the receiver that
calls it.
"""

from __future__ import annotations

import base64
import time
import zlib
from collections.abc import Callable
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from dashcam.api.bodies import MAX_BODY_BYTES
from dashcam.records import normalize
from dashcam.records import timestamp_ms as _records_timestamp_ms
from dashcam.sources.otlp import SOURCE_NAME, JoinBuffer, Record, TraceResult, map_traces, timestamp_ms
from dashcam.sources.otlp_vocabularies import json_safe
from dashcam.store.rows import EventRows

PROTOBUF = "protobuf"
JSON = "json"
ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})
# JSON nesting a request may have: deeper than any OTLP message protobuf's JSON parser accepts
# (100 messages), and shallow enough to walk by recursion.
MAX_JSON_DEPTH = 256


class OtlpError(Exception):
    """An OTLP request that gets an error status (with a ``google.rpc.Status`` body)."""

    def __init__(self, status: int, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    def __reduce__(self):  # crosses from a mapping worker process intact (status, message, retry)
        return (_otlp_error, (self.status, str(self), self.retry_after))


def _otlp_error(status: int, message: str, retry_after: int | None) -> OtlpError:
    return OtlpError(status, message, retry_after=retry_after)


def record_rows(records: list[Record]) -> EventRows:
    """Records as store events (serialized, normalized, hot values read, event ids set)."""
    rows = EventRows()
    add = event_adder(rows)
    for item in records:
        add(item)
    return rows


def event_adder(rows: EventRows) -> Callable[[Record], None]:
    """A function adding one record to ``rows`` as a store event (serialized, then normalized)."""
    add = rows.add

    def add_event(item: Record) -> None:
        group, stream, record = item
        # EventBatchBuilder.add_record's steps, with the timestamp read by the inverse of the
        # mapping's own formatter instead of a general date parser.
        try:
            message = orjson.dumps(record).decode()
        except orjson.JSONEncodeError:  # content nested past orjson's limit: the record keeps the rest
            record = json_safe(record)
            message = orjson.dumps(record).decode()
        ts = record.get("timestamp")
        if ts is None:
            ts_ms, at_ms = int(time.time() * 1000), None  # normalize prices it at its own "now"
        else:
            ts_ms = at_ms = timestamp_ms(ts) if isinstance(ts, str) else _records_timestamp_ms(ts)
        add(group, stream, ts_ms, message,
            normalize(record, source=SOURCE_NAME, provider=record.get("provider") or "unknown", at_ms=at_ms))

    return add_event


def traces_rows(raw: bytes, content_encoding: str, encoding: str, join: JoinBuffer | Any, *,
                hold: bool) -> tuple[TraceResult, EventRows]:
    """A trace export's body to (what the mapping made of it, its events).

    Everything a ``/v1/traces`` request costs before its commit but the Arrow table, run on the
    receiver's mapping thread or in a worker process.
    """
    return request_rows(decode(raw, content_encoding, encoding, ExportTraceServiceRequest), join, hold=hold)


def request_rows(request: ExportTraceServiceRequest, join: JoinBuffer | Any, *,
                 hold: bool) -> tuple[TraceResult, EventRows]:
    """:func:`traces_rows` for a request already decoded."""
    rows = EventRows()
    # Each record becomes an event as soon as it is made, and is freed then (in this thread,
    # while it is still in the cache): only its event is needed from here on.
    result = map_traces(request, join=join, hold=hold, emit=event_adder(rows))
    return result, rows


def inflate(raw: bytes, content_encoding: str) -> bytes:
    """The body with its Content-Encoding (gzip, deflate or none) undone, at most 64 MiB of it."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip"):
        wbits, name = 16 + zlib.MAX_WBITS, "gzip"
    elif encoding == "deflate":
        wbits, name = zlib.MAX_WBITS, "deflate"
    else:
        raise OtlpError(415, f"Content-Encoding {content_encoding!r} is not supported; use gzip, deflate or none")
    out = []
    size = 0
    data = raw
    while True:  # gzip allows several members back to back
        inflater = zlib.decompressobj(wbits)
        try:
            part = inflater.decompress(data, MAX_BODY_BYTES + 1 - size)
        except zlib.error as exc:
            raise OtlpError(400, f"the body is not valid {name} ({exc})") from None
        size += len(part)
        out.append(part)
        if size > MAX_BODY_BYTES or inflater.unconsumed_tail:
            raise OtlpError(413, f"the body is larger than {MAX_BODY_BYTES >> 20} MiB once decompressed")
        if not inflater.eof:
            raise OtlpError(400, f"the {name} body ends early (truncated)")
        data = inflater.unused_data
        if not data or name != "gzip":
            break
    return b"".join(out)


def decode(raw: bytes, content_encoding: str, encoding: str, message_type: type) -> Any:
    """A request body as a ``message_type`` message; anything undecodable is an :class:`OtlpError`."""
    body = inflate(raw, content_encoding)
    message = message_type()
    kind = message_type.DESCRIPTOR.name
    if encoding == PROTOBUF:
        try:
            message.ParseFromString(body)
        except DecodeError:
            raise OtlpError(400, f"the body is not a valid protobuf {kind} (corrupt or truncated)") from None
        if body and not message.ListFields():
            # Bytes that happen to parse as nothing but unknown fields are not an export.
            raise OtlpError(400, f"the body is not a protobuf {kind}: it has none of its fields")
        return message
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpError(400, f"the body is not valid JSON ({exc})") from None
    if not isinstance(decoded, dict):
        raise OtlpError(400, f"the body must be a JSON object ({kind}), not {type(decoded).__name__}")
    try:
        json_format.ParseDict(hex_ids_to_base64(decoded), message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OtlpError(400, f"the body is not a valid OTLP/JSON {kind}: {exc}") from None
    return message


def hex_ids_to_base64(node: Any, depth: int = 0) -> Any:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping expects base64."""
    if depth >= MAX_JSON_DEPTH and isinstance(node, (dict, list)):
        raise OtlpError(400, f"the body nests JSON deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in ID_KEYS and isinstance(value, str):
                try:
                    out[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise OtlpError(400, f"{key} {value[:40]!r} is not a hex string") from None
            else:
                out[key] = hex_ids_to_base64(value, depth + 1)
        return out
    if isinstance(node, list):
        return [hex_ids_to_base64(item, depth + 1) for item in node]
    return node
