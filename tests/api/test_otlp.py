"""OTLP/HTTP over real HTTP: the real OpenTelemetry SDK and instrumentations, real clients, local fakes.

The model providers are tiny HTTP servers on 127.0.0.1 speaking the wire formats the real
clients expect: OpenAI chat completions (JSON and server-sent events) and embeddings, and the
Bedrock runtime's REST-JSON ``Converse`` and event-stream ``ConverseStream``. Records are asserted
by asking the server's store with Logs Insights queries.
"""

from __future__ import annotations

import base64
import gzip
import json
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation._semconv import _OpenTelemetrySemanticConventionStability
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import dashcam.api.otlp as otlp_api
from dashcam.errors import StoreError

NOW_NS = time.time_ns()


# --------------------------------------------------------------------------- fake providers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def send(self, status: int, body: bytes, content_type: str = "application/json", headers: dict | None = None):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def read_json(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")


class FakeOpenAI(_Handler):
    """``/v1/chat/completions`` (plain and streamed) and ``/v1/embeddings``; model ``busy`` is rate limited."""

    def do_POST(self) -> None:
        request = self.read_json()
        model = request.get("model")
        if model == "busy":
            error = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
            return self.send(429, json.dumps(error).encode(), headers={"retry-after": "0"})
        if self.path.endswith("/embeddings"):
            return self.send(200, json.dumps({
                "object": "list", "model": "text-embedding-3-small",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
                "usage": {"prompt_tokens": 4, "total_tokens": 4}}).encode())
        answer = "This is a test."
        if request.get("stream"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            pieces = [{"delta": {"role": "assistant", "content": "This "}, "finish_reason": None},
                      {"delta": {"content": "is a test."}, "finish_reason": None},
                      {"delta": {}, "finish_reason": "stop"}]
            for piece in pieces:
                chunk = {"id": "chatcmpl-stream", "object": "chat.completion.chunk", "created": 1,
                         "model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, **piece}]}
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            usage = {"id": "chatcmpl-stream", "object": "chat.completion.chunk", "created": 1,
                     "model": "gpt-4o-mini-2024-07-18", "choices": [],
                     "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}
            self.wfile.write(b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n")
            self.close_connection = True
            return None
        return self.send(200, json.dumps({
            "id": "chatcmpl-plain", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}}).encode())


def event_frame(event_type: str, payload: dict) -> bytes:
    """One ``application/vnd.amazon.eventstream`` message: prelude, string headers, payload, CRCs."""
    headers = b""
    for name, value in ((":event-type", event_type), (":content-type", "application/json"),
                        (":message-type", "event")):
        headers += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value.encode()
    body = json.dumps(payload).encode()
    prelude = struct.pack(">II", 12 + len(headers) + len(body) + 4, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + body
    return message + struct.pack(">I", zlib.crc32(message))


class FakeBedrockRuntime(_Handler):
    """``POST /model/{id}/converse`` and ``/converse-stream``; model ``busy`` gets ThrottlingException."""

    def do_POST(self) -> None:
        self.read_json()
        request_id = {"x-amzn-requestid": "req-0001"}
        if "/model/busy/" in self.path:
            return self.send(429, b'{"message":"Too many requests, please wait before trying again."}',
                             headers={**request_id, "x-amzn-ErrorType": "ThrottlingException"})
        if self.path.endswith("/converse"):
            return self.send(200, json.dumps({
                "output": {"message": {"role": "assistant", "content": [{"text": "Hi there"}]}},
                "stopReason": "end_turn", "usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7},
                "metrics": {"latencyMs": 120}}).encode(), headers=request_id)
        if self.path.endswith("/converse-stream"):
            frames = [event_frame("messageStart", {"role": "assistant"}),
                      event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Streamed "}}),
                      event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hello"}}),
                      event_frame("contentBlockStop", {"contentBlockIndex": 0}),
                      event_frame("messageStop", {"stopReason": "end_turn"}),
                      event_frame("metadata", {"usage": {"inputTokens": 6, "outputTokens": 3, "totalTokens": 9},
                                               "metrics": {"latencyMs": 80}})]
            return self.send(200, b"".join(frames), "application/vnd.amazon.eventstream", request_id)
        return self.send(404, b'{"message":"unknown operation"}', headers={"x-amzn-ErrorType": "UnknownOperation"})


@contextmanager
def fake_server(handler: type) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class Telemetry:
    """An SDK pipeline exporting spans and logs over OTLP/HTTP protobuf to the server (synchronously)."""

    def __init__(self, url: str, service: str, compression: Compression = Compression.NoCompression) -> None:
        resource = Resource.create({"service.name": service})
        self.spans = InMemorySpanExporter()  # what the SDK produced, to compare ids with
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=f"{url}/v1/traces", compression=compression)))
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.logger_provider = LoggerProvider(resource=resource)
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{url}/v1/logs", compression=compression)))

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()


@pytest.fixture
def semconv(monkeypatch):
    """Set GenAI env vars before instrumenting; the contrib code caches the stability mode."""

    def configure(**env: str) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        _OpenTelemetrySemanticConventionStability._initialized = False

    yield configure
    _OpenTelemetrySemanticConventionStability._initialized = False


def rows(server, query: str, group: str) -> list[dict]:
    return server.dashcam.query(query, log_groups=[group]).rows


def event_count(server) -> int:
    return sum(g.events for g in server.dashcam.log_groups())


FIELDS = ("fields operation, modelId, provider, input.inputTokenCount as inTok, output.outputTokenCount as outTok, "
          "latencyMs, timeToFirstTokenMs, stopReason, errorCode, throttled, traceId, spanId, app, schemaType, "
          "input.inputBodyJson.messages.0.content.0.text as prompt, "
          "output.outputBodyJson.output.message.content.0.text as answer | sort @timestamp asc")


# --------------------------------------------------------------------------- real instrumentations


def openai_calls(base_url: str) -> None:
    import openai

    client = openai.OpenAI(api_key="test", base_url=f"{base_url}/v1", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "system", "content": "Be brief"}, {"role": "user", "content": "Say this is a test"}])
    stream = client.chat.completions.create(model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "Stream it"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "This is a test."
    client.embeddings.create(model="text-embedding-3-small", input="hello")
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="busy", messages=[{"role": "user", "content": "again"}])


def test_openai_v2_default_mode_sends_content_as_log_records_joined_into_one_record_per_call(server, semconv):
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    semconv(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true", OTEL_SEMCONV_STABILITY_OPT_IN="")
    telemetry = Telemetry(server.url, "openai-app")
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, logger_provider=telemetry.logger_provider)
    try:
        with fake_server(FakeOpenAI) as base_url:
            openai_calls(base_url)
    finally:
        instrumentor.uninstrument()
        telemetry.close()
    sdk_spans = sorted(telemetry.spans.get_finished_spans(), key=lambda s: s.start_time)
    found = rows(server, FIELDS, "/dashcam/otlp/openai-app")
    assert [(r["operation"], r["modelId"], r["inTok"], r["outTok"]) for r in found] == [
        ("chat", "gpt-4o-mini", 12, 5), ("chat", "gpt-4o-mini", 9, 4),
        ("embeddings", "text-embedding-3-small", 4, None), ("chat", "busy", None, None)]
    assert [(r["traceId"], r["spanId"]) for r in found] == [
        (f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}") for s in sdk_spans]
    plain, streamed, embedding, limited = found
    assert (plain["prompt"], plain["answer"], plain["stopReason"]) == ("Say this is a test", "This is a test.", "stop")
    assert (streamed["prompt"], streamed["answer"]) == ("Stream it", "This is a test.")
    assert all(r["provider"] == "openai" and r["app"] == "openai-app" and r["latencyMs"] > 0 for r in found)
    assert (limited["errorCode"], limited["throttled"], plain["throttled"]) == ("RateLimitError", 1, 0)
    assert {r["schemaType"] for r in found} == {"ModelInvocationLog"}  # content joined: no content events
    system = rows(server, "fields input.inputBodyJson.system.0.text as s | filter ispresent(s)",
                  "/dashcam/otlp/openai-app")
    assert system == [{"s": "Be brief"}]


def test_openai_v2_latest_conventions_with_gzip_exports(server, semconv):
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    semconv(OTEL_SEMCONV_STABILITY_OPT_IN="gen_ai_latest_experimental",
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="span_only")
    telemetry = Telemetry(server.url, "openai-latest", Compression.Gzip)
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, logger_provider=telemetry.logger_provider)
    try:
        with fake_server(FakeOpenAI) as base_url:
            openai_calls(base_url)
    finally:
        instrumentor.uninstrument()
        telemetry.close()
    found = rows(server, FIELDS, "/dashcam/otlp/openai-latest")
    assert [(r["operation"], r["inTok"], r["prompt"], r["answer"]) for r in found[:2]] == [
        ("chat", 12, "Say this is a test", "This is a test."), ("chat", 9, "Stream it", "This is a test.")]
    assert found[0]["provider"] == "openai" and found[0]["stopReason"] == "stop"
    assert (found[3]["modelId"], found[3]["throttled"]) == ("busy", 1)
    stats = httpx.get(f"{server.url}/api/v1/otlp/stats").json()["data"]
    assert stats["records_written"] == 4 and stats.get("log_records_received", 0) == 0


def test_botocore_bedrock_converse_stream_and_throttling(server, semconv, monkeypatch):
    import boto3
    import botocore.config
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)
    semconv(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    telemetry = Telemetry(server.url, "bedrock-app")
    instrumentor = BotocoreInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, logger_provider=telemetry.logger_provider)
    try:
        with fake_server(FakeBedrockRuntime) as endpoint:
            client = boto3.client("bedrock-runtime", endpoint_url=endpoint,
                                  config=botocore.config.Config(retries={"total_max_attempts": 1}))
            answer = client.converse(modelId="amazon.nova-lite-v1:0", system=[{"text": "Be brief"}],
                                     messages=[{"role": "user", "content": [{"text": "Say hi"}]}],
                                     inferenceConfig={"maxTokens": 10, "temperature": 0.5})
            assert answer["output"]["message"]["content"] == [{"text": "Hi there"}]
            events = list(client.converse_stream(modelId="anthropic.claude-3-haiku-20240307-v1:0",
                                                 messages=[{"role": "user", "content": [{"text": "Stream hi"}]}]
                                                 )["stream"])
            assert events[-1]["metadata"]["usage"]["outputTokens"] == 3
            with pytest.raises(client.exceptions.ThrottlingException):
                client.converse(modelId="busy", messages=[{"role": "user", "content": [{"text": "again"}]}])
    finally:
        instrumentor.uninstrument()
        telemetry.close()
    found = rows(server, FIELDS + " | fields region, requestId, input.inputBodyJson.inferenceConfig.maxTokens as mt",
                 "/dashcam/otlp/bedrock-app")
    assert [(r["operation"], r["modelId"], r["inTok"], r["outTok"], r["stopReason"]) for r in found] == [
        ("Converse", "amazon.nova-lite-v1:0", 5, 2, "end_turn"),
        ("ConverseStream", "anthropic.claude-3-haiku-20240307-v1:0", 6, 3, "end_turn"),
        ("Converse", "busy", None, None, None)]
    converse, stream, busy = found
    assert (converse["prompt"], converse["answer"], converse["mt"]) == ("Say hi", "Hi there", 10)
    assert (stream["prompt"], stream["answer"]) == ("Stream hi", "Streamed hello")
    assert (busy["errorCode"], busy["throttled"], busy["prompt"]) == ("ThrottlingException", 1, "again")
    assert all(r["provider"] == "aws.bedrock" and r["region"] == "us-east-1" and r["requestId"] == "req-0001"
               for r in found)
    # The Logs Insights questions people ask of Bedrock logs work on these records as they are.
    throttles = rows(server, 'filter errorCode = "ThrottlingException" | stats count(*) as n, sum(throttled) as t',
                     "/dashcam/otlp/bedrock-app")
    assert throttles == [{"n": 1, "t": 1}]


# --------------------------------------------------------------------------- OTLP/JSON, hand built

TRACE_HEX = "5B8EFFF798038103D269B633813FC60C"


def json_span(span_id: str, attrs: dict, *, trace_id: str = TRACE_HEX, name: str = "chat gpt-4o") -> dict:
    def value(v):
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}  # OTLP/JSON: 64-bit integers as decimal strings
        if isinstance(v, list):
            return {"arrayValue": {"values": [value(x) for x in v]}}
        return {"stringValue": v}

    return {"traceId": trace_id, "spanId": span_id, "name": name, "kind": 3,
            "startTimeUnixNano": str(NOW_NS), "endTimeUnixNano": str(NOW_NS + 250_000_000),
            "attributes": [{"key": k, "value": value(v)} for k, v in attrs.items()], "status": {}}


def json_traces(*spans: dict, service: str = "json-app") -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "hand.built"}, "spans": list(spans)}]}]}


def json_logs(*records: tuple, service: str = "json-app") -> dict:
    return {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                              "scopeLogs": [{"logRecords": [
                                  {"timeUnixNano": str(NOW_NS), "eventName": name, "traceId": TRACE_HEX,
                                   "spanId": span_id, "body": body,
                                   "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "openai"}}]}
                                  for name, span_id, body in records]}]}]}


CHAT = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 8, "gen_ai.usage.output_tokens": 2}


def test_otlp_json_logs_then_traces_with_hex_ids_and_string_integers(server):
    logs = json_logs(("gen_ai.user.message", "EEE19B7EC3C1B174", {"kvlistValue": {"values": [
                         {"key": "content", "value": {"stringValue": "Ping?"}}]}}),
                     ("gen_ai.choice", "EEE19B7EC3C1B174", {"kvlistValue": {"values": [
                         {"key": "index", "value": {"intValue": "0"}},
                         {"key": "finish_reason", "value": {"stringValue": "stop"}},
                         {"key": "message", "value": {"kvlistValue": {"values": [
                             {"key": "content", "value": {"stringValue": "Pong."}}]}}}]}}))
    response = httpx.post(f"{server.url}/v1/logs", content=json.dumps(logs),
                          headers={"content-type": "application/json"})
    assert (response.status_code, response.headers["content-type"], response.json()) == (200, "application/json", {})
    body = json_traces(json_span("EEE19B7EC3C1B174", CHAT, name="chat gpt-4o"),
                       json_span("EEE19B7EC3C1B175", {"http.request.method": "GET"}, name="GET /"))
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["unknownFutureField"] = {"x": 1}  # must be ignored
    response = httpx.post(f"{server.url}/v1/traces", content=gzip.compress(json.dumps(body).encode()),
                          headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert (response.status_code, response.json()) == (200, {})
    found = rows(server, FIELDS, "/dashcam/otlp/json-app")
    assert len(found) == 1
    record = found[0]
    assert (record["traceId"], record["spanId"]) == (TRACE_HEX.lower(), "eee19b7ec3c1b174")
    assert (record["inTok"], record["outTok"], record["prompt"], record["answer"], record["latencyMs"]) == (
        8, 2, "Ping?", "Pong.", 250.0)
    stats = httpx.get(f"{server.url}/api/v1/otlp/stats").json()["data"]
    assert (stats["spans_received"], stats["spans_ignored_not_genai"], stats["content_joined"]) == (2, 1, 2)


def test_partial_success_reports_rejected_spans_in_the_requests_encoding(server):
    body = json_traces(json_span("0000000000000000", CHAT), json_span("EEE19B7EC3C1B176", CHAT))
    response = httpx.post(f"{server.url}/v1/traces", json=body)
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "span id" in partial["errorMessage"]
    assert event_count(server) == 1
    # protobuf in, protobuf out
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(
        trace_id=bytes.fromhex(TRACE_HEX), span_id=bytes(8), name="bad", start_time_unix_nano=NOW_NS,
        end_time_unix_nano=NOW_NS).attributes.add(key="gen_ai.operation.name").value.string_value = "chat"
    response = httpx.post(f"{server.url}/v1/traces", content=request.SerializeToString(),
                          headers={"content-type": "application/x-protobuf"})
    assert response.headers["content-type"] == "application/x-protobuf"
    parsed = ExportTraceServiceResponse.FromString(response.content)
    assert parsed.partial_success.rejected_spans == 1


def test_a_span_waits_briefly_for_its_completion_and_later_content_becomes_a_content_event(server, monkeypatch):
    monkeypatch.setattr(otlp_api, "HOLD_SECONDS", 1.5)
    url = server.url
    # The service is known to send content log records (content of some earlier call).
    httpx.post(f"{url}/v1/logs", json=json_logs(("gen_ai.user.message", "0000000000000001",
                                                  {"stringValue": "earlier"})))
    answers = {}

    def send_span():
        started = time.monotonic()
        answers["response"] = httpx.post(f"{url}/v1/traces", json=json_traces(json_span("00000000000000AA", CHAT)))
        answers["seconds"] = time.monotonic() - started

    sender = threading.Thread(target=send_span)
    sender.start()
    time.sleep(0.3)
    assert event_count(server) == 0  # held: neither stored nor acknowledged yet
    httpx.post(f"{url}/v1/logs", json=json_logs(
        ("gen_ai.user.message", "00000000000000AA", {"stringValue": "Held?"}),
        ("gen_ai.choice", "00000000000000AA", {"kvlistValue": {"values": [
            {"key": "message", "value": {"kvlistValue": {"values": [
                {"key": "content", "value": {"stringValue": "Joined."}}]}}}]}})))
    sender.join(10)
    assert answers["response"].status_code == 200 and 0.3 <= answers["seconds"] < 1.5
    found = rows(server, FIELDS, "/dashcam/otlp/json-app")
    assert [(r["schemaType"], r["prompt"], r["answer"], r["inTok"]) for r in found] == [
        ("ModelInvocationLog", "Held?", "Joined.", 8)]

    # Content later than the hold: the record is stored as it is, the content follows as its own event.
    monkeypatch.setattr(otlp_api, "HOLD_SECONDS", 0.1)
    assert httpx.post(f"{url}/v1/traces", json=json_traces(json_span("00000000000000BB", CHAT))).status_code == 200
    httpx.post(f"{url}/v1/logs", json=json_logs(("gen_ai.choice", "00000000000000BB", {"kvlistValue": {"values": [
        {"key": "message", "value": {"kvlistValue": {"values": [
            {"key": "content", "value": {"stringValue": "Too late."}}]}}}]}})))
    late = rows(server, FIELDS + ' | filter spanId = "00000000000000bb"', "/dashcam/otlp/json-app")
    assert [(r["schemaType"], r["inTok"], r["answer"]) for r in late] == [
        ("ModelInvocationLog", 8, None), ("ModelInvocationContent", None, "Too late.")]
    counted = rows(server, 'filter schemaType = "ModelInvocationLog" | stats count(*) as calls, sum(input.inputTokenCount) as t',
                   "/dashcam/otlp/json-app")
    assert counted == [{"calls": 2, "t": 16}]


# --------------------------------------------------------------------------- bad input


def status_message(response: httpx.Response) -> str:
    if response.headers["content-type"] == "application/x-protobuf":
        return status_pb2.Status.FromString(response.content).message
    return response.json()["message"]


GOOD = json_traces(json_span("EEE19B7EC3C1B174", CHAT))


def protobuf_body() -> bytes:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    message = ExportTraceServiceRequest()
    converted = json.loads(json.dumps(GOOD))
    for span in converted["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        span["traceId"] = base64.b64encode(bytes.fromhex(span["traceId"])).decode()
        span["spanId"] = base64.b64encode(bytes.fromhex(span["spanId"])).decode()
    json_format.ParseDict(converted, message)
    return message.SerializeToString()


PB, JS = {"content-type": "application/x-protobuf"}, {"content-type": "application/json"}


@pytest.mark.parametrize("path, body, headers, status, words", [
    ("/v1/traces", b"\xff\xfe garbage \x00\x01", PB, 400, "not a valid protobuf"),
    ("/v1/traces", "TRUNCATED", PB, 400, "corrupt or truncated"),
    ("/v1/logs", b"\x12\x00", PB, 400, "none of its fields"),
    ("/v1/traces", b"{not json", JS, 400, "not valid JSON"),
    ("/v1/traces", b"[1, 2]", JS, 400, "JSON object"),
    ("/v1/traces", b'{"resourceSpans": "nope"}', JS, 400, "not a valid OTLP/JSON"),
    ("/v1/traces", json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "zz", "spanId": "EEE19B7EC3C1B174"}]}]}]}).encode(), JS, 400, "not a hex string"),
    ("/v1/traces", json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"startTimeUnixNano": "soon"}]}]}]}).encode(), JS, 400, "not a valid OTLP/JSON"),
    ("/v1/traces", b"plain text, not gzip at all", {**PB, "content-encoding": "gzip"}, 400, "not valid gzip"),
    ("/v1/traces", "GZIP_TRUNCATED", {**PB, "content-encoding": "gzip"}, 400, "truncated"),
    ("/v1/traces", "GZIP_BOMB", {**PB, "content-encoding": "gzip"}, 413, "larger than 64 MiB"),
    ("/v1/traces", b"{}", {"content-type": "text/plain"}, 415, "not supported"),
    ("/v1/logs", b"{}", {**JS, "content-encoding": "br"}, 415, "Content-Encoding 'br'"),
])
def test_bad_input_gets_a_clear_error_stores_nothing_and_the_server_keeps_serving(server, path, body, headers,
                                                                                    status, words):
    if body == "TRUNCATED":
        body = protobuf_body()[:-7]
    elif body == "GZIP_TRUNCATED":
        body = gzip.compress(protobuf_body())[:-10]
    elif body == "GZIP_BOMB":
        body = gzip.compress(bytes(65 << 20), compresslevel=1)
    response = httpx.post(f"{server.url}{path}", content=body, headers=headers, timeout=30)
    assert response.status_code == status, response.text
    assert words in status_message(response)
    expected_type = "application/x-protobuf" if headers.get("content-type") == PB["content-type"] else "application/json"
    assert response.headers["content-type"] == expected_type
    assert event_count(server) == 0
    good = httpx.post(f"{server.url}/v1/traces", json=GOOD)
    assert good.status_code == 200 and event_count(server) == 1


def test_overload_and_store_failures_answer_503_with_retry_after(server, monkeypatch):
    monkeypatch.setattr(otlp_api, "MAX_INFLIGHT_REQUESTS", 0)
    busy = httpx.post(f"{server.url}/v1/traces", content=protobuf_body(), headers=PB)
    assert (busy.status_code, busy.headers["retry-after"]) == (503, "1")
    assert "busy" in status_message(busy)
    monkeypatch.setattr(otlp_api, "MAX_INFLIGHT_REQUESTS", 64)

    def failing_write(batch, **kwargs):
        raise StoreError("disk full")

    monkeypatch.setattr(server.dashcam.store, "write_batch", failing_write)
    failed = httpx.post(f"{server.url}/v1/traces", json=GOOD)
    assert failed.status_code == 503 and failed.headers["retry-after"] and "disk full" in status_message(failed)
    monkeypatch.undo()
    assert httpx.post(f"{server.url}/v1/traces", json=GOOD).status_code == 200 and event_count(server) == 1


def test_a_resent_export_is_not_stored_twice(server):
    for _ in range(2):
        assert httpx.post(f"{server.url}/v1/traces", content=protobuf_body(), headers=PB).status_code == 200
    assert event_count(server) == 1


def test_the_same_export_twice_in_one_group_commit_is_stored_once(server):
    from dashcam.sources.otlp import map_traces
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    def mapped():  # each request maps its own copy, as two concurrent requests would
        return otlp_api.event_table(map_traces(ExportTraceServiceRequest.FromString(protobuf_body())).records)

    result = otlp_api.write_tables(server.dashcam.store, [mapped(), mapped()])
    assert (result.written, result.duplicates, event_count(server)) == (1, 1, 1)


# --------------------------------------------------------------------------- hostile values
#
# Exports that decode but carry values of the wrong kind where the mapping reads text or numbers
# (see tests/sources/test_otlp_hostile.py for each reading). Each once answered 500: now the
# record is stored with the odd value read as text or dropped, or the export gets a 400 naming
# what is wrong; either way nothing stored before changes and the server goes on serving.

JSON_IDS, PROTOBUF_IDS = "1", "2"  # first digit of the span ids of each encoding's copy


def b64(raw: bytes) -> dict:
    return {"bytesValue": base64.b64encode(raw).decode()}


def hostile_span(span_id: str, attrs: dict, *, events: tuple = (), duration_ns: int = 250_000_000) -> dict:
    """An OTLP/JSON span whose attribute values are given as AnyValue JSON (of any kind)."""
    return {"traceId": TRACE_HEX, "spanId": span_id, "name": "chat gpt-4o", "kind": 3,
            "startTimeUnixNano": str(NOW_NS), "endTimeUnixNano": str(NOW_NS + duration_ns),
            "attributes": [{"key": k, "value": v} for k, v in attrs.items()],
            "events": [{"name": name, "timeUnixNano": str(NOW_NS),
                        "attributes": [{"key": k, "value": v} for k, v in fields.items()]} for name, fields in events]}


def as_protobuf(doc: dict, message_type) -> bytes:
    """The same export as protobuf: protobuf's JSON mapping reads ids as base64, not hex."""
    from google.protobuf import json_format

    def convert(node):
        if isinstance(node, dict):
            return {k: base64.b64encode(bytes.fromhex(v)).decode() if k in ("traceId", "spanId") else convert(v)
                    for k, v in node.items()}
        return [convert(item) for item in node] if isinstance(node, list) else node

    message = message_type()
    json_format.ParseDict(convert(doc), message)
    return message.SerializeToString()


def post_in_both_encodings(server, path: str, export) -> None:
    """Post ``export(first digit of span ids)`` as OTLP/JSON, then its copy as protobuf; both 200, all accepted."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    message_type = ExportTraceServiceRequest if path == "/v1/traces" else ExportLogsServiceRequest
    as_json = httpx.post(f"{server.url}{path}", content=json.dumps(export(JSON_IDS)), headers=JS)
    assert as_json.status_code == 200, as_json.text
    assert as_json.json() == {}
    as_pb = httpx.post(f"{server.url}{path}", content=as_protobuf(export(PROTOBUF_IDS), message_type), headers=PB)
    assert (as_pb.status_code, as_pb.content) == (200, b""), as_pb.content


def stored_messages(server) -> list[str]:
    """Every stored event, as stored."""
    return sorted(row["@message"] for group in server.dashcam.log_groups()
                  for row in rows(server, "fields @message", group.name))


def hostile_rows(server, fields: str, service: str) -> list[dict]:
    """The records of ``service``, the JSON copy first; the protobuf copy must map the same."""
    found = rows(server, f"fields spanId, {fields} | sort spanId asc", f"/dashcam/otlp/{service}")
    by_encoding = [[{k: v for k, v in row.items() if k != "spanId"} for row in found if row["spanId"][0] == digit]
                   for digit in (JSON_IDS, PROTOBUF_IDS)]
    assert by_encoding[0] == by_encoding[1] and by_encoding[0], found
    return by_encoding[0]


@pytest.fixture
def stored_before(server):
    """A good export stored first: whatever comes after must leave it as it was, and the server serving."""
    assert httpx.post(f"{server.url}/v1/traces", json=GOOD).status_code == 200
    before = stored_messages(server)
    assert len(before) == 1
    yield before
    assert set(before) <= set(stored_messages(server))
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    again = json_traces(json_span("EEE19B7EC3C1B17F", CHAT))
    assert httpx.post(f"{server.url}/v1/traces", json=again).status_code == 200
    assert len(rows(server, 'filter spanId = "eee19b7ec3c1b17f" | fields spanId', "/dashcam/otlp/json-app")) == 1


def test_bytes_values_become_text_and_settings_numbers(server, stored_before):
    def export(digit):
        return json_traces(hostile_span(digit + "00000000000000A", {
            "gen_ai.operation.name": {"stringValue": "chat"}, "gen_ai.system": {"stringValue": "openai"},
            "gen_ai.request.model": b64(b"gpt-4o-mini"), "gen_ai.request.temperature": b64(b"0.25"),
            "gen_ai.request.top_p": b64(b"\xff\xfe"), "gen_ai.request.max_tokens": b64(b"64"),
            "gen_ai.request.stop_sequences": {"arrayValue": {"values": [b64(b"END"), {"stringValue": "STOP"}]}},
            "gen_ai.usage.input_tokens": b64(b"12"), "gen_ai.usage.output_tokens": {"intValue": "3"},
            "llm.invocation_parameters": b64(b'{"seed": 7}'),
            "gen_ai.prompt.0.role": b64(b"user"), "gen_ai.prompt.0.content": b64(b"Ping?"),
            "gen_ai.completion.0.content": b64(b"Pong."), "gen_ai.completion.0.finish_reason": b64(b"stop")}),
            service="bytes-app")

    post_in_both_encodings(server, "/v1/traces", export)
    config = "input.inputBodyJson.inferenceConfig"
    found = hostile_rows(server, f"modelId, input.inputTokenCount as inTok, output.totalTokenCount as total, "
                                 f"{config}.temperature as temp, {config}.topP as topP, {config}.maxTokens as mt, "
                                 f"{config}.stopSequences.0 as stop0, {config}.stopSequences.1 as stop1, "
                                 f"{config}.seed as seed, stopReason, "
                                 "input.inputBodyJson.messages.0.content.0.text as prompt, "
                                 "output.outputBodyJson.output.message.content.0.text as answer", "bytes-app")
    assert found == [{"modelId": "gpt-4o-mini", "inTok": 12, "total": 15, "temp": 0.25, "topP": None, "mt": 64,
                      "stop0": "END", "stop1": "STOP", "seed": 7, "stopReason": "stop", "prompt": "Ping?",
                      "answer": "Pong."}]


def test_choice_indexes_of_any_kind_are_ordered_over_logs_and_span_events(server, stored_before):
    def choice(index, text):
        fields = [{"key": "message", "value": {"kvlistValue": {"values": [
            {"key": "content", "value": {"stringValue": text}}]}}}]
        return {"kvlistValue": {"values": fields + ([{"key": "index", "value": index}] if index else [])}}

    def logs(digit):
        span_id = digit + "00000000000000B"
        return json_logs(("gen_ai.choice", span_id, choice({"stringValue": "2"}, "third")),
                         ("gen_ai.choice", span_id, choice({"intValue": "0"}, "first")),
                         ("gen_ai.choice", span_id, choice({"doubleValue": 1.0}, "second")),
                         ("gen_ai.choice", span_id, choice(b64(b"\x00"), "no index")), service="choice-app")

    def traces(digit):
        events = (("gen_ai.choice", {"index": {"stringValue": "1"}, "message": {"stringValue": '{"content": "b"}'}}),
                  ("gen_ai.choice", {"index": {"doubleValue": "NaN"}, "message": {"stringValue": '{"content": "a"}'}}))
        return json_traces(json_span(digit + "00000000000000B", CHAT),
                           hostile_span(digit + "00000000000000C", {k: {"stringValue": v} for k, v in CHAT.items()
                                                                    if isinstance(v, str)}, events=events),
                           service="choice-app")

    post_in_both_encodings(server, "/v1/logs", logs)
    post_in_both_encodings(server, "/v1/traces", traces)
    found = hostile_rows(server, "output.outputBodyJson.output.message.content.0.text as answer, "
                                 "output.outputBodyJson.additionalChoices.0.message.content.0.text as second, "
                                 "output.outputBodyJson.additionalChoices.1.message.content.0.text as third, "
                                 "output.outputBodyJson.additionalChoices.2.message.content.0.text as fourth",
                         "choice-app")
    assert found == [{"answer": "first", "second": "no index", "third": "second", "fourth": "third"},
                     {"answer": "a", "second": "b", "third": None, "fourth": None}]


def test_absurd_positions_odd_numbers_and_deep_json_are_dropped_from_the_record(server, stored_before):
    deep_content = ('[{"role": "user", "parts": [{"type": "text", "content": "Ping?"}]}, '
                    '{"role": "user", "parts": [{"type": "blob", "data": ' + "[" * 300 + "]" * 300 + "}]}]")

    def export(digit):
        base = {"gen_ai.operation.name": {"stringValue": "chat"}, "gen_ai.system": {"stringValue": "openai"},
                "gen_ai.request.model": {"stringValue": "gpt-4o"}}
        return json_traces(
            hostile_span(digit + "00000000000000D", {
                **base, "gen_ai.prompt.0.content": {"stringValue": "Ping?"},
                "gen_ai.prompt.0.role": {"stringValue": "user"},
                "gen_ai.prompt." + "9" * 5000 + ".content": {"stringValue": "4,300 digits and more"},
                "gen_ai.prompt.1" + ".0" * 600: {"stringValue": "600 segments"},
                "gen_ai.usage.input_tokens": {"doubleValue": 1e30}, "gen_ai.usage.output_tokens": {"intValue": "-4"},
                "gen_ai.response.time_to_first_chunk": {"doubleValue": "Infinity"}}, duration_ns=-1),
            hostile_span(digit + "00000000000000E", {
                **base, "gen_ai.input.messages": {"stringValue": deep_content},
                "gen_ai.usage.input_tokens": {"stringValue": "1" * 30}, "gen_ai.usage.output_tokens": {"intValue": "2"},
                "gen_ai.server.time_to_first_token": {"doubleValue": -0.5}}),
            service="odd-app")

    post_in_both_encodings(server, "/v1/traces", export)
    found = hostile_rows(server, "input.inputTokenCount as inTok, output.outputTokenCount as outTok, latencyMs, "
                                 "timeToFirstTokenMs, input.inputBodyJson.messages.0.content.0.text as prompt, "
                                 "input.inputBodyJson.messages.1.content.0.blob.data as deep, "
                                 "input.inputBodyJson.messages.2.content.0.text as extra", "odd-app")
    assert [{k: v for k, v in row.items() if k != "deep"} for row in found] == [
        {"inTok": None, "outTok": None, "latencyMs": None, "timeToFirstTokenMs": None, "prompt": "Ping?",
         "extra": None},
        {"inTok": None, "outTok": 2, "latencyMs": 250.0, "timeToFirstTokenMs": None, "prompt": "Ping?",
         "extra": None}]
    assert found[0]["deep"] is None and "nested deeper than 128 levels" in found[1]["deep"]


def test_json_nested_deeper_than_any_otlp_message_is_a_400_and_stores_nothing(server, stored_before):
    value = '{"stringValue": "x"}'
    for _ in range(300):
        value = '{"arrayValue": {"values": [' + value + "]}}"
    span = json.dumps(hostile_span("EEE19B7EC3C1B174", {}))
    body = span.replace('"attributes": []', '"attributes": [{"key": "k", "value": ' + value + "}]")
    deep = httpx.post(f"{server.url}/v1/traces", content='{"resourceSpans": [{"scopeSpans": [{"spans": [' + body + "]}]}]}",
                      headers=JS)
    assert deep.status_code == 400 and "nests JSON deeper than 256 levels" in status_message(deep)
    too_big = json_traces(hostile_span("EEE19B7EC3C1B174", {"gen_ai.operation.name": {"stringValue": "chat"},
                                                            "gen_ai.usage.input_tokens": {"intValue": "1" * 30}}))
    big = httpx.post(f"{server.url}/v1/traces", content=json.dumps(too_big), headers=JS)
    assert big.status_code == 400 and "intValue" in status_message(big) and "out of range" in status_message(big)
    assert stored_messages(server) == stored_before
