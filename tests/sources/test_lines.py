"""Framing JSON Lines into Arrow: the vectorized framer agrees with a plain split, line for line."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashcam.errors import InputError
from dashcam.records import stable_event_id
from dashcam.sources import lines as lines_module
from dashcam.sources.lines import frame_lines

# Both sides of 12 bytes: Arrow keeps shorter values inside the view, longer ones in the buffer.
_LINE = st.binary(max_size=60).map(lambda b: b.replace(b"\n", b""))


def naive(data: bytes) -> list[bytes]:
    return data.split(b"\n")[:-1]


def ids_one_by_one(group: str, lines: list[bytes]) -> list[int]:
    return [stable_event_id(group, line.rstrip(b"\r")) for line in lines]


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINE, max_size=30), st.data())
def test_framing_matches_a_plain_split(lines, data):
    raw = b"".join(line + b"\n" for line in lines)
    framed = frame_lines(raw)
    framed.array.validate(full=True)
    assert len(framed) == len(lines)
    assert framed.array.to_pylist() == naive(raw)
    assert framed.joined() == raw
    assert framed.event_ids("grp") == ids_one_by_one("grp", lines)
    start = data.draw(st.integers(0, len(lines)))
    stop = data.draw(st.integers(start, len(lines) + 3))
    part = framed.slice(start, stop)
    assert part.array.to_pylist() == lines[start:stop]
    assert part.joined() == b"".join(line + b"\n" for line in lines[start:stop])
    assert part.event_ids("grp") == ids_one_by_one("grp", lines[start:stop])


def test_a_crlf_line_keeps_its_cr_but_its_id_does_not_count_it():
    framed = frame_lines(b'{"a":1}\r\n\r\n\n{"b":2}\n')
    assert framed.array.to_pylist() == [b'{"a":1}\r', b"\r", b"", b'{"b":2}']
    assert framed.event_ids("g") == [stable_event_id("g", b'{"a":1}'), stable_event_id("g", b""),
                                     stable_event_id("g", b""), stable_event_id("g", b'{"b":2}')]


def test_no_input_frames_no_lines():
    framed = frame_lines(b"")
    assert len(framed) == 0 and framed.event_ids("g") == [] and framed.joined() == b""


@settings(max_examples=100, deadline=None)
@given(st.lists(_LINE, max_size=30))
def test_input_past_one_buffer_is_addressed_from_overlapping_buffers(lines):
    # With a 64-byte span, most inputs here need several buffers (1 GiB each in real use).
    raw = b"".join(line + b"\n" for line in lines)
    with small_span():
        framed = frame_lines(raw)
    framed.array.validate(full=True)
    assert framed.array.to_pylist() == lines
    assert framed.array.cast("string_view", safe=False).cast("large_binary").to_pylist() == lines


def test_a_line_as_long_as_the_span_is_refused_with_its_size():
    with small_span(), pytest.raises(InputError, match="a line of 64 bytes is longer than"):
        frame_lines(b"short\n" + b"x" * 64 + b"\n")
    with small_span():
        assert frame_lines(b"short\n" + b"x" * 63 + b"\n").array.to_pylist() == [b"short", b"x" * 63]


@contextlib.contextmanager
def small_span():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lines_module, "_BUFFER_SPAN", 64)
        patch.setattr(lines_module, "_MAX_BUFFER", 127)
        yield


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINE, min_size=1, max_size=20).filter(lambda lines: lines[-1] != b""))  # else: no last line
def test_a_last_line_without_its_line_feed_is_a_line_all_the_same(lines):
    unterminated = b"\n".join(lines)
    framed = frame_lines(unterminated)
    framed.array.validate(full=True)
    assert framed.array.to_pylist() == lines
    assert framed.joined() == unterminated + b"\n"
    assert framed.event_ids("grp") == ids_one_by_one("grp", lines)
    assert framed.slice(len(lines) - 1, len(lines)).joined() == lines[-1] + b"\n"
