"""The event-stream encoder, checked by botocore's own decoder."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from dashcam.simulate.eventstream import (HeaderType, TypedHeader, encode_message, event_message,
                                          exception_message)


def _decode(data: bytes, piece: int | None = None) -> list:
    buffer = EventStreamBuffer()
    step = piece or len(data) or 1
    messages = []
    for start in range(0, len(data), step):
        buffer.add_data(data[start:start + step])
        messages.extend(buffer)
    return messages


def test_every_header_type_round_trips_through_botocore():
    stamp = datetime(2026, 3, 2, 9, 30, 15, 250_000, tzinfo=timezone.utc)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers = {
        "yes": True, "no": False, "byte": TypedHeader(HeaderType.BYTE, -7),
        "short": TypedHeader(HeaderType.SHORT, 30_000), "int": 123_456, "long": 2**40,
        "bytes": b"\x00\x01\xff", "text": "héllo wörld", "time": stamp, "id": ident,
    }
    payload = b'{"hello": "world"}'
    [message] = _decode(encode_message(headers, payload))
    decoded = message.headers
    assert message.payload == payload
    assert decoded["yes"] is True and decoded["no"] is False
    assert decoded["byte"] == -7 and decoded["short"] == 30_000
    assert decoded["int"] == 123_456 and decoded["long"] == 2**40
    assert decoded["bytes"] == b"\x00\x01\xff"
    assert decoded["text"] == "héllo wörld"
    assert decoded["time"] == int(stamp.timestamp() * 1000)
    assert decoded["id"] == ident.bytes


@pytest.mark.parametrize("piece", [1, 7, 64])
def test_a_stream_split_anywhere_decodes_to_the_same_messages(piece):
    payloads = [b"", b"x" * 300, '{"text": "ünïcode"}'.encode()]
    data = b"".join(event_message(f"event{i}", p) for i, p in enumerate(payloads))
    messages = _decode(data, piece)
    assert [m.payload for m in messages] == payloads
    assert [m.headers[":event-type"] for m in messages] == ["event0", "event1", "event2"]
    assert all(m.headers[":message-type"] == "event" for m in messages)


def test_exception_messages_carry_the_exception_type():
    [message] = _decode(exception_message("throttlingException", b'{"message": "slow down"}'))
    assert message.headers[":message-type"] == "exception"
    assert message.headers[":exception-type"] == "throttlingException"
    assert message.to_response_dict()["status_code"] == 400  # botocore's code for modeled stream errors


def test_a_corrupted_message_fails_the_checksum():
    data = bytearray(event_message("chunk", b'{"bytes": "aGk="}'))
    data[-6] ^= 0x01  # a payload byte: the message CRC no longer matches
    with pytest.raises(ChecksumMismatch):
        _decode(bytes(data))


def test_values_without_an_event_stream_type_are_refused():
    with pytest.raises(TypeError):
        encode_message({"bad": 1.5})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        encode_message({"": "empty name"})
