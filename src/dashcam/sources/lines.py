"""Framing newline-delimited input into Arrow arrays, shared by the sources that read JSON Lines.

Framing runs once per byte of every imported file, so it is vectorized, and it copies nothing:
numpy finds the line feeds, and each line becomes an Arrow binary *view* (length, first bytes,
offset) into the buffer as read. No Python object is made per line except for hashing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from dashcam.errors import InputError
from dashcam.records import stable_event_ids_in

_LF = 10
_CR = 13
# A view addresses its bytes with a 32-bit offset into one of the array's data buffers. Input
# larger than that is given as several overlapping buffers over the same memory, one starting
# every _BUFFER_SPAN bytes; a line is addressed from the buffer it starts in, so it must be
# shorter than _BUFFER_SPAN.
_BUFFER_SPAN = 1 << 30
_MAX_BUFFER = (1 << 31) - 1
_INLINE = 12  # Arrow keeps values up to 12 bytes inside the view itself


@dataclass(frozen=True)
class FramedLines:
    """Lines as one Arrow binary-view array over the input's own buffer, without their line feeds
    (a CR stays)."""

    array: pa.BinaryViewArray
    _raw: np.ndarray  # the input, line feeds included
    _starts: np.ndarray  # line i is _raw[_starts[i]:_ends[i]]
    _ends: np.ndarray  # ... and its line feed is at _ends[i]

    def __len__(self) -> int:
        return len(self.array)

    def slice(self, start: int, stop: int) -> "FramedLines":
        """Lines ``start`` to ``stop`` (0-based, exclusive), sharing this buffer."""
        stop = min(stop, len(self))
        return FramedLines(self.array.slice(start, stop - start), self._raw, self._starts[start:stop],
                           self._ends[start:stop])

    def event_ids(self, log_group: str) -> list[int]:
        """:func:`~dashcam.records.stable_event_id` of every line (a trailing CR is not part of it)."""
        ends = self._ends.copy()
        nonempty = ends > self._starts
        ends[nonempty] -= self._raw[ends[nonempty] - 1] == _CR
        return stable_event_ids_in(log_group, memoryview(self._raw), self._starts.tolist(), ends.tolist())

    def joined(self) -> bytes:
        """The lines again as newline-delimited bytes (each followed by a line feed)."""
        if not len(self):
            return b""
        end = int(self._ends[-1])
        if end == len(self._raw):  # the input's last line, which had no line feed
            return self._raw[self._starts[0]:end].tobytes() + b"\n"
        return self._raw[self._starts[0]:end + 1].tobytes()  # consecutive lines: one slice


def frame_lines(data: bytes) -> FramedLines:
    """The lines of ``data`` framed for Arrow: each ends at a line feed, the last one also at the
    end of ``data`` (so no copy is needed to terminate it).

    The line feeds are left out of the views, where it costs nothing: engines strip text
    character by character, which costs far more. A CRLF line keeps its ``\\r``. A line of
    1 GiB or more is refused (InputError).
    """
    raw = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(raw == _LF)
    if len(raw) and raw[-1] != _LF:
        ends = np.append(ends, len(raw))
    count = len(ends)
    starts = np.empty(count, np.int64)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts
    if count and lengths.max() >= _BUFFER_SPAN:
        raise InputError(f"a line of {int(lengths.max()):,} bytes is longer than the 1 GiB dashcam reads")
    buffer_index, offsets = np.divmod(starts, _BUFFER_SPAN)
    # Each view is 16 bytes: int32 length, then either the value itself (up to 12 bytes, zero
    # padded) or its first 4 bytes, int32 buffer index and int32 offset.
    views = np.zeros((count, 4), np.int32)
    views[:, 0] = lengths
    held = np.flatnonzero(lengths > _INLINE)
    first = starts[held]
    views[held, 1] = (raw[first] | raw[first + 1].astype(np.int32) << 8 | raw[first + 2].astype(np.int32) << 16
                      | raw[first + 3].astype(np.int32) << 24)
    views[held, 2] = buffer_index[held]
    views[held, 3] = offsets[held]
    view_bytes = views.view(np.uint8)
    inline = np.flatnonzero(lengths <= _INLINE)
    for position in range(_INLINE):
        rows = inline[lengths[inline] > position]
        view_bytes[rows, 4 + position] = raw[starts[rows] + position]
    whole = pa.py_buffer(raw)
    buffers = [whole.slice(at, min(len(raw) - at, _MAX_BUFFER)) for at in range(0, len(raw), _BUFFER_SPAN)]
    array = pa.Array.from_buffers(pa.binary_view(), count, [None, pa.py_buffer(views), *buffers])
    return FramedLines(array, raw, starts, ends)
