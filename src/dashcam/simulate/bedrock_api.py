"""The Bedrock runtime API (REST-JSON), as boto3's ``bedrock-runtime`` client calls it.

Routes (from botocore's service model, bedrock-runtime 2023-09-30)::

    POST /model/{modelId}/converse                       Converse
    POST /model/{modelId}/converse-stream                ConverseStream      (event stream)
    POST /model/{modelId}/invoke                         InvokeModel
    POST /model/{modelId}/invoke-with-response-stream    InvokeModelWithResponseStream (event stream)

The model id arrives URL-encoded (``:`` and, in ARNs, ``/``); the server decodes the path, so the
id may contain slashes. Errors are what Bedrock sends: the HTTP status of the error shape, an
``x-amzn-ErrorType`` header naming it (botocore takes the ClientError code from there) and a JSON
``{"message": ...}`` body. Every response carries ``x-amzn-RequestId``. Any signature is accepted,
but an ``Authorization`` header must be present, as AWS requires.
"""

from __future__ import annotations

import base64
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from dashcam.simulate.engine import FAULTS, STREAM_FAULT, STREAM_FAULT_MESSAGE, Simulator
from dashcam.simulate.eventstream import event_message, exception_message
from dashcam.simulate.models import ModelApiError, validation
from dashcam.simulate.providers import (EmbeddingRequest, StreamEvent, converse_body,
                                        converse_stream_events, invoke_body, invoke_stream_chunks, padding,
                                        parse_converse, parse_invoke)

__all__ = ["bedrock_routes", "bedrock_error_response"]

_JSON = "application/json"
_EVENT_STREAM = "application/vnd.amazon.eventstream"
_ERROR_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


def bedrock_error_response(error: ModelApiError, request_id: str) -> Response:
    """An error as Bedrock answers it: status, ``x-amzn-ErrorType``, ``{"message": ...}``."""
    return Response(orjson.dumps({"message": error.message}), status_code=error.status, media_type=_JSON,
                    headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": error.code + _ERROR_NAMESPACE})


def _require_auth(request: Request) -> None:
    if not request.headers.get("authorization"):
        raise ModelApiError("MissingAuthenticationTokenException", 403, "Missing Authentication Token")


def _timeout_error() -> ModelApiError:
    code = "ModelTimeoutException"
    return ModelApiError(code, FAULTS[code][0], FAULTS[code][1])


def _encode_converse_event(event: StreamEvent) -> bytes:
    return event_message(event.event_type, orjson.dumps(event.payload))


def _encode_chunk(event: StreamEvent) -> bytes:
    data = base64.b64encode(orjson.dumps(event.payload)).decode()
    return event_message("chunk", orjson.dumps({"bytes": data, "p": padding(len(data))}))


def bedrock_routes(simulator: Simulator) -> list[Route]:
    """The four Bedrock runtime routes, bound to ``simulator``."""

    async def handle(request: Request, operation: str) -> Response:
        request_id = simulator.request_id()
        spec = None
        try:
            _require_auth(request)
            spec = simulator.catalog.resolve_bedrock(request.path_params["model_id"])
            raw = await request.body()
            if operation in ("Converse", "ConverseStream"):
                try:
                    body = orjson.loads(raw or b"{}")
                except orjson.JSONDecodeError:
                    raise validation("The request body is not valid JSON.") from None
                prompt = parse_converse(spec, body)
            else:
                prompt = parse_invoke(spec, raw)
                if operation == "InvokeModelWithResponseStream" and isinstance(prompt, EmbeddingRequest):
                    raise validation("The model is unsupported for streaming.")
        except ModelApiError as exc:
            return bedrock_error_response(simulator.reject(spec, operation, exc), request_id)
        try:
            if isinstance(prompt, EmbeddingRequest):
                call = simulator.begin(spec, operation, None, input_tokens=prompt.input_tokens,
                                       content=prompt.text.encode(), request_id=request_id)
            else:
                call = simulator.begin(spec, operation, prompt, request_id=request_id)
        except ModelApiError as exc:
            return bedrock_error_response(exc, request_id)
        if operation in ("ConverseStream", "InvokeModelWithResponseStream"):
            if call.latency.first_token_ms > spec.timeout_ms:
                await call.wait(spec.timeout_ms)
                call.finish(error="ModelTimeoutException")
                return bedrock_error_response(_timeout_error(), request_id)
            if operation == "ConverseStream":
                events, encode, headers = converse_stream_events(call), _encode_converse_event, {}
            else:
                events, encode = invoke_stream_chunks(call), _encode_chunk
                headers = {"X-Amzn-Bedrock-Content-Type": _JSON}
            timed = [(event.at_ms, encode(event)) for event in events]
            error = None
            if call.stream_fault:  # half the events, then Bedrock's in-stream error event
                timed = timed[: len(timed) // 2]
                fault = orjson.dumps({"message": STREAM_FAULT_MESSAGE, "originalStatusCode": 500,
                                      "originalMessage": "Internal server error"})
                timed.append((timed[-1][0] if timed else 0.0, exception_message("modelStreamErrorException", fault)))
                error = STREAM_FAULT
            return StreamingResponse(call.paced(timed, error), media_type=_EVENT_STREAM,
                                     headers={"x-amzn-RequestId": request_id, **headers})
        try:
            await call.wait_until_done()
        except ModelApiError as exc:
            call.finish(error=exc.code)
            return bedrock_error_response(exc, request_id)
        except BaseException:
            call.finish(error="ClientDisconnected")
            raise
        call.finish()
        if operation == "Converse":
            return Response(orjson.dumps(converse_body(call)), media_type=_JSON,
                            headers={"x-amzn-RequestId": request_id})
        answer = invoke_body(call, prompt, simulator.seed)
        output_tokens = call.completion.output_tokens if call.completion else 0
        return Response(orjson.dumps(answer), media_type=_JSON, headers={
            "x-amzn-RequestId": request_id,
            "X-Amzn-Bedrock-Input-Token-Count": str(call.input_tokens),
            "X-Amzn-Bedrock-Output-Token-Count": str(output_tokens),
            "X-Amzn-Bedrock-Invocation-Latency": str(round(call.latency.total_ms))})

    def endpoint(operation: str):
        async def run(request: Request) -> Response:
            return await handle(request, operation)
        run.__name__ = operation
        return run

    return [
        Route("/model/{model_id:path}/converse", endpoint("Converse"), methods=["POST"]),
        Route("/model/{model_id:path}/converse-stream", endpoint("ConverseStream"), methods=["POST"]),
        Route("/model/{model_id:path}/invoke", endpoint("InvokeModel"), methods=["POST"]),
        Route("/model/{model_id:path}/invoke-with-response-stream", endpoint("InvokeModelWithResponseStream"),
              methods=["POST"]),
    ]

