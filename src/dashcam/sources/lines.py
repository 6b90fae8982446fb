"""Framing newline-delimited input into Arrow arrays, shared by the sources that read JSON Lines.

Framing runs once per byte of every imported file, so it is vectorized: numpy finds the line
feeds and drops them in one pass, and no Python object is made per line except for hashing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from dashcam.records import stable_event_ids_in

_LF = 10
_CR = 13


@dataclass(frozen=True)
class FramedLines:
    """Lines as one Arrow array over a single buffer, without their line feeds (a CR stays)."""

    array: pa.LargeBinaryArray
    _text: np.ndarray  # the array's data buffer: every line, back to back
    _offsets: np.ndarray  # the array's offsets: line i is _text[_offsets[i]:_offsets[i + 1]]

    def __len__(self) -> int:
        return len(self.array)

    def slice(self, start: int, stop: int) -> "FramedLines":
        """Lines ``start`` to ``stop`` (0-based, exclusive), sharing this buffer."""
        stop = min(stop, len(self))
        return FramedLines(self.array.slice(start, stop - start), self._text, self._offsets[start:stop + 1])

    def event_ids(self, log_group: str) -> list[int]:
        """:func:`~dashcam.records.stable_event_id` of every line (a trailing CR is not part of it)."""
        starts, ends = self._offsets[:-1], self._offsets[1:].copy()
        nonempty = ends > starts
        ends[nonempty] -= self._text[ends[nonempty] - 1] == _CR
        return stable_event_ids_in(log_group, memoryview(self._text), starts.tolist(), ends.tolist())

    def joined(self) -> bytes:
        """The lines again as newline-delimited bytes (each followed by a line feed)."""
        return np.insert(self._text[self._offsets[0]:self._offsets[-1]], self._offsets[1:] - self._offsets[0],
                         _LF).tobytes()


def frame_lines(data: bytes) -> FramedLines:
    """The newline-terminated lines of ``data`` (which must end with a newline), framed for Arrow.

    The newlines are dropped here, where it costs one vectorized copy of the buffer: engines strip
    text character by character, which costs far more. A CRLF line keeps its ``\\r``.
    """
    raw = np.frombuffer(data, np.uint8)
    feeds = np.flatnonzero(raw == _LF)
    text = raw[raw != _LF]
    offsets = np.empty(len(feeds) + 1, np.int64)
    offsets[0] = 0
    # Line i ends at its line feed's position, less the i feeds dropped before it.
    offsets[1:] = feeds - np.arange(len(feeds))
    array = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(feeds), [None, pa.py_buffer(offsets), pa.py_buffer(text)]
    )
    return FramedLines(array, text, offsets)
