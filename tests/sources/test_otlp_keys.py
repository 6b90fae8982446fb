"""The receiver's fast paths read exactly what the general ones do, for random spans of every vocabulary.

* Vocabulary functions given :func:`keys_of` (only the candidate attributes a span has) answer as
  they do given :data:`ALL_KEYS` (every candidate looked up), and the restricted lists are the
  full ones filtered by presence, worked out here independently.
* :func:`attributes` (text read without asking the value's kind) matches the general AnyValue
  reading, for every kind and for empty text.
* The receiver's request path (records streamed into the event table as they are made) stores
  the same rows as the batch path (all records mapped, then :func:`event_table`), and mapping with
  the general reading gives the same records.
"""

from __future__ import annotations

import copy

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from dashcam.api.otlp import event_table, traces_table
from dashcam.sources import otlp, otlp_keys
from dashcam.sources import otlp_vocabularies as vocab
from dashcam.sources.otlp import JoinBuffer, any_value, attributes, map_traces
from dashcam.sources.otlp_content import content_from_attributes
from dashcam.sources.otlp_keys import ALL_KEYS, keys_of

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = 1_772_460_000_123_000_000

# Every attribute any vocabulary reads, flattened message and tool positions, and names no
# vocabulary knows.
CHAIN_KEYS = sorted({key for _, keys in otlp_keys.USAGE_KEYS for key in keys}
                    | {key for _, keys, _, _ in otlp_keys.CONFIG_KEYS for key in keys}
                    | {*otlp_keys.PROVIDER_KEYS, *otlp_keys.REQUEST_MODEL_KEYS, *otlp_keys.RESPONSE_MODEL_KEYS,
                       *otlp_keys.STREAM_KEYS, *otlp_keys.TTFT_KEYS, *otlp_keys.COST_KEYS, *otlp_keys.SESSION_KEYS,
                       *otlp_keys.USER_KEYS, *otlp_keys.AGENT_KEYS, *otlp_keys.WORKFLOW_KEYS,
                       *otlp_keys.ENVIRONMENT_KEYS, *otlp_keys.GUARDRAIL_KEYS, *otlp_keys.KNOWLEDGE_BASE_KEYS})
MARKERS = ["gen_ai.operation.name", "gen_ai.system", "gen_ai.provider.name", "llm.request.type",
           "openinference.span.kind", "traceloop.span.kind"]
OTHER_KEYS = [
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.prompt",
    "gen_ai.completion", "input.value", "output.value", "llm.invocation_parameters", "metadata",
    "gen_ai.response.finish_reasons", "llm.finish_reason", "error.type", "rpc.method", "rpc.service",
    "server.address", "gen_ai.openai.api_base", "gen_ai.tool.definitions", "gen_ai.response.id",
    "traceloop.association.properties.app", "traceloop.association.properties.x", "cloud.region", "custom.name",
]
FLAT_KEYS = [f"{prefix}.{i}.{field}" for i in (0, 1, 3) for prefix, fields in (
    ("gen_ai.prompt", ("role", "content")), ("gen_ai.completion", ("role", "content", "finish_reason")),
    ("llm.input_messages", ("message.role", "message.content", "message.contents.0.message_content.text")),
    ("llm.output_messages", ("message.role", "message.content")),
    ("llm.tools", ("tool.json_schema",)), ("llm.request.functions", ("name", "parameters"))) for field in fields]

VALUES = st.one_of(
    st.none(),
    st.sampled_from(["", "chat", "LLM", "openai", "aws", "Bedrock", "gpt-4o", "true", "False", "12", "-3", "1.5",
                     "nan", "inf", "user", "assistant", "system", "stop", '["stop"]', "[1, 2]", "{",
                     '{"max_tokens": 9, "temperature": 0.5, "stream": true, "n": 2, "stop": ["x"]}',
                     '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
                     '{"choices": [{"message": {"content": "a"}, "finish_reason": "stop"}]}',
                     '[{"type": "text", "text": "t"}]', "ConverseStream", "https://api.openai.com/v1"]),
    st.text(max_size=6),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.booleans(),
    st.lists(st.one_of(st.text(max_size=4), st.integers(-5, 5)), max_size=3),
    st.dictionaries(st.sampled_from(["role", "content", "a"]), st.text(max_size=4), max_size=2),
)
ATTRS = st.dictionaries(st.sampled_from(CHAIN_KEYS + MARKERS + OTHER_KEYS + FLAT_KEYS), VALUES, max_size=14)
RESOURCE = st.dictionaries(st.sampled_from(["service.name", "session.id", "user.id", "deployment.environment",
                                            "deployment.environment.name", "cloud.region"]),
                           st.one_of(st.none(), st.text(max_size=5)), max_size=4)


def canonical(value) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=repr)


@SETTINGS
@given(ATTRS)
def test_the_restricted_candidates_are_the_full_lists_filtered_by_presence(attrs):
    keys = keys_of(attrs)
    present = [key for key in attrs]
    assert keys.usage == tuple((name, tuple(k for k in chain if k in present)) for name, chain in ALL_KEYS.usage)
    for fact in ("provider", "request_model", "response_model", "stream", "ttft", "cost", "session", "user",
                 "agent", "workflow", "environment", "guardrail", "knowledge_base"):
        assert getattr(keys, fact) == tuple(k for k in getattr(ALL_KEYS, fact) if k in present), fact
    assert [candidates for _, candidates, _, _ in keys.config] == [
        tuple(k for k in chain if k in present) for _, chain, _, _ in ALL_KEYS.config]
    assert keys.association(attrs) == tuple(k for k in present if k.startswith("traceloop.association.properties."))


@SETTINGS
@given(ATTRS, RESOURCE, st.sampled_from(["", "openai.chat", "bedrock.converse", "llm.x", "Chat gpt"]))
def test_vocabulary_functions_answer_the_same_with_only_the_keys_a_span_has(attrs, resource, span_name):
    keys = keys_of(attrs)
    params = vocab.invocation_parameters(attrs)
    pairs = [
        (vocab.usage(attrs, keys), vocab.usage(attrs)),
        (vocab.inference_config(attrs, params, keys), vocab.inference_config(attrs, params)),
        (vocab.provider(attrs, span_name, keys), vocab.provider(attrs, span_name)),
        (vocab.request_model(attrs, keys), vocab.request_model(attrs)),
        (vocab.response_model(attrs, keys), vocab.response_model(attrs)),
        (vocab.is_streaming(attrs, params, keys), vocab.is_streaming(attrs, params)),
        (vocab.ttft_seconds(attrs, keys), vocab.ttft_seconds(attrs)),
        (vocab.reported_cost(attrs, keys), vocab.reported_cost(attrs)),
        (vocab.request_metadata(attrs, resource, keys), vocab.request_metadata(attrs, resource)),
        (vars_of(content_from_attributes(copy.deepcopy(attrs), keys)),
         vars_of(content_from_attributes(copy.deepcopy(attrs)))),
    ]
    for fast, general in pairs:
        assert canonical(fast) == canonical(general)


def vars_of(content) -> dict:
    return {"system": content.system, "input": content.input, "output": content.output, "tools": content.tools,
            "answered": content.answered}


def to_any_value(value) -> AnyValue:
    out = AnyValue()
    if value is None:
        return out  # no kind set
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, bytes):
        out.bytes_value = value
    elif isinstance(value, list):
        out.array_value.SetInParent()
        out.array_value.values.extend(to_any_value(v) for v in value)
    elif isinstance(value, dict):
        out.kvlist_value.SetInParent()
        out.kvlist_value.values.extend(KeyValue(key=k, value=to_any_value(v)) for k, v in value.items())
    else:
        out.string_value = value
    return out


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c.d", ""]),
                          st.one_of(VALUES, st.binary(max_size=4), st.just(""))), max_size=8))
def test_attributes_read_as_the_general_anyvalue_reading(pairs):
    key_values = [KeyValue(key=key, value=to_any_value(value)) for key, value in pairs]
    general = {kv.key: any_value(kv.value) for kv in key_values}
    assert canonical(attributes(key_values)) == canonical(general)


def request_of(spans: list[tuple[dict, str, int, list[tuple[str, dict]]]], resource: dict) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(KeyValue(key=k, value=to_any_value(v)) for k, v in resource.items())
    scope = resource_spans.scope_spans.add()
    for i, (attrs, name, status, events) in enumerate(spans):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = (i + 1).to_bytes(16, "big"), (i + 1).to_bytes(8, "big"), name
        span.start_time_unix_nano = START + i * 1_000_003
        span.end_time_unix_nano = span.start_time_unix_nano + 700_000_000
        span.status.code = status
        span.attributes.extend(KeyValue(key=k, value=to_any_value(v)) for k, v in attrs.items())
        for event_name, event_attrs in events:
            event = span.events.add(name=event_name, time_unix_nano=span.start_time_unix_nano + 5_000_000)
            event.attributes.extend(KeyValue(key=k, value=to_any_value(v)) for k, v in event_attrs.items())
    return request


EVENTS = st.lists(st.tuples(
    st.sampled_from(["exception", "gen_ai.choice", "gen_ai.user.message", "gen_ai.content.completion",
                     "First Token Stream Event", "other"]),
    st.dictionaries(st.sampled_from(["exception.type", "message", "content", "finish_reason", "index",
                                     "gen_ai.completion"]), VALUES, max_size=3)), max_size=2)
MARKER_VALUES = st.one_of(st.sampled_from(["chat", "text_completion", "embeddings", "generate_content", "LLM",
                                            "EMBEDDING", "CHAIN", "completion", "openai", "aws.bedrock", "anthropic",
                                            "workflow", "execute_tool"]), VALUES)
SPANS = st.lists(st.tuples(st.dictionaries(st.sampled_from(MARKERS), MARKER_VALUES, min_size=1, max_size=2).flatmap(
    lambda markers: ATTRS.map(lambda attrs: {**markers, **attrs})),
    st.sampled_from(["chat gpt-4o", "bedrock.converse", "openai.chat", ""]), st.sampled_from([0, 1, 2]), EVENTS),
    min_size=1, max_size=5)


def outcome(work):
    try:
        return ("ok", work())
    except Exception as exc:  # the same failure either way is the same behaviour
        return ("error", type(exc).__name__)


def rows(table) -> bytes:
    return canonical(table.drop(["ingestion_time"]).to_pylist())


@SETTINGS
@given(SPANS, RESOURCE)
def test_the_request_path_stores_what_the_general_reading_and_the_batch_path_do(spans, resource):
    request = request_of(spans, resource)
    raw = request.SerializeToString()

    def streamed():
        result, table, written = traces_table(raw, "identity", "protobuf", JoinBuffer(), hold=True)
        return (result.spans, result.ignored, result.skipped, result.rejected, written, rows(table))

    def batched(reading):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(otlp, "keys_of", reading)
            result = map_traces(request, join=JoinBuffer(), hold=True)
        records = canonical(result.records)
        return (result.spans, result.ignored, result.skipped, result.rejected, len(result.records),
                rows(event_table(result.records))), records

    fast = outcome(streamed)
    general = outcome(lambda: batched(lambda attrs: ALL_KEYS))
    restricted = outcome(lambda: batched(keys_of))
    assert fast[0] == general[0] == restricted[0]
    if fast[0] == "ok":
        assert fast[1] == general[1][0] == restricted[1][0]
        assert general[1][1] == restricted[1][1]  # the records themselves, before normalizing
    else:
        assert fast == general == restricted
