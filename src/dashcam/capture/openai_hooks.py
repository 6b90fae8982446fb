"""Capture of OpenAI Python clients (sync and async) at the httpx transport.

Why the transport and not the resource methods (``chat.completions.create`` ...): the OpenAI
client retries inside ``request()`` (429s, 5xx, timeouts — ``max_retries``, default 2), so one
method call can be several HTTP attempts, and only the transport sees each of them, with its own
timing, status and ``x-request-id``; the retry number comes from the ``x-stainless-retry-count``
header the client sends. The transport also sees the exact JSON on the wire (what a Bedrock log
keeps), works the same for every endpoint and for OpenAI-compatible servers, and does not depend
on the SDK's method signatures or return types.

How: each client's ``httpx`` transports (``_transport`` and any proxy ``_mounts``) are wrapped by
:class:`CapturingTransport` / :class:`CapturingAsyncTransport`. Requests that are not
``POST .../chat/completions``, ``.../embeddings`` or ``.../responses`` pass straight through. For
the others, the response's byte stream is replaced by one that notes when the application pulls
the first chunk (TTFT, for ``text/event-stream`` answers), keeps the chunks, and finishes the
record when the body ends, fails, is closed, or is dropped. Bodies are parsed later, on the
shipper thread (:mod:`dashcam.capture.openai_records`). A failure to connect is recorded under
the exception's class name and re-raised unchanged.

Clients made after :func:`install` are hooked by wrapping ``OpenAI.__init__`` and
``AsyncOpenAI.__init__`` (subclasses such as ``AzureOpenAI`` included); existing ones by
:func:`hook_client`.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

import httpx
import wrapt

from dashcam.capture import state
from dashcam.capture.attempt import Attempt
from dashcam.capture.openai_records import describe_openai, operation_of

PROVIDER = "openai"
_perf = time.perf_counter
_now = time.time
_hooked: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _begin(runtime: state.Runtime, operation: str, request: httpx.Request) -> Attempt:
    attempt = Attempt(PROVIDER, operation, describe_openai, _now(), _perf(), runtime.labels())
    attempt.request = request
    retries = request.headers.get("x-stainless-retry-count")
    if retries is not None and retries.isdigit():
        attempt.number = int(retries) + 1
    return attempt


def _connection_failed(attempt: Attempt, runtime: state.Runtime, error: BaseException) -> None:
    attempt.error_code = type(error).__name__
    attempt.error_message = str(error)
    _finish(attempt, runtime)


def _responded(attempt: Attempt, response: httpx.Response) -> bool | None:
    """Note the status and headers. True if the body is a stream of events (TTFT applies), False
    if it is not, None if the transport had already read it all (then the attempt is complete)."""
    attempt.status = response.status_code
    attempt.headers = response.headers
    events = "text/event-stream" in response.headers.get("content-type", "")
    try:
        content = response.content  # some transports (httpx.MockTransport) answer with the body read
    except httpx.ResponseNotRead:
        attempt.chunks = []
        return events
    attempt.chunks = [content]
    if events:
        attempt.first_chunk = _perf()
    return None


def _finish(attempt: Attempt, runtime: state.Runtime) -> None:
    if attempt.done:
        return
    attempt.done = True
    attempt.ended = _perf()
    try:
        runtime.submit(attempt)
    except Exception as error:  # noqa: BLE001 - capture must never break the call
        runtime.internal_error("submit", error)


class _CapturedStream(httpx.SyncByteStream):
    """A response body that reports its attempt as the application reads it."""

    def __init__(self, inner: Any, attempt: Attempt, runtime: state.Runtime, events: bool) -> None:
        self._inner = inner
        self._attempt = attempt
        self._runtime = runtime
        self._events = events

    def __iter__(self) -> Any:
        attempt = self._attempt
        chunks = attempt.chunks
        try:
            for chunk in self._inner:
                if self._events and attempt.first_chunk is None:
                    attempt.first_chunk = _perf()
                chunks.append(chunk)
                yield chunk
        except Exception as error:
            attempt.error_code = attempt.error_code or type(error).__name__
            attempt.error_message = attempt.error_message or str(error)
            raise
        finally:
            _finish(attempt, self._runtime)

    def close(self) -> None:
        """Close the body and finish the record with what was read."""
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            _finish(self._attempt, self._runtime)

    def __del__(self) -> None:
        # A body the application never read nor closed still leaves its record.
        try:
            _finish(self._attempt, self._runtime)
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown: nothing left to report to
            pass


class _CapturedAsyncStream(httpx.AsyncByteStream):
    """The asynchronous twin of :class:`_CapturedStream`."""

    def __init__(self, inner: Any, attempt: Attempt, runtime: state.Runtime, events: bool) -> None:
        self._inner = inner
        self._attempt = attempt
        self._runtime = runtime
        self._events = events

    async def __aiter__(self) -> Any:
        attempt = self._attempt
        chunks = attempt.chunks
        try:
            async for chunk in self._inner:
                if self._events and attempt.first_chunk is None:
                    attempt.first_chunk = _perf()
                chunks.append(chunk)
                yield chunk
        except Exception as error:
            attempt.error_code = attempt.error_code or type(error).__name__
            attempt.error_message = attempt.error_message or str(error)
            raise
        finally:
            _finish(attempt, self._runtime)

    async def aclose(self) -> None:
        """Close the body and finish the record with what was read."""
        try:
            close = getattr(self._inner, "aclose", None)
            if close is not None:
                await close()
        finally:
            _finish(self._attempt, self._runtime)

    def __del__(self) -> None:
        # A body the application never read nor closed still leaves its record.
        try:
            _finish(self._attempt, self._runtime)
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown: nothing left to report to
            pass


class CapturingTransport(httpx.BaseTransport):
    """Wraps a client's transport; records model calls, passes everything else through."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send through the wrapped transport, recording the attempt if it is a model call."""
        runtime = state.ACTIVE
        operation = operation_of(request.method, request.url.path) if runtime is not None else None
        if operation is None:
            return self.inner.handle_request(request)
        try:
            attempt = _begin(runtime, operation, request)
        except Exception as error:  # noqa: BLE001
            runtime.internal_error("openai request", error)
            return self.inner.handle_request(request)
        try:
            response = self.inner.handle_request(request)
        except Exception as error:
            _connection_failed(attempt, runtime, error)
            raise
        try:
            events = _responded(attempt, response)
            if events is None:
                _finish(attempt, runtime)
            else:
                response.stream = _CapturedStream(response.stream, attempt, runtime, events)
        except Exception as error:  # noqa: BLE001
            runtime.internal_error("openai response", error)
        return response

    def close(self) -> None:
        """Close the wrapped transport."""
        self.inner.close()


class CapturingAsyncTransport(httpx.AsyncBaseTransport):
    """The asynchronous twin of :class:`CapturingTransport`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send through the wrapped transport, recording the attempt if it is a model call."""
        runtime = state.ACTIVE
        operation = operation_of(request.method, request.url.path) if runtime is not None else None
        if operation is None:
            return await self.inner.handle_async_request(request)
        try:
            attempt = _begin(runtime, operation, request)
        except Exception as error:  # noqa: BLE001
            runtime.internal_error("openai request", error)
            return await self.inner.handle_async_request(request)
        try:
            response = await self.inner.handle_async_request(request)
        except Exception as error:
            _connection_failed(attempt, runtime, error)
            raise
        try:
            events = _responded(attempt, response)
            if events is None:
                _finish(attempt, runtime)
            else:
                response.stream = _CapturedAsyncStream(response.stream, attempt, runtime, events)
        except Exception as error:  # noqa: BLE001
            runtime.internal_error("openai response", error)
        return response

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.inner.aclose()


# ---------------------------------------------------------------------- installing the transports


def _wrap(transport: Any, asynchronous: bool) -> Any:
    # Decided by the client, not the transport: some transports (httpx.MockTransport) are both kinds.
    if transport is None or isinstance(transport, (CapturingTransport, CapturingAsyncTransport)):
        return transport
    if asynchronous and isinstance(transport, httpx.AsyncBaseTransport):
        return CapturingAsyncTransport(transport)
    if not asynchronous and isinstance(transport, httpx.BaseTransport):
        return CapturingTransport(transport)
    return transport


def _unwrap(transport: Any) -> Any:
    return transport.inner if isinstance(transport, (CapturingTransport, CapturingAsyncTransport)) else transport


def hook_client(client: Any) -> bool:
    """Wrap the transports of an ``OpenAI`` / ``AsyncOpenAI`` client (or of a bare
    ``httpx.Client``); False if it has none. Hooking twice is harmless."""
    http = getattr(client, "_client", client)
    if not isinstance(http, (httpx.Client, httpx.AsyncClient)) or not hasattr(http, "_transport"):
        return False
    asynchronous = isinstance(http, httpx.AsyncClient)
    http._transport = _wrap(http._transport, asynchronous)
    mounts = getattr(http, "_mounts", None)
    if isinstance(mounts, dict):
        http._mounts = {pattern: _wrap(transport, asynchronous) for pattern, transport in mounts.items()}
    _hooked.add(http)
    return True


def unhook_client(client: Any) -> None:
    """Put back the transports :func:`hook_client` wrapped."""
    http = getattr(client, "_client", client)
    if hasattr(http, "_transport"):
        http._transport = _unwrap(http._transport)
    mounts = getattr(http, "_mounts", None)
    if isinstance(mounts, dict):
        http._mounts = {pattern: _unwrap(transport) for pattern, transport in mounts.items()}
    _hooked.discard(http)


def _init_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> None:
    wrapped(*args, **kwargs)
    runtime = state.ACTIVE
    if runtime is not None:
        try:
            hook_client(instance)
        except Exception as error:  # noqa: BLE001
            runtime.internal_error("OpenAI.__init__", error)


def install(existing: bool = True) -> int:
    """Hook every OpenAI client made from now on and, with ``existing``, the ones alive now;
    returns how many existing clients were hooked."""
    import openai

    for cls in (openai.OpenAI, openai.AsyncOpenAI):
        if not _is_ours(cls.__dict__.get("__init__")):
            wrapt.wrap_function_wrapper(cls, "__init__", _init_wrapper)
    if not existing:
        return 0
    import gc

    clients = (openai.OpenAI, openai.AsyncOpenAI)
    return sum(hook_client(obj) for obj in gc.get_objects() if isinstance(obj, clients))


def uninstall() -> None:
    """Stop hooking new clients and unwrap every hooked one."""
    import sys

    openai = sys.modules.get("openai")
    if openai is not None:
        for cls in (openai.OpenAI, openai.AsyncOpenAI):
            current = cls.__dict__.get("__init__")
            if _is_ours(current):
                cls.__init__ = current.__wrapped__
    for http in list(_hooked):
        unhook_client(http)


def _is_ours(value: Any) -> bool:
    return isinstance(value, wrapt.FunctionWrapper) and getattr(value, "_self_wrapper", None) is _init_wrapper
