"""OTLP -> invocation records: every GenAI vocabulary, content in every place, the join, errors."""

from __future__ import annotations

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from dashcam.records import normalize
from dashcam.sources.otlp import (
    CONTENT_SCHEMA_TYPE,
    JoinBuffer,
    finish_spans,
    log_group_for,
    map_logs,
    map_traces,
)

START = 1_772_460_000_123_000_000  # 2026-03-02T14:00:00.123Z
TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")


def any_value(value) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(KeyValue(key=k, value=any_value(v)) for k, v in value.items())
        return out
    return AnyValue(string_value=value)


def kvs(mapping: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in mapping.items()]


def traces(*spans: dict, service: str = "chat-app", resource: dict | None = None) -> ExportTraceServiceRequest:
    """An export request; each span is a dict of attrs plus optional name/events/status/ids/times."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(kvs({"service.name": service, **(resource or {})}))
    scope = rs.scope_spans.add()
    for i, spec in enumerate(spans):
        span = scope.spans.add()
        span.trace_id = spec.get("trace_id", TRACE)
        span.span_id = spec.get("span_id", SPAN if i == 0 else bytes([i + 1]) * 8)
        span.parent_span_id = spec.get("parent", b"")
        span.name = spec.get("name", "chat model")
        span.kind = 3
        span.start_time_unix_nano = spec.get("start", START)
        span.end_time_unix_nano = spec.get("end", START + 1_500_000_000)
        span.attributes.extend(kvs(spec.get("attrs", {})))
        for name, attrs, offset in spec.get("events", []):
            event = span.events.add()
            event.name = name
            event.time_unix_nano = START + offset
            event.attributes.extend(kvs(attrs))
        if "status" in spec:
            span.status.code = 2
            span.status.message = spec["status"]
    return request


def logs(*records: tuple, service: str = "chat-app", old_sdk: bool = False) -> ExportLogsServiceRequest:
    """Log records as (event name, body, trace id, span id); old_sdk names them by attribute."""
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.extend(kvs({"service.name": service}))
    scope = rl.scope_logs.add()
    for name, body, trace_id, span_id in records:
        record = scope.log_records.add()
        record.time_unix_nano = START + 1000
        attrs = {"gen_ai.system": "openai"}
        if old_sdk:
            attrs["event.name"] = name
        else:
            record.event_name = name
        record.attributes.extend(kvs(attrs))
        if body is not None:
            record.body.CopyFrom(any_value(body))
        record.trace_id = trace_id
        record.span_id = span_id
    return request


def one(request, **kw) -> dict:
    result = map_traces(request, **kw)
    assert len(result.records) == 1, result
    group, stream, record = result.records[0]
    return record


def text_of(messages: list, i: int = 0) -> str:
    return messages[i]["content"][0]["text"]


# --------------------------------------------------------------------------- vocabularies


def test_otel_latest_conventions_structured_messages_cache_and_streaming():
    record = one(traces({"attrs": {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 100,
        "gen_ai.request.stream": True,
        "gen_ai.response.time_to_first_chunk": 0.25,
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
        "gen_ai.usage.cache_read.input_tokens": 100,
        "gen_ai.usage.cache_creation.input_tokens": 10,
        "gen_ai.usage.reasoning.output_tokens": 8,
        "gen_ai.conversation.id": "conv-7",
        "user.id": "u-42",
        "gen_ai.system_instructions": [{"type": "text", "content": "Be brief"}],
        # structured (kvlist) messages, as newer SDKs send them
        "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "Hello"}]}],
        "gen_ai.output.messages": [{"role": "assistant", "finish_reason": "tool_call", "parts": [
            {"type": "text", "content": "Let me check"},
            {"type": "tool_call", "id": "call_1", "name": "weather", "arguments": {"city": "Paris"}}]}],
        "gen_ai.tool.definitions": '[{"name": "weather", "type": "function"}]',
        "server.address": "api.openai.com",
    }}, resource={"service.instance.id": "pod-1"}))
    assert record["timestamp"] == "2026-03-02T14:00:00.123Z"
    assert (record["operation"], record["modelId"], record["responseModelId"]) == (
        "chat", "gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert record["requestId"] == "chatcmpl-1"
    assert record["input"]["inputTokenCount"] == 120
    assert record["input"]["cacheReadInputTokenCount"] == 100
    assert record["input"]["cacheWriteInputTokenCount"] == 10
    assert record["output"]["outputTokenCount"] == 30
    assert record["output"]["reasoningTokenCount"] == 8 and record["output"]["totalTokenCount"] == 150
    body = record["input"]["inputBodyJson"]
    assert body["system"] == [{"text": "Be brief"}]
    assert text_of(body["messages"]) == "Hello"
    assert body["inferenceConfig"] == {"maxTokens": 100, "temperature": 0.2}
    assert body["toolConfig"] == {"tools": [{"name": "weather", "type": "function"}]}
    out = record["output"]["outputBodyJson"]
    assert out["output"]["message"]["content"] == [
        {"text": "Let me check"}, {"toolUse": {"toolUseId": "call_1", "name": "weather", "input": {"city": "Paris"}}}]
    assert out["stopReason"] == "tool_call" and record["stopReason"] == "tool_call"
    assert record["latencyMs"] == 1500.0 and record["timeToFirstTokenMs"] == 250.0
    assert (record["provider"], record["source"], record["app"]) == ("openai", "otlp", "chat-app")
    assert (record["traceId"], record["spanId"]) == (TRACE.hex(), SPAN.hex())
    assert (record["sessionId"], record["userId"]) == ("conv-7", "u-42")
    assert record["requestMetadata"]["serverAddress"] == "api.openai.com"
    assert record["throttled"] == 0 and "errorCode" not in record


def test_otel_latest_messages_as_json_strings_and_system_role_moves_to_system():
    record = one(traces({"attrs": {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.input.messages": orjson.dumps([
            {"role": "system", "parts": [{"type": "text", "content": "Rules"}]},
            {"role": "user", "parts": [{"type": "text", "content": "Q"}]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny"}]},
        ]).decode(),
        "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"reasoning","content":"hm"},'
                                  '{"type":"text","content":"A"}],"finish_reason":"stop"}]',
    }}))
    body = record["input"]["inputBodyJson"]
    assert body["system"] == [{"text": "Rules"}]
    assert [m["role"] for m in body["messages"]] == ["user", "tool"]
    assert body["messages"][1]["content"] == [
        {"toolResult": {"toolUseId": "call_1", "content": [{"text": "sunny"}]}}]
    assert record["output"]["outputBodyJson"]["output"]["message"]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "hm"}}}, {"text": "A"}]
    assert record["stopReason"] == "stop"


def test_otel_old_conventions_legacy_names_and_content_span_events():
    # ≤ v1.27: content in span events gen_ai.content.prompt / gen_ai.content.completion
    record = one(traces({"attrs": {
        "gen_ai.system": "az.ai.openai", "gen_ai.request.model": "gpt-35-turbo",
        "gen_ai.usage.prompt_tokens": 7, "gen_ai.usage.completion_tokens": 3,
        "gen_ai.openai.request.seed": 11,
    }, "events": [
        ("gen_ai.content.prompt", {"gen_ai.prompt": '[{"role": "user", "content": "Hi"}]'}, 10),
        ("gen_ai.content.completion", {"gen_ai.completion": '[{"role": "assistant", "content": "Hello!"}]'}, 20),
    ]}))
    assert record["provider"] == "azure.ai.openai"
    assert record["operation"] == "chat"  # no operation attribute: a model call defaults to chat
    assert (record["input"]["inputTokenCount"], record["output"]["outputTokenCount"]) == (7, 3)
    assert record["input"]["inputBodyJson"]["inferenceConfig"] == {"seed": 11}
    assert text_of(record["input"]["inputBodyJson"]["messages"]) == "Hi"
    out = record["output"]["outputBodyJson"]["output"]["message"]
    assert out == {"role": "assistant", "content": [{"text": "Hello!"}]}


def test_otel_v128_to_v136_event_shapes_as_span_events():
    record = one(traces({"attrs": {
        "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.finish_reasons": ["stop"],
    }, "events": [
        ("gen_ai.system.message", {"gen_ai.system": "openai", "content": "Be nice"}, 1),
        ("gen_ai.user.message", {"gen_ai.system": "openai", "content": "Weather?"}, 2),
        ("gen_ai.assistant.message", {"content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}]}, 3),
        ("gen_ai.tool.message", {"content": "rain", "id": "c1"}, 4),
        ("gen_ai.choice", {"index": 0, "finish_reason": "stop",
                           "message": {"role": "assistant", "content": "It rains."}}, 5),
    ]}))
    body = record["input"]["inputBodyJson"]
    assert body["system"] == [{"text": "Be nice"}]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool"]
    assert body["messages"][1]["content"] == [{"toolUse": {"toolUseId": "c1", "name": "weather",
                                                           "input": {"city": "Oslo"}}}]
    assert body["messages"][2]["content"] == [{"toolResult": {"toolUseId": "c1", "content": [{"text": "rain"}]}}]
    assert record["output"]["outputBodyJson"]["output"]["message"]["content"] == [{"text": "It rains."}]
    assert record["stopReason"] == "stop"


def test_openllmetry_legacy_flattened_attributes():
    record = one(traces({"name": "anthropic.chat", "attrs": {
        "llm.request.type": "completion",
        "gen_ai.system": "Anthropic",
        "gen_ai.request.model": "claude-3-5-sonnet",
        "gen_ai.usage.prompt_tokens": 40, "gen_ai.usage.completion_tokens": 12, "llm.usage.total_tokens": 52,
        "gen_ai.usage.cache_read_input_tokens": 30, "gen_ai.usage.cache_creation_input_tokens": 5,
        "llm.is_streaming": True, "llm.top_k": 5, "gen_ai.request.temperature": 0.7,
        "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "You are terse",
        "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "Weather in Rome?",
        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "",
        "gen_ai.completion.0.finish_reason": "tool_use",
        "gen_ai.completion.0.tool_calls.0.id": "tu_1", "gen_ai.completion.0.tool_calls.0.name": "weather",
        "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Rome"}',
        "llm.request.functions.0.name": "weather", "llm.request.functions.0.parameters": '{"type": "object"}',
        "traceloop.association.properties.session_id": "s-1",
        "traceloop.association.properties.user_id": "alice",
        "traceloop.association.properties.tenant": "acme",
        "gen_ai.openai.api_base": "https://api.anthropic.com/v1",
    }, "events": [("llm.content.completion.chunk", {}, 400_000_000),
                  ("llm.content.completion.chunk", {}, 500_000_000)]}))
    assert (record["operation"], record["provider"]) == ("text_completion", "anthropic")
    assert record["input"]["inputTokenCount"] == 40 and record["output"]["totalTokenCount"] == 52
    assert (record["input"]["cacheReadInputTokenCount"], record["input"]["cacheWriteInputTokenCount"]) == (30, 5)
    assert record["timeToFirstTokenMs"] == 400.0
    body = record["input"]["inputBodyJson"]
    assert body["system"] == [{"text": "You are terse"}] and text_of(body["messages"]) == "Weather in Rome?"
    assert body["inferenceConfig"] == {"temperature": 0.7, "topK": 5}
    assert body["toolConfig"]["tools"] == [{"name": "weather", "parameters": {"type": "object"}}]
    out = record["output"]["outputBodyJson"]["output"]["message"]["content"]
    assert {"toolUse": {"toolUseId": "tu_1", "name": "weather", "input": {"city": "Rome"}}} in out
    assert record["stopReason"] == "tool_use"
    assert (record["sessionId"], record["userId"]) == ("s-1", "alice")
    assert record["requestMetadata"]["tenant"] == "acme"
    assert record["requestMetadata"]["serverAddress"] == "api.anthropic.com"


def test_openllmetry_capitalised_aws_system_is_bedrock_with_bedrock_operation_names():
    record = one(traces({"name": "bedrock.completion", "attrs": {
        "llm.request.type": "chat", "gen_ai.system": "AWS", "gen_ai.request.model": "amazon.nova-pro-v1:0",
        "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 1}}))
    assert (record["provider"], record["operation"]) == ("aws.bedrock", "Converse")


def test_openinference_flattened_messages_tokens_cost_and_session():
    record = one(traces({"name": "bedrock.converse", "attrs": {
        "openinference.span.kind": "LLM",
        "llm.provider": "aws", "llm.system": "anthropic",
        "llm.model_name": "anthropic.claude-3-haiku-20240307-v1:0",
        "llm.invocation_parameters": '{"max_tokens": 256, "temperature": 0.1, "stop": ["END"]}',
        "llm.token_count.prompt": 21, "llm.token_count.completion": 9, "llm.token_count.total": 30,
        "llm.token_count.prompt_details.cache_read": 4,
        "llm.token_count.completion_details.reasoning": 2,
        "llm.cost.total": 0.00042,
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "Be kind",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": "What is this?",
        "llm.input_messages.1.message.contents.1.message_content.type": "image",
        "llm.input_messages.1.message.contents.1.message_content.image.image.url": "https://x/cat.png",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "A cat.",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "t1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "tag",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"label": "cat"}',
        "llm.finish_reason": "end_turn",
        "session.id": "sess-9", "user.id": "bob", "metadata": '{"team": "vision"}',
        "llm.tools.0.tool.json_schema": '{"name": "tag"}',
    }}))
    assert (record["provider"], record["operation"], record["modelId"]) == (
        "aws.bedrock", "Converse", "anthropic.claude-3-haiku-20240307-v1:0")
    assert record["input"]["inputTokenCount"] == 21 and record["output"]["outputTokenCount"] == 9
    assert record["input"]["cacheReadInputTokenCount"] == 4 and record["output"]["reasoningTokenCount"] == 2
    assert record["output"]["totalTokenCount"] == 30 and record["reportedCostUsd"] == 0.00042
    body = record["input"]["inputBodyJson"]
    assert body["system"] == [{"text": "Be kind"}]
    assert body["messages"][0]["content"] == [{"text": "What is this?"}, {"image": {"source": {"url": "https://x/cat.png"}}}]
    assert body["inferenceConfig"] == {"maxTokens": 256, "temperature": 0.1, "stopSequences": ["END"]}
    assert body["toolConfig"]["tools"] == [{"name": "tag"}]
    out = record["output"]["outputBodyJson"]["output"]["message"]["content"]
    assert out == [{"text": "A cat."}, {"toolUse": {"toolUseId": "t1", "name": "tag", "input": {"label": "cat"}}}]
    assert record["stopReason"] == "end_turn"
    assert (record["sessionId"], record["userId"]) == ("sess-9", "bob")
    assert record["requestMetadata"]["team"] == "vision"


def test_openinference_raw_input_and_output_values_and_embeddings():
    chat, embed = map_traces(traces(
        {"name": "ChatCompletion", "attrs": {
            "openinference.span.kind": "LLM", "llm.provider": "openai", "llm.model_name": "gpt-4o",
            "input.value": '{"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "Hey"}]}',
            "input.mime_type": "application/json",
            "output.value": '{"id": "chatcmpl-9", "choices": [{"index": 0, "finish_reason": "stop",'
                            ' "message": {"role": "assistant", "content": "Hello"}}]}',
            "output.mime_type": "application/json"},
         "events": [("First Token Stream Event", {}, 90_000_000)]},
        {"name": "CreateEmbeddingResponse", "attrs": {
            "openinference.span.kind": "EMBEDDING", "llm.provider": "openai",
            "embedding.model_name": "x", "llm.model_name": "text-embedding-3-small", "llm.token_count.prompt": 4}},
    )).records
    record = chat[2]
    assert (record["operation"], record["requestId"], record["stopReason"]) == ("chat", "chatcmpl-9", "stop")
    assert text_of(record["input"]["inputBodyJson"]["messages"]) == "Hey"
    assert record["output"]["outputBodyJson"]["output"]["message"]["content"] == [{"text": "Hello"}]
    assert record["timeToFirstTokenMs"] == 90.0
    assert (embed[2]["operation"], embed[2]["modelId"], embed[2]["input"]["inputTokenCount"]) == (
        "embeddings", "text-embedding-3-small", 4)


def test_openlit_cost_ttft_user_and_legacy_plain_text_events():
    record = one(traces({"attrs": {
        "gen_ai.operation.name": "chat", "gen_ai.system": "vertex_ai", "gen_ai.request.model": "gemini-1.5-pro",
        "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 4, "gen_ai.usage.total_tokens": 14,
        "gen_ai.usage.cost": 0.0021, "gen_ai.server.time_to_first_token": 0.12, "gen_ai.request.user": "carol",
        "gen_ai.usage.reasoning_tokens": 1, "gen_ai.environment": "prod",
    }, "events": [("gen_ai.content.prompt", {"gen_ai.prompt": "user: hello"}, 1),
                  ("gen_ai.content.completion", {"gen_ai.completion": "hi!"}, 2)]}))
    assert record["provider"] == "gcp.vertex_ai"
    assert record["reportedCostUsd"] == 0.0021 and "costUsd" not in record  # costUsd is the catalog's
    assert record["timeToFirstTokenMs"] == 120.0 and record["userId"] == "carol"
    assert record["output"]["reasoningTokenCount"] == 1
    assert record["requestMetadata"]["environment"] == "prod"
    assert text_of(record["input"]["inputBodyJson"]["messages"]) == "user: hello"
    assert record["output"]["outputBodyJson"]["output"]["message"]["content"] == [{"text": "hi!"}]


@pytest.mark.parametrize("attrs, name, operation", [
    ({"gen_ai.operation.name": "chat", "gen_ai.system": "aws.bedrock", "rpc.method": "ConverseStream"}, "chat m",
     "ConverseStream"),
    ({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "aws.bedrock", "gen_ai.request.stream": True},
     "chat m", "ConverseStream"),
    ({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "aws.bedrock"}, "chat m", "Converse"),
    ({"gen_ai.operation.name": "text_completion", "gen_ai.system": "aws.bedrock", "rpc.method": "InvokeModel"},
     "text_completion m", "InvokeModel"),
    ({"gen_ai.operation.name": "text_completion", "gen_ai.provider.name": "aws.bedrock", "llm.is_streaming": True},
     "x", "InvokeModelWithResponseStream"),
    ({"gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "aws.bedrock"}, "embeddings m", "InvokeModel"),
    ({"openinference.span.kind": "LLM", "llm.provider": "aws"}, "bedrock.invoke_model", "InvokeModel"),
    ({"gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "openai"}, "embeddings m", "embeddings"),
    ({"gen_ai.operation.name": "image", "gen_ai.system": "openai"}, "image m", "image"),
])
def test_operation_names_map_onto_bedrocks_for_bedrock_only(attrs, name, operation):
    record = one(traces({"name": name, "attrs": {"gen_ai.request.model": "m", **attrs}}))
    assert record["operation"] == operation


def test_non_genai_spans_are_ignored_and_agent_tool_workflow_spans_skipped():
    result = map_traces(traces(
        {"name": "GET /chat", "attrs": {"http.request.method": "GET"}},
        {"name": "SELECT", "attrs": {"db.system": "postgresql"}},
        {"name": "invoke_agent helper", "attrs": {"gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "openai"}},
        {"name": "execute_tool weather", "attrs": {"gen_ai.operation.name": "execute_tool"}},
        {"name": "chain", "attrs": {"openinference.span.kind": "CHAIN"}},
        {"name": "my_workflow.workflow", "attrs": {"traceloop.span.kind": "workflow"}},
        {"name": "chat gpt", "attrs": {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                       "gen_ai.request.model": "gpt"}},
    ))
    assert (result.spans, result.ignored, result.skipped, len(result.records)) == (7, 2, 4, 1)


def test_invalid_genai_spans_are_rejected_with_a_reason():
    genai = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "m"}
    result = map_traces(traces({"attrs": genai, "trace_id": b"\x01" * 8}, {"attrs": genai, "start": 0},
                               {"attrs": genai, "span_id": b"\x00" * 8}, {"attrs": genai}))
    assert (result.rejected, len(result.records)) == (3, 1)
    assert "trace id must be 16 bytes" in result.errors[0] and "start time" in result.errors[1]


# --------------------------------------------------------------------------- errors and throttling


@pytest.mark.parametrize("spec, code, throttled", [
    ({"attrs": {"error.type": "RateLimitError"}, "status": "Error code: 429 - rate limited"}, "RateLimitError", 1),
    ({"attrs": {"error.type": "ThrottlingException", "http.status_code": 429}, "status": "slow down"},
     "ThrottlingException", 1),
    ({"attrs": {"error.type": "openai.APIStatusError", "http.response.status_code": 429}, "status": ""},
     "APIStatusError", 1),
    ({"attrs": {"error.type": "APIConnectionError"}, "status": "Connection error."}, "APIConnectionError", 0),
    ({"attrs": {}, "status": "boom", "events": [("exception", {"exception.type": "TimeoutError",
                                                              "exception.message": "timed out"}, 5)]},
     "TimeoutError", 0),
])
def test_errors_and_throttling(spec, code, throttled):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt"}
    record = one(traces({**spec, "attrs": {**attrs, **spec["attrs"]}}))
    assert (record["errorCode"], record["throttled"]) == (code, throttled)
    assert record["latencyMs"] == 1500.0 and "outputBodyJson" not in record["output"]


def test_records_survive_normalize_unchanged():
    record = one(traces({"attrs": {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                   "gen_ai.request.model": "gpt", "error.type": "RateLimitError"}}))
    before = dict(record)
    normalize(record, source="otlp")  # what the store does on write: must not override our fields
    assert {k: record[k] for k in before} == before and record["provider"] == "openai"


def test_log_group_per_service_is_a_valid_cloudwatch_name():
    assert log_group_for("chat-app") == "/dashcam/otlp/chat-app"
    assert log_group_for("unknown_service:python") == "/dashcam/otlp/unknown_service_python"
    assert log_group_for(None) == "/dashcam/otlp/unknown_service"
    assert len(log_group_for("x" * 900)) == 512


# --------------------------------------------------------------------------- content in log records: the join

CHAT = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 5,
        "gen_ai.response.finish_reasons": ["stop"]}
USER = ("gen_ai.user.message", {"content": "Say this is a test"}, TRACE, SPAN)
CHOICE = ("gen_ai.choice", {"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": "This is a test."}}, TRACE, SPAN)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("old_sdk", [False, True])
def test_log_records_first_are_joined_into_the_span_record(old_sdk):
    join = JoinBuffer()
    result = map_logs(logs(("gen_ai.system.message", {"content": "Be brief"}, TRACE, SPAN), USER, CHOICE,
                           old_sdk=old_sdk), join=join)
    assert (result.joined, result.records, len(join)) == (3, [], 1)
    record = one(traces({"attrs": CHAT}), join=join)
    assert record["input"]["inputBodyJson"]["system"] == [{"text": "Be brief"}]
    assert text_of(record["input"]["inputBodyJson"]["messages"]) == "Say this is a test"
    assert record["output"]["outputBodyJson"]["output"]["message"]["content"] == [{"text": "This is a test."}]
    assert record["input"]["inputTokenCount"] == 12 and len(join) == 0


def test_bedrock_shaped_event_bodies_are_joined():
    join = JoinBuffer()
    map_logs(logs(("gen_ai.user.message", {"content": [{"text": "Say hi"}]}, TRACE, SPAN),
                  ("gen_ai.choice", {"index": 0, "finish_reason": "end_turn",
                                     "message": {"role": "assistant", "content": [{"text": "Hi"}]}}, TRACE, SPAN)),
             join=join)
    record = one(traces({"attrs": {**CHAT, "gen_ai.system": "aws.bedrock", "rpc.method": "Converse"}}), join=join)
    assert record["operation"] == "Converse"
    assert text_of(record["input"]["inputBodyJson"]["messages"]) == "Say hi"
    assert record["output"]["outputBodyJson"]["output"]["message"]["content"] == [{"text": "Hi"}]


def test_inference_details_event_carries_latest_convention_attributes():
    join = JoinBuffer()
    request = logs(("gen_ai.client.inference.operation.details", None, TRACE, SPAN))
    request.resource_logs[0].scope_logs[0].log_records[0].attributes.extend(kvs({
        "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "Q"}]}],
        "gen_ai.output.messages": [{"role": "assistant", "parts": [{"type": "text", "content": "A"}]}]}))
    map_logs(request, join=join)
    record = one(traces({"attrs": CHAT}), join=join)
    assert text_of(record["input"]["inputBodyJson"]["messages"]) == "Q"
    assert record["output"]["outputBodyJson"]["output"]["message"]["content"] == [{"text": "A"}]


def test_span_first_then_log_records_become_one_content_event_without_tokens():
    join = JoinBuffer()
    group, stream, record = map_traces(traces({"attrs": CHAT}), join=join).records[0]
    assert "inputBodyJson" not in record["input"]
    result = map_logs(logs(USER, CHOICE), join=join)
    assert (result.late, result.joined) == (2, 0)
    first, second = [r for _, _, r in result.records]
    assert first["schemaType"] == second["schemaType"] == CONTENT_SCHEMA_TYPE
    assert (first["traceId"], first["spanId"], first["app"], first["timestamp"]) == (
        TRACE.hex(), SPAN.hex(), "chat-app", record["timestamp"])
    assert text_of(first["input"]["inputBodyJson"]["messages"]) == "Say this is a test" and "output" not in first
    assert second["output"]["outputBodyJson"]["output"]["message"]["content"] == [{"text": "This is a test."}]
    for content_event in (first, second):
        assert "modelId" not in content_event and "operation" not in content_event
        assert "inputTokenCount" not in content_event.get("input", {})
    assert result.records[0][:2] == (group, stream)
    # The same content again (a re-delivery, or events duplicating attributes) is not stored twice.
    assert map_logs(logs(USER, CHOICE), join=join).redundant == 2


def test_a_held_span_is_written_once_its_completion_arrives():
    join = JoinBuffer()
    map_logs(logs(USER), join=join)  # this service sends content log records
    other_span = bytes.fromhex("0102030405060708")
    result = map_traces(traces({"attrs": CHAT, "span_id": other_span}), join=join, hold=True)
    assert result.records == [] and len(result.pending) == 1
    map_logs(logs(("gen_ai.user.message", {"content": "Later"}, TRACE, other_span),
                  ("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": {"content": "Done"}},
                   TRACE, other_span)), join=join)
    assert join.has_output(result.pending[0].key)
    (_, _, record), = finish_spans(result.pending, join)
    assert text_of(record["input"]["inputBodyJson"]["messages"]) == "Later"
    assert record["output"]["outputBodyJson"]["output"]["message"]["content"] == [{"text": "Done"}]
    # Spans that cannot expect content are never held: errors, embeddings, unknown services.
    for spec in ({"attrs": CHAT, "status": "failed", "span_id": b"\x09" * 8},
                 {"attrs": {**CHAT, "gen_ai.operation.name": "embeddings"}, "span_id": b"\x0a" * 8}):
        assert map_traces(traces(spec), join=join, hold=True).pending == []
    assert map_traces(traces({"attrs": CHAT, "span_id": b"\x0b" * 8}, service="other"), join=join,
                      hold=True).pending == []


def test_content_whose_span_never_comes_is_written_after_the_time_limit():
    clock = Clock()
    join = JoinBuffer(ttl=30, clock=clock)
    map_logs(logs(USER, CHOICE), join=join)
    assert join.expired() == []
    clock.now += 31
    (group, stream, record), = join.expired()
    assert group == "/dashcam/otlp/chat-app" and record["schemaType"] == CONTENT_SCHEMA_TYPE
    assert record["timestamp"] == "2026-03-02T14:00:00.123Z" and record["provider"] == "openai"
    assert text_of(record["input"]["inputBodyJson"]["messages"]) == "Say this is a test"
    assert len(join) == 0 and join.expired() == []


def test_the_join_buffer_is_bounded_and_never_drops_content():
    join = JoinBuffer(max_entries=2, max_bytes=1 << 20)
    spans = [bytes([i + 1]) * 8 for i in range(5)]
    for span_id in spans:
        map_logs(logs(("gen_ai.user.message", {"content": f"m{span_id[0]}"}, TRACE, span_id)), join=join)
    assert len(join) == 2
    evicted = join.expired()
    assert [r["spanId"] for _, _, r in evicted] == [s.hex() for s in spans[:3]]
    drained = join.drain()
    assert [r["spanId"] for _, _, r in drained] == [s.hex() for s in spans[3:]] and len(join) == 0
    small = JoinBuffer(max_bytes=10)
    for span_id in spans[:3]:
        map_logs(logs(("gen_ai.user.message", {"content": "x" * 50}, TRACE, span_id)), join=small)
    assert len(small) == 1 and len(small.expired()) == 2


def test_content_log_records_without_span_context_are_stored_alone_and_others_ignored():
    join = JoinBuffer()
    request = logs(("gen_ai.user.message", {"content": "orphan"}, b"", b""),
                   ("app.started", "hello", TRACE, SPAN))
    result = map_logs(request, join=join)
    assert (result.late, result.ignored, len(join)) == (1, 1, 0)
    record = result.records[0][2]
    assert record["traceId"] is None and text_of(record["input"]["inputBodyJson"]["messages"]) == "orphan"
    bad = map_logs(logs(("gen_ai.user.message", {"content": "x"}, b"\x01" * 3, SPAN)), join=join)
    assert bad.rejected == 1 and "trace id" in bad.errors[0]
