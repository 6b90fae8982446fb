"""The AWS binary event-stream encoding (``application/vnd.amazon.eventstream``), write side.

Bedrock's streaming operations (ConverseStream, InvokeModelWithResponseStream) answer with a
sequence of these messages. botocore ships only a decoder, so the simulator encodes them here.

A message is::

    prelude:   total length (uint32 BE) | headers length (uint32 BE) | CRC32 of those 8 bytes
    headers:   repeated  name length (uint8) | name (UTF-8) | type (uint8) | value
    payload:   bytes
    trailer:   CRC32 of everything before it (uint32 BE)

Header value types, as AWS numbers them: 0 true, 1 false, 2 byte, 3 short, 4 integer, 5 long,
6 byte array, 7 string, 8 timestamp (ms since the epoch), 9 UUID. Strings and byte arrays are
prefixed with a uint16 length.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple, Union

__all__ = ["HeaderType", "TypedHeader", "HeaderValue", "encode_headers", "encode_message", "event_message",
           "exception_message"]

PRELUDE_LENGTH = 12
TRAILER_LENGTH = 4
MAX_HEADERS_LENGTH = 128 * 1024  # limits the AWS decoders enforce
MAX_PAYLOAD_LENGTH = 16 * 1024 * 1024


class HeaderType:
    """AWS's numbers for header value types."""

    TRUE = 0
    FALSE = 1
    BYTE = 2
    SHORT = 3
    INTEGER = 4
    LONG = 5
    BYTE_ARRAY = 6
    STRING = 7
    TIMESTAMP = 8
    UUID = 9


class TypedHeader(NamedTuple):
    """A header value with an explicit type, for the types a plain Python value cannot pick
    (byte, short, long for a small number, timestamp from an int)."""

    type: int
    value: object


HeaderValue = Union[str, bytes, bool, int, datetime, uuid.UUID, TypedHeader]

_INT_FORMATS = {HeaderType.BYTE: ">b", HeaderType.SHORT: ">h", HeaderType.INTEGER: ">i",
                HeaderType.LONG: ">q", HeaderType.TIMESTAMP: ">q"}


def _typed(value: HeaderValue) -> TypedHeader:
    if isinstance(value, TypedHeader):
        return value
    if isinstance(value, bool):  # before int: bool is an int subclass
        return TypedHeader(HeaderType.TRUE if value else HeaderType.FALSE, None)
    if isinstance(value, int):
        return TypedHeader(HeaderType.INTEGER if -2**31 <= value < 2**31 else HeaderType.LONG, value)
    if isinstance(value, str):
        return TypedHeader(HeaderType.STRING, value)
    if isinstance(value, (bytes, bytearray)):
        return TypedHeader(HeaderType.BYTE_ARRAY, bytes(value))
    if isinstance(value, datetime):
        return TypedHeader(HeaderType.TIMESTAMP, int(value.timestamp() * 1000))
    if isinstance(value, uuid.UUID):
        return TypedHeader(HeaderType.UUID, value)
    raise TypeError(f"event-stream header value {value!r} has no event-stream type")


def _encode_header(name: str, value: HeaderValue) -> bytes:
    raw_name = name.encode("utf-8")
    if not 0 < len(raw_name) < 256:
        raise ValueError(f"event-stream header name {name!r} must be 1 to 255 bytes")
    typed = _typed(value)
    head = struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">B", typed.type)
    if typed.type in (HeaderType.TRUE, HeaderType.FALSE):
        return head
    if typed.type in _INT_FORMATS:
        return head + struct.pack(_INT_FORMATS[typed.type], typed.value)
    if typed.type in (HeaderType.STRING, HeaderType.BYTE_ARRAY):
        value = typed.value
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)  # type: ignore[arg-type]
        if len(data) > 0xFFFF:
            raise ValueError(f"event-stream header {name!r} is longer than 65535 bytes")
        return head + struct.pack(">H", len(data)) + data
    if typed.type == HeaderType.UUID:
        value = typed.value
        value_uuid = value if isinstance(value, uuid.UUID) else uuid.UUID(bytes=value)  # type: ignore[arg-type]
        return head + value_uuid.bytes
    raise ValueError(f"unknown event-stream header type {typed.type}")


def encode_headers(headers: Mapping[str, HeaderValue]) -> bytes:
    """The headers section of a message."""
    encoded = b"".join(_encode_header(name, value) for name, value in headers.items())
    if len(encoded) > MAX_HEADERS_LENGTH:
        raise ValueError("event-stream headers exceed 128 KiB")
    return encoded


def encode_message(headers: Mapping[str, HeaderValue] | bytes, payload: bytes = b"") -> bytes:
    """One event-stream message: prelude, headers, payload and CRCs, ready to write. ``headers`` may
    be a mapping or an already encoded headers section (``encode_headers``)."""
    encoded_headers = headers if isinstance(headers, bytes) else encode_headers(headers)
    if len(payload) > MAX_PAYLOAD_LENGTH:
        raise ValueError("event-stream payload exceeds 16 MiB")
    total = PRELUDE_LENGTH + len(encoded_headers) + len(payload) + TRAILER_LENGTH
    prelude = struct.pack(">II", total, len(encoded_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + encoded_headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


@lru_cache(maxsize=256)
def _event_headers(event_type: str, content_type: str) -> bytes:
    return encode_headers({":event-type": event_type, ":content-type": content_type, ":message-type": "event"})


def event_message(event_type: str, payload: bytes, content_type: str = "application/json") -> bytes:
    """A data event as Bedrock sends it (``:message-type`` ``event``)."""
    return encode_message(_event_headers(event_type, content_type), payload)


def exception_message(exception_type: str, payload: bytes) -> bytes:
    """A modeled error inside a stream (``:message-type`` ``exception``), e.g. ``throttlingException``;
    botocore raises it as the ClientError whose code is that shape's name."""
    return encode_message({":exception-type": exception_type, ":content-type": "application/json",
                           ":message-type": "exception"}, payload)
