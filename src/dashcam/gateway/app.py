"""The gateway's ASGI app: Bedrock runtime and OpenAI-compatible APIs in, the same APIs out.

One call goes: who is calling (dashcam key, or anonymous in open mode) -> the model's limits (wait
in the queue, or a provider-shaped 429 with ``Retry-After``) -> the upstream, retried after its
throttles with jittered backoff while the call is still replayable and within the retry deadline
-> the answer, passed through as it arrives (event streams and server-sent events chunk by chunk)
-> the token estimate corrected from the usage, and the attempts handed to the recorder. The hot
path never waits for a record: it appends to capture's bounded queue and moves on.

Routes::

    POST /model/{modelId}/converse | converse-stream | invoke | invoke-with-response-stream
    *    /v1/...            OpenAI-compatible (chat/completions, embeddings, responses recorded;
                            anything else passed through unrecorded)
    GET  /metrics           Prometheus: see dashcam.gateway.metrics
    GET  /healthz
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from dashcam.api.auth import Authenticator
from dashcam.capture.openai_records import operation_of
from dashcam.errors import AuthError, ForbiddenError
from dashcam.gateway.config import KEY_FORWARD, GatewayConfig
from dashcam.gateway.metrics import GatewayMetrics, exposition
from dashcam.gateway.recording import (BEDROCK_PROVIDER, OPENAI_PROVIDER, GatewayAttempt, Recorder, SentRequest,
                                       caller_arn, decode_stream_now, describe_bedrock, describe_openai_call)
from dashcam.gateway.replies import (BAD_KEY, BAD_SIGNATURE, BAD_UPSTREAM, BEDROCK, FORBIDDEN, NO_KEY, NOT_FOUND,
                                     OPENAI, THROTTLED, TIMED_OUT, UNAVAILABLE, Fault, error_code_of, reply)
from dashcam.gateway.shaping import UNSHAPED, Permit, Refusal, Shaper, retry_delay
from dashcam.gateway.upstream import (TIMEOUT, UpstreamFailure, UpstreamRequest, UpstreamResponse, Upstreams,
                                      forwarded_headers)
from dashcam.gateway.usage import (bedrock_header_usage, bedrock_stream_usage, estimate_tokens, sse_usage,
                                   usage_total)
from dashcam.keys import KeyRing

log = logging.getLogger("dashcam.gateway")

BEDROCK_OPERATIONS = {
    "converse": "Converse",
    "converse-stream": "ConverseStream",
    "invoke": "InvokeModel",
    "invoke-with-response-stream": "InvokeModelWithResponseStream",
}
STREAMING = frozenset({"ConverseStream", "InvokeModelWithResponseStream"})
EVENT_STREAM = "application/vnd.amazon.eventstream"
SSE = "text/event-stream"
RETRYABLE_STATUS = frozenset({429, 503})
STREAM_BROKEN = "UpstreamStreamBroken"  # the record's error code when the upstream cut a stream short
LABEL_HEADERS = {"x-dashcam-app": "app", "x-dashcam-user": "userId", "x-dashcam-session": "sessionId"}
_perf = time.perf_counter


@dataclass(slots=True)
class _Call:
    """One caller's request while it is being answered."""

    api: str
    operation: str | None  # None: an OpenAI request that is passed through, not recorded
    model: str | None
    caller: str
    labels: dict[str, str]
    request: Any  # what the attempt's describer reads as the request
    received: float = field(default_factory=_perf)
    invocation_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempts: list[GatewayAttempt] = field(default_factory=list)
    used_tokens: int | None = 0  # what the upstream charged (None: unknown, the estimate stands)


class Gateway:
    """The gateway's state: configuration, keys, shaper, upstreams, recorder and metrics."""

    def __init__(self, config: GatewayConfig, *, keys: KeyRing | None = None, recorder: Recorder | None = None,
                 credentials: object | None = None) -> None:
        self.config = config
        self.keys = keys
        self.authenticator = Authenticator(keys) if keys is not None else None
        self.recorder = recorder
        self.shaper = Shaper(config.limits, window=config.quota_window, burst=config.burst,
                             max_wait=config.max_queue_wait, max_queue=config.max_queue)
        self.upstreams = Upstreams(config, credentials=credentials)
        self.metrics = GatewayMetrics(self.shaper, recorder.stats if recorder is not None else None)
        self.default_labels = {"app": config.app} if config.app else {}

    def secured(self) -> bool:
        """True when callers must present a dashcam key (the data directory has an active one)."""
        return self.keys is not None and self.keys.active()

    # ------------------------------------------------------------------ Bedrock

    async def bedrock(self, request: Request, operation: str) -> Response:
        """A Bedrock runtime call: authenticate, shape, forward re-signed, record."""
        if self.upstreams.bedrock_url is None:
            return reply(BEDROCK, NOT_FOUND, "this gateway does not serve the Bedrock runtime API")
        body = await request.body()
        raw_path = _raw_path(request)
        caller = await self._bedrock_caller(request, raw_path, body)
        if isinstance(caller, Response):
            return caller
        model = request.path_params["model_id"]
        content_type = request.headers.get("content-type")
        snapshot = body if operation in ("Converse", "ConverseStream") else (body, content_type)
        call = _Call(BEDROCK, operation, model, caller, self._labels(request), snapshot)
        estimate = 0
        if self.shaper.needs_tokens(model):
            estimate = estimate_tokens(_json(body), model=model, operation=operation,
                                       default_output=self.config.default_output_tokens)
        upstream_request = self.upstreams.bedrock_request(raw_path, request.url.query,
                                                          forwarded_headers(request.headers.raw), body)
        return await self._call(call, estimate, upstream_request)

    async def _bedrock_caller(self, request: Request, raw_path: str, body: bytes) -> str | Response:
        if not self.secured():
            return caller_arn(None)
        if not request.headers.get("authorization"):
            return reply(BEDROCK, NO_KEY, "Missing Authentication Token")
        # The signature covers the path as the client encoded it; verify over that, not the decoded one.
        scope = {**request.scope, "path": raw_path}

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            principal = await self.authenticator.principal(Request(scope, replay))
            principal.require("ingest", self.config.log_group)
        except AuthError as exc:
            return reply(BEDROCK, BAD_SIGNATURE if "signature" in str(exc) else BAD_KEY, str(exc))
        except ForbiddenError as exc:
            return reply(BEDROCK, FORBIDDEN, str(exc))
        return caller_arn(principal.key_id)

    # ------------------------------------------------------------------ OpenAI

    async def openai(self, request: Request) -> Response:
        """An OpenAI-compatible call: authenticate, shape, forward with the configured key, record."""
        if self.upstreams.openai_url is None:
            return reply(OPENAI, NOT_FOUND, "this gateway does not serve the OpenAI API")
        caller = self._openai_caller(request)
        if isinstance(caller, Response):
            return caller
        body = await request.body()
        rest = _raw_path(request)[len("/v1"):]
        operation = operation_of(request.method, rest)
        model = None
        estimate = 0
        if operation is not None:
            decoded = _json(body)
            model = decoded.get("model") if isinstance(decoded, dict) and isinstance(decoded.get("model"), str) \
                else None
            if self.shaper.needs_tokens(model):
                estimate = estimate_tokens(decoded, model=model, operation=operation,
                                           default_output=self.config.default_output_tokens)
        upstream_request = self.upstreams.openai_request(
            request.method, rest, request.url.query, forwarded_headers(request.headers.raw), body,
            request.headers.get("authorization"))
        call = _Call(OPENAI, operation, model, caller, self._labels(request), SentRequest(body))
        return await self._call(call, estimate, upstream_request)

    def _openai_caller(self, request: Request) -> str | Response:
        if not self.secured():
            return caller_arn(None)
        token = request.headers.get("x-dashcam-key")
        if not token:
            if self.config.key_mode == KEY_FORWARD:
                return reply(OPENAI, NO_KEY, "send your dashcam key in the X-Dashcam-Key header: this gateway "
                                             "forwards the Authorization header to the upstream as your OpenAI key")
            header = request.headers.get("authorization", "")
            token = header[7:] if header.lower().startswith("bearer ") else ""
        if not token:
            return reply(OPENAI, NO_KEY, "this gateway requires a dashcam key: use it as the API key (dk_...)")
        try:
            principal = self.keys.authenticate_bearer(token.strip())
            principal.require("ingest", self.config.log_group)
        except AuthError as exc:
            return reply(OPENAI, BAD_KEY, f"Incorrect API key provided: {exc}")
        except ForbiddenError as exc:
            return reply(OPENAI, FORBIDDEN, str(exc))
        return caller_arn(principal.key_id)

    def _labels(self, request: Request) -> dict[str, str]:
        labels = dict(self.default_labels)
        for header, key in LABEL_HEADERS.items():
            value = request.headers.get(header)
            if value:
                labels[key] = value
        return labels

    # ------------------------------------------------------------------ one call

    async def _call(self, call: _Call, estimate: int, upstream_request: UpstreamRequest) -> Response:
        shaper = self.shaper.shaper_for(call.model) if call.operation is not None else None
        permit: Permit = UNSHAPED
        if shaper is not None:
            decision = await shaper.acquire(estimate)
            if isinstance(decision, Refusal):
                return self._refused(call, decision)
            permit = decision
        settle_here = True
        try:
            waited = permit.waited
            number = 0
            while True:
                number += 1
                attempt = self._attempt(call, number, waited)
                upstream = await self.upstreams.send(upstream_request)
                if isinstance(upstream, UpstreamFailure):
                    fault = TIMED_OUT if upstream.kind == TIMEOUT else UNAVAILABLE
                    base = self.upstreams.bedrock_url if call.api == BEDROCK else self.upstreams.openai_url
                    return self._failed(call, attempt, fault, upstream.kind,
                                        f"the upstream {base} could not be reached or did not answer: "
                                        f"{upstream.detail}")
                if upstream.status in RETRYABLE_STATUS:
                    body = await upstream.read()
                    if body is None:
                        return self._failed(call, attempt, BAD_UPSTREAM, "malformed",
                                            f"the upstream's answer broke off: {upstream.broken}")
                    self.metrics.upstream_throttles.labels(call.model or "").inc()
                    delay = retry_delay(number, _retry_hint(upstream.headers))
                    if self._may_retry(call, number, delay, body):
                        self._finish(call, attempt, upstream, body)
                        self.metrics.retries.labels(call.model or "").inc()
                        await asyncio.sleep(delay)
                        waited = delay
                        continue
                    return self._answer(call, attempt, upstream, body)
                media_type = upstream.headers.get("content-type", "")
                if media_type.startswith((EVENT_STREAM, SSE)) and upstream.is_success:
                    if call.api == BEDROCK and call.operation not in STREAMING:
                        upstream.close()
                        return self._failed(call, attempt, BAD_UPSTREAM, "malformed",
                                            f"the upstream answered {call.operation} with an event stream")
                    settle_here = False
                    return _Relay(self, call, attempt, upstream, permit)
                body = await upstream.read()
                if body is None:
                    return self._failed(call, attempt, BAD_UPSTREAM, "malformed",
                                        f"the upstream's answer broke off: {upstream.broken}")
                problem = self._malformed(call, upstream, body)
                if problem:
                    return self._failed(call, attempt, BAD_UPSTREAM, "malformed", problem)
                return self._answer(call, attempt, upstream, body)
        finally:
            if settle_here:
                permit.settle(call.used_tokens)
                self._submit(call)

    def _may_retry(self, call: _Call, number: int, delay: float, body: bytes) -> bool:
        if call.operation is None or number >= self.config.max_attempts:
            return False
        if b"insufficient_quota" in body:  # OpenAI's 429 for an empty balance: retrying cannot help
            return False
        return _perf() + delay < call.received + self.config.retry_deadline

    def _attempt(self, call: _Call, number: int, waited: float) -> GatewayAttempt:
        labels = dict(call.labels)
        labels["gatewayWaitMs"] = f"{waited * 1000:.3f}"
        if call.api == BEDROCK:
            attempt = GatewayAttempt(BEDROCK_PROVIDER, call.operation or "", describe_bedrock, time.time(), _perf(),
                                     labels, caller=call.caller)
            attempt.region = self.upstreams.region
        else:
            attempt = GatewayAttempt(OPENAI_PROVIDER, call.operation or "", describe_openai_call, time.time(),
                                     _perf(), labels, caller=call.caller)
        attempt.model_id = call.model
        attempt.number = number
        attempt.invocation_id = call.invocation_id
        attempt.request = call.request
        call.attempts.append(attempt)
        return attempt

    def _finish(self, call: _Call, attempt: GatewayAttempt, upstream: UpstreamResponse, body: bytes) -> None:
        """Fill an attempt with the upstream's complete, non-streamed answer."""
        attempt.ended = _perf()
        attempt.status = upstream.status
        attempt.headers = upstream.headers
        if call.api == BEDROCK:
            attempt.request_id = upstream.headers.get("x-amzn-requestid")
            attempt.response = (body, upstream.headers.get("content-type")) \
                if call.operation == "InvokeModel" else body
            if upstream.status >= 300:
                code = upstream.headers.get("x-amzn-errortype", "").split(":")[0]
                attempt.error_code = code or f"HTTP{upstream.status}"
        else:
            attempt.chunks = [body]

    def _answer(self, call: _Call, attempt: GatewayAttempt, upstream: UpstreamResponse, body: bytes) -> Response:
        """The upstream's non-streamed answer, handed to the caller as it is."""
        self._finish(call, attempt, upstream, body)
        if upstream.is_success and self.shaper.needs_tokens(call.model):
            call.used_tokens = self._used_tokens(call, upstream, body)
        response = Response(status_code=upstream.status)
        response.body = body
        response.raw_headers = upstream.header_list() + [(b"content-length", str(len(body)).encode())]
        self.metrics.count(call.api, call.operation, call.model, upstream.status)
        return response

    def _used_tokens(self, call: _Call, upstream: UpstreamResponse, body: bytes) -> int | None:
        if call.operation == "InvokeModel":
            from_headers = bedrock_header_usage(upstream.headers)
            if from_headers is not None:
                return from_headers
        decoded = _json(body)
        return usage_total(decoded.get("usage")) if isinstance(decoded, dict) else None

    def _malformed(self, call: _Call, upstream: UpstreamResponse, body: bytes) -> str | None:
        """What is wrong with a complete answer that the caller's client could not read, or None."""
        if call.operation is None:
            return None  # passed through unrecorded: the caller's client judges it
        status = upstream.status
        media_type = upstream.headers.get("content-type", "")
        if call.api == BEDROCK and call.operation in STREAMING and status < 300:
            return f"the upstream answered {call.operation} with {media_type or 'no content type'}, " \
                   "not an event stream"
        needs_json = call.api == OPENAI or call.operation in ("Converse", "ConverseStream") or status >= 300 \
            or "json" in media_type
        if call.api == BEDROCK and status >= 300 and upstream.headers.get("x-amzn-errortype"):
            return None  # Bedrock's own error: botocore reads the code from the header
        decoded = _json(body) if needs_json else {}
        if not isinstance(decoded, dict):
            return f"the upstream answered HTTP {status} with a body that is not a JSON object: {_snippet(body)}"
        if status >= 300 and call.api == OPENAI and not isinstance(decoded.get("error"), dict):
            return f"the upstream answered HTTP {status} without an OpenAI error object: {_snippet(body)}"
        if status >= 300 and call.api == BEDROCK and not (decoded.get("message") or decoded.get("Message")):
            return f"the upstream answered HTTP {status} without a Bedrock error: {_snippet(body)}"
        return None

    def _failed(self, call: _Call, attempt: GatewayAttempt, fault: Fault, kind: str, detail: str) -> Response:
        """The gateway's own answer when the upstream could not give one the caller could read."""
        self.metrics.failures.labels(call.api, kind).inc()
        log.warning("dashcam gateway: %s %s: %s", call.operation or "request", call.model or "", detail)
        response = reply(call.api, fault, detail)
        self._fill_from_reply(call, attempt, response, fault)
        return response

    def _refused(self, call: _Call, refusal: Refusal) -> Response:
        """A 429 from the gateway itself: the model's limits would make the call wait too long."""
        model = call.model or ""
        self.metrics.shaped.labels(model, refusal.reason).inc()
        if call.api == BEDROCK:
            message = "Too many requests, please wait before trying again."
        else:
            message = f"Rate limit reached for {model} at the dashcam gateway. Please try again in " \
                      f"{refusal.retry_after * 1000:.0f}ms."
        response = reply(call.api, THROTTLED, message, retry_after=refusal.retry_after)
        attempt = self._attempt(call, 1, _perf() - call.received)
        attempt.labels["gatewayShaped"] = "1"
        self._fill_from_reply(call, attempt, response, THROTTLED)
        self._submit(call)
        return response

    def _fill_from_reply(self, call: _Call, attempt: GatewayAttempt, response: Response, fault: Fault) -> None:
        attempt.ended = _perf()
        attempt.status = response.status_code
        attempt.error_code = error_code_of(call.api, fault)
        attempt.error_message = orjson.loads(response.body).get("message") if call.api == BEDROCK else None
        if call.api == OPENAI:
            attempt.headers = response.headers
            attempt.chunks = [bytes(response.body)]
        self.metrics.count(call.api, call.operation, call.model, response.status_code)

    def _submit(self, call: _Call) -> None:
        if self.recorder is not None and call.operation is not None and call.attempts:
            self.recorder.submit(call.attempts)

    def stream_usage(self, call: _Call, attempt: GatewayAttempt) -> int | None:
        """Tokens a finished streamed answer used (only worked out when the model's tokens are limited)."""
        if not self.shaper.needs_tokens(call.model):
            return None
        if call.api == BEDROCK:
            return bedrock_stream_usage(decode_stream_now(attempt).events)
        return sse_usage(attempt.chunks or [])


class _Relay(Response):
    """An upstream's streamed answer passed to the caller chunk by chunk as it arrives.

    Whatever happens — the stream ends, the upstream breaks off (the caller's connection is then
    cut, as the provider's would be), or the caller goes away — the call is settled and recorded
    once, here.
    """

    def __init__(self, gateway: Gateway, call: _Call, attempt: GatewayAttempt, upstream: UpstreamResponse,
                 permit: Permit) -> None:
        self.gateway = gateway
        self.call = call
        self.attempt = attempt
        self.upstream = upstream
        self.permit = permit
        self.status_code = upstream.status
        self.background = None
        self.raw_headers = upstream.header_list()
        attempt.status = upstream.status
        attempt.headers = upstream.headers
        if call.api == BEDROCK:
            attempt.request_id = upstream.headers.get("x-amzn-requestid")
            attempt.raw_stream = []
        else:
            attempt.chunks = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        attempt, upstream = self.attempt, self.upstream
        kept = attempt.raw_stream if attempt.raw_stream is not None else attempt.chunks
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in upstream.chunks():
                if attempt.first_chunk is None:
                    attempt.first_chunk = _perf()
                kept.append(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if upstream.broken is None:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                # Ending without the final (empty) body message makes the server cut the caller's
                # connection, so its client reports a broken stream, not a complete short answer.
                attempt.error_code = STREAM_BROKEN
                attempt.error_message = f"the upstream broke off the stream: {upstream.broken}"
                self.gateway.metrics.failures.labels(self.call.api, "stream_broken").inc()
                log.warning("dashcam gateway: %s %s: %s", self.call.operation, self.call.model,
                            attempt.error_message)
        except OSError as exc:  # the caller went away (ASGI 2.4 servers raise OSError from send)
            attempt.error_code, attempt.error_message = "ClientDisconnected", str(exc)
        finally:
            attempt.ended = _perf()
            upstream.close()
            gateway, call = self.gateway, self.call
            try:
                self.permit.settle(gateway.stream_usage(call, attempt) if not attempt.error_code else 0)
            finally:
                gateway._submit(call)
                gateway.metrics.count(call.api, call.operation, call.model, self.status_code)


def _raw_path(request: Request) -> str:
    """The request path exactly as the client encoded it (model ids carry ``%3A`` and ``%2F``)."""
    raw = request.scope.get("raw_path")
    return raw.decode("latin-1") if raw else request.url.path


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


def _snippet(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", "replace").strip()
    return repr(text + ("..." if len(body) > limit else ""))


def _retry_hint(headers: Mapping[str, str]) -> float | None:
    """Seconds the upstream asked to wait: ``retry-after-ms`` (OpenAI) or numeric ``retry-after``."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return float(value) * scale
            except ValueError:
                continue
    return None


def create_gateway_app(gateway: Gateway) -> Starlette:
    """The ASGI app serving ``gateway`` (whose recorder the caller closes after serving)."""

    def bedrock_endpoint(operation: str) -> Any:
        async def endpoint(request: Request) -> Response:
            return await gateway.bedrock(request, operation)
        endpoint.__name__ = operation
        return endpoint

    async def metrics(request: Request) -> Response:
        if gateway.secured():
            try:
                principal = await gateway.authenticator.principal(request)
                principal.require("read")
            except (AuthError, ForbiddenError) as exc:
                return JSONResponse({"error": {"code": type(exc).__name__, "message": str(exc)}},
                                    status_code=401 if isinstance(exc, AuthError) else 403)
        content, media_type = exposition(gateway.metrics, request.headers.get("accept", ""))
        return Response(content, media_type=media_type)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def not_found(request: Request, exc: Exception) -> Response:
        api = OPENAI if request.url.path.startswith("/v1/") else BEDROCK
        return reply(api, NOT_FOUND, f"Unknown request URL: {request.method} {request.url.path}")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await gateway.upstreams.close()

    routes = [Route(f"/model/{{model_id:path}}/{suffix}", bedrock_endpoint(operation), methods=["POST"])
              for suffix, operation in BEDROCK_OPERATIONS.items()]
    routes += [
        Route("/v1/{rest:path}", gateway.openai, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found}, lifespan=lifespan)
    app.state.gateway = gateway
    return app
