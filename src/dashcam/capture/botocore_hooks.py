"""Capture of boto3 / botocore ``bedrock-runtime`` clients through botocore's event system.

Which events, and why:

* ``before-parameter-build.bedrock-runtime.<Op>`` — once per API call, with the caller's
  parameters before serialization: the model id, ``requestMetadata``, and a snapshot of the
  request (JSON bytes, so a later change to the caller's ``messages`` list cannot leak in). The
  call's state lives in botocore's per-call ``context`` dict, which every later event carries.
* ``request-created.bedrock-runtime.<Op>`` — once per HTTP attempt, retries included: the
  attempt's start time.
* ``response-received.bedrock-runtime.<Op>`` — once per attempt, after the response is parsed
  (or the connection failed) and before the retry handler decides: one record per attempt, with
  the retry number from ``context['retries']`` and Bedrock's error code (``ThrottlingException``)
  or the exception's class name.

A successful ConverseStream / InvokeModelWithResponseStream response carries an ``EventStream``
that nobody has read yet; it is replaced, in the dict the caller gets, by a transparent proxy
that times the first event when the application pulls it (TTFT), keeps the events, and finishes
the record when the stream ends, fails (the exception is re-raised unchanged), is closed, or is
dropped. An InvokeModel body is read here (it has fully arrived) and handed to the caller as a
fresh ``StreamingBody`` over the same bytes, so the record has the output and the latency runs to
the last byte.

Handlers are registered per client (botocore copies a session's handlers into each client when
it is made), by patching ``ClientCreator.create_client`` for clients made later and by
:func:`hook_client` for existing ones. Every handler catches its own failures: capture never
raises into, retries, or changes a call.
"""

from __future__ import annotations

import io
import time
import weakref
from typing import Any

import orjson
import wrapt

from dashcam.capture import state
from dashcam.capture.attempt import Attempt, json_default
from dashcam.capture.bedrock_records import DESCRIBERS
from dashcam.capture.settings import BODY_OFF

SERVICE = "bedrock-runtime"
PROVIDER = "aws.bedrock"
OPERATIONS = tuple(DESCRIBERS)
# The response member holding the event stream, per streaming operation.
STREAM_MEMBER = {"ConverseStream": "stream", "InvokeModelWithResponseStream": "body"}
_CONTEXT_KEY = "dashcam.capture"
_HANDLER_ID = "dashcam-capture"

_hooked: "weakref.WeakSet[Any]" = weakref.WeakSet()
_perf = time.perf_counter
_now = time.time


class _Call:
    """One API call in progress: what every attempt of it shares."""

    __slots__ = ("runtime", "operation", "model_id", "request", "labels", "attempt_started", "attempt_started_at")

    def __init__(self, runtime: state.Runtime, operation: str, model_id: Any, request: Any,
                 labels: Any) -> None:
        self.runtime = runtime
        self.operation = operation
        self.model_id = model_id
        self.request = request
        self.labels = labels
        self.attempt_started = _perf()
        self.attempt_started_at = _now()


def _on_parameters(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    """before-parameter-build: remember the call's parameters (snapshotted) in its context."""
    runtime = state.ACTIVE
    if runtime is None:
        return
    try:
        operation = model.name
        labels = runtime.labels()
        metadata = params.get("requestMetadata")
        if isinstance(metadata, dict) and metadata:
            labels = {**labels, **{str(k): str(v) for k, v in metadata.items()}}
        request: Any = None
        if operation in ("Converse", "ConverseStream"):
            if runtime.body != BODY_OFF:
                request = orjson.dumps({k: v for k, v in params.items() if k not in ("modelId", "requestMetadata")},
                                       default=json_default)
        else:
            body = params.get("body") if runtime.body != BODY_OFF else None
            request = (body if isinstance(body, (bytes, str)) else None, params.get("contentType"))
        context[_CONTEXT_KEY] = _Call(runtime, operation, params.get("modelId"), request, labels)
    except Exception as error:  # noqa: BLE001 - capture must never break the call
        runtime.internal_error("before-parameter-build", error)


def _on_request_created(request: Any, **_: Any) -> None:
    """request-created (every attempt): the attempt's start."""
    try:
        call = request.context.get(_CONTEXT_KEY)
    except AttributeError:
        return
    if call is not None:
        call.attempt_started = _perf()
        call.attempt_started_at = _now()


def _on_response(context: dict[str, Any], parsed_response: Any = None, response_dict: Any = None,
                 exception: BaseException | None = None, **_: Any) -> None:
    """response-received (every attempt): finish the attempt's record, or arm the stream proxy."""
    call = context.get(_CONTEXT_KEY)
    if call is None:
        return
    runtime = call.runtime
    try:
        attempt = Attempt(PROVIDER, call.operation, DESCRIBERS[call.operation], call.attempt_started_at,
                          call.attempt_started, call.labels)
        attempt.model_id = call.model_id
        attempt.region = context.get("client_region")
        attempt.request = call.request
        retries = context.get("retries") or {}
        attempt.number = retries.get("attempt", 1)
        attempt.invocation_id = retries.get("invocation-id")
        if exception is not None or not isinstance(parsed_response, dict):
            attempt.error_code = type(exception).__name__ if exception is not None else "UnknownError"
            attempt.error_message = str(exception) if exception is not None else None
            _finish(attempt, runtime)
            return
        status = response_dict.get("status_code") if isinstance(response_dict, dict) else None
        attempt.status = status
        metadata = parsed_response.get("ResponseMetadata") or {}
        attempt.request_id = metadata.get("RequestId")
        if status is not None and status >= 300:
            error = parsed_response.get("Error") or {}
            attempt.error_code = error.get("Code") or f"HTTP{status}"
            attempt.error_message = error.get("Message")
            _finish(attempt, runtime)
        elif call.operation in STREAM_MEMBER:
            member = STREAM_MEMBER[call.operation]
            stream = parsed_response.get(member)
            if stream is None:
                _finish(attempt, runtime)
            else:
                attempt.chunks = []
                parsed_response[member] = CapturedEventStream(stream, attempt, runtime)
        elif call.operation == "InvokeModel":
            attempt.headers = metadata.get("HTTPHeaders")
            _take_body(parsed_response, attempt)
            _finish(attempt, runtime)
        else:
            attempt.response = _converse_response(parsed_response, runtime.body)
            _finish(attempt, runtime)
    except Exception as error:  # noqa: BLE001
        runtime.internal_error("response-received", error)


def _converse_response(parsed: dict[str, Any], body_mode: str) -> Any:
    if body_mode == BODY_OFF:
        usage = parsed.get("usage")
        return {"stopReason": parsed.get("stopReason"), "usage": dict(usage) if isinstance(usage, dict) else None}
    return orjson.dumps({k: v for k, v in parsed.items() if k != "ResponseMetadata"}, default=json_default)


def _take_body(parsed: dict[str, Any], attempt: Attempt) -> None:
    """Read an InvokeModel body now and give the caller a body over the same bytes; a read
    failure is recorded and handed to the caller when it reads, as it would have been."""
    from botocore.response import StreamingBody

    body = parsed.get("body")
    if body is None:
        return
    try:
        data = body.read()
    except Exception as error:  # noqa: BLE001 - the caller gets it on its own read
        attempt.error_code = type(error).__name__
        attempt.error_message = str(error)
        parsed["body"] = _FailedBody(error)
        return
    parsed["body"] = StreamingBody(io.BytesIO(data), len(data))
    attempt.response = (data, parsed.get("contentType"))


class _FailedBody:
    """A response body whose read failed while capture read it: every read raises that error."""

    def __init__(self, error: BaseException) -> None:
        self._error = error

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        """Raise the error the original read raised."""
        raise self._error

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("iter", "readline", "readlines")):
            return self.read
        if name == "close":
            return lambda: None
        raise AttributeError(name)


class CapturedEventStream(wrapt.ObjectProxy):
    """An ``EventStream`` that reports its attempt: TTFT at the first event the application pulls,
    the events themselves, and the end (exhausted, failed, closed or dropped)."""

    def __init__(self, stream: Any, attempt: Attempt, runtime: state.Runtime) -> None:
        super().__init__(stream)
        self._self_attempt = attempt
        self._self_runtime = runtime
        self._self_bytes = attempt.operation == "InvokeModelWithResponseStream"

    def __iter__(self) -> Any:
        attempt = self._self_attempt
        chunks = attempt.chunks
        as_bytes = self._self_bytes
        try:
            for event in self.__wrapped__:
                if attempt.first_chunk is None:
                    attempt.first_chunk = _perf()
                try:
                    chunks.append(event["chunk"]["bytes"] if as_bytes else event)
                except (KeyError, TypeError):
                    chunks.append(event)
                yield event
        except Exception as error:
            _stream_failed(attempt, error)
            raise
        finally:
            _finish(attempt, self._self_runtime)

    def close(self) -> None:
        """Close the stream and finish the record with what was read."""
        try:
            self.__wrapped__.close()
        finally:
            _finish(self._self_attempt, self._self_runtime)

    def __del__(self) -> None:
        # A stream the application never read nor closed still leaves its record.
        try:
            _finish(self._self_attempt, self._self_runtime)
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown: nothing left to report to
            pass


def _stream_failed(attempt: Attempt, error: BaseException) -> None:
    response = getattr(error, "response", None)
    code = (response.get("Error") or {}).get("Code") if isinstance(response, dict) else None
    # Event-stream exceptions arrive in lowerCamel (throttlingException); the log names them as the API does.
    attempt.error_code = (code[:1].upper() + code[1:]) if code else type(error).__name__
    attempt.error_message = str(error)


def _finish(attempt: Attempt, runtime: state.Runtime) -> None:
    if attempt.done:
        return
    attempt.done = True
    attempt.ended = _perf()
    try:
        runtime.submit(attempt)
    except Exception as error:  # noqa: BLE001
        runtime.internal_error("submit", error)


# ---------------------------------------------------------------------- installing the handlers


_EVENTS = (
    ("before-parameter-build", _on_parameters),
    ("request-created", _on_request_created),
    ("response-received", _on_response),
)


def hook_client(client: Any) -> bool:
    """Register the capture handlers on one botocore client; False if it is not ``bedrock-runtime``.
    Registering twice is harmless (the handlers have unique ids)."""
    try:
        if client.meta.service_model.service_name != SERVICE:
            return False
        events = client.meta.events
    except AttributeError:
        return False
    for operation in OPERATIONS:
        for event, handler in _EVENTS:
            events.register(f"{event}.{SERVICE}.{operation}", handler, unique_id=f"{_HANDLER_ID}-{event}-{operation}")
    _hooked.add(client)
    return True


def unhook_client(client: Any) -> None:
    """Remove the capture handlers from a client."""
    for operation in OPERATIONS:
        for event, handler in _EVENTS:
            client.meta.events.unregister(f"{event}.{SERVICE}.{operation}", handler,
                                          unique_id=f"{_HANDLER_ID}-{event}-{operation}")
    _hooked.discard(client)


def _create_client_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    client = wrapped(*args, **kwargs)
    if state.ACTIVE is not None:
        try:
            hook_client(client)
        except Exception as error:  # noqa: BLE001
            state.ACTIVE.internal_error("create_client", error)
    return client


def install(existing: bool = True) -> int:
    """Hook every ``bedrock-runtime`` client made from now on (patching botocore's
    ``ClientCreator.create_client``) and, with ``existing``, the ones alive now; returns how many
    existing clients were hooked."""
    import importlib

    # By module, not attribute: from a post-import hook, botocore.client is not yet an attribute of botocore.
    client_module = importlib.import_module("botocore.client")
    if not _is_ours(client_module.ClientCreator.__dict__.get("create_client")):
        wrapt.wrap_function_wrapper(client_module, "ClientCreator.create_client", _create_client_wrapper)
    if not existing:
        return 0
    import gc

    return sum(hook_client(obj) for obj in gc.get_objects() if isinstance(obj, client_module.BaseClient))


def uninstall() -> None:
    """Stop hooking new clients and remove the handlers from every hooked client."""
    import sys

    module = sys.modules.get("botocore.client")
    if module is not None:
        current = module.ClientCreator.__dict__.get("create_client")
        if _is_ours(current):
            module.ClientCreator.create_client = current.__wrapped__
    for client in list(_hooked):
        unhook_client(client)


def _is_ours(value: Any) -> bool:
    return isinstance(value, wrapt.FunctionWrapper) and getattr(value, "_self_wrapper", None) is _create_client_wrapper
