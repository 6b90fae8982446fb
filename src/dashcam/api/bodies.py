"""Reading request bodies with a size limit, as they stream in.

A body is refused the moment it passes its limit, not after it has all been buffered; one that
declares its length is read into a single buffer of that size, rather than into a list of chunks
joined at the end (twice the memory for a moment, for every request in flight). The body read is
kept with the request (its ``state``), so authentication (SigV4 signs the body) and the endpoint
both read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dashcam.errors import TooLargeError

if TYPE_CHECKING:  # for annotations only: OTLP's mapping worker process imports this without the web framework
    from starlette.requests import Request

MAX_BODY_BYTES = 64 << 20  # the OTLP specification's recommended limit; every API uses it
_READ = "dashcam_body"


async def read_capped(request: Request, limit: int = MAX_BODY_BYTES) -> bytes | bytearray:
    """The body of ``request``; TooLargeError as soon as it (or its declared length) passes
    ``limit`` bytes."""
    body = getattr(request.state, _READ, None)
    if body is None:
        body = await _read(request, limit)
        setattr(request.state, _READ, body)
    elif len(body) > limit:
        raise TooLargeError(f"the body is larger than {limit >> 20} MiB")
    return body


async def _read(request: Request, limit: int) -> bytes | bytearray:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLargeError(f"the body is larger than {limit >> 20} MiB")
    if declared.isdigit():
        buffer = bytearray(int(declared))
        size = 0
        async for chunk in request.stream():
            end = size + len(chunk)
            if end > len(buffer):  # more than declared: the server's HTTP parser stops this first
                raise TooLargeError(f"the body is longer than its Content-Length ({declared} bytes)")
            buffer[size:end] = chunk
            size = end
        return buffer if size == len(buffer) else buffer[:size]
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError(f"the body is larger than {limit >> 20} MiB")
        chunks.append(chunk)
    return b"".join(chunks)
