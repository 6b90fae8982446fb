"""Hostile but decodable OTLP: values of the wrong kind where the mapping reads text or numbers.

Each of these once made the receiver answer 500 (or store a value no query could use): bytes
(``bytesValue``) where text or a number was meant, a choice ``index`` that is not a whole number,
flattened message positions of thousands of digits or paths of hundreds of segments, numbers past
64 bits or not finite, and JSON nested deeper than orjson writes or Python recurses. A span with
such a value must still map to a record that can be stored: the odd value read as text, or
dropped, and the rest of the call kept. Names of megabytes are cut before the join buffer keeps
them for minutes, and the services it remembers are bounded in number.
"""

from __future__ import annotations

import base64
import math

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from dashcam.sources import otlp_vocabularies as vocab
from dashcam.sources.otlp import JoinBuffer, any_value, attributes, map_logs, map_traces
from dashcam.sources.otlp_content import Content, content_from_attributes, content_from_event

START = 1_772_460_000_123_000_000
TRACE, SPAN = bytes(range(1, 17)), bytes(range(1, 9))
CHAT = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.input.messages": '[{"role": "user", "content": "Ping?"}]'}


def value_of(value) -> AnyValue:
    """An AnyValue of the Python value's kind (bytes as ``bytes_value``, lists as arrays)."""
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(value_of(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(KeyValue(key=k, value=value_of(v)) for k, v in value.items())
        return out
    return AnyValue(string_value=value)


def span_request(attrs: dict, *, events: tuple = (), end: int = START + 900_000_000,
                 service: str = "chat-app") -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name", value=AnyValue(string_value=service))
    span = resource_spans.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = TRACE, SPAN, "chat gpt-4o"
    span.start_time_unix_nano, span.end_time_unix_nano = START, end
    span.attributes.extend(KeyValue(key=k, value=value_of(v)) for k, v in attrs.items())
    for name, fields in events:
        event = span.events.add(name=name, time_unix_nano=START + 1000)
        event.attributes.extend(KeyValue(key=k, value=value_of(v)) for k, v in fields.items())
    return request


def log_request(*bodies: tuple[str, object]) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.add(key="service.name", value=AnyValue(string_value="chat-app"))
    scope = resource_logs.scope_logs.add()
    for name, body in bodies:
        record = scope.log_records.add(event_name=name, time_unix_nano=START + 1000, trace_id=TRACE, span_id=SPAN)
        record.body.CopyFrom(value_of(body))
    return request


def record_of(request: ExportTraceServiceRequest, join: JoinBuffer | None = None) -> dict:
    """The one record the span maps to, checked to be writable as the store writes it."""
    result = map_traces(request, join=join)
    assert (len(result.records), result.rejected) == (1, 0), result
    record = result.records[0][2]
    orjson.dumps(record)  # what the receiver does with it before storing; raised for these inputs
    return record


def deep_list(levels: int, leaf: str = '"x"') -> str:
    return "[" * levels + leaf + "]" * levels


# --------------------------------------------------------------------------- bytes


def test_bytes_values_read_as_the_text_they_spell_or_base64():
    assert any_value(AnyValue(bytes_value=b"gpt-4o")) == "gpt-4o"
    assert any_value(AnyValue(bytes_value=b"\xff\xfe\x00")) == base64.b64encode(b"\xff\xfe\x00").decode()
    nested = value_of({"list": [b"a", {"raw": b"\x80"}]})
    assert any_value(nested) == {"list": ["a", {"raw": base64.b64encode(b"\x80").decode()}]}
    assert attributes([KeyValue(key="k", value=AnyValue(bytes_value=b"v"))]) == {"k": "v"}


def test_bytes_where_settings_model_names_and_token_counts_are_read():
    record = record_of(span_request({
        **CHAT, "gen_ai.request.model": b"gpt-4o-mini", "gen_ai.response.model": b"gpt-4o-mini-2024",
        "gen_ai.request.temperature": b"0.25", "gen_ai.request.top_p": b"\xff\xfe", "gen_ai.request.max_tokens": b"64",
        "gen_ai.request.stop_sequences": [b"END", "STOP", b"\x80"], "gen_ai.usage.input_tokens": b"12",
        "gen_ai.usage.output_tokens": b"\x01\x02", "gen_ai.output.messages": b'[{"role": "assistant", "content": "Pong."}]',
        "gen_ai.response.finish_reasons": [b"stop"], "session.id": b"s-1",
        "llm.invocation_parameters": b'{"seed": 7, "top_k": "3"}'}))
    assert (record["modelId"], record["responseModelId"]) == ("gpt-4o-mini", "gpt-4o-mini-2024")
    body = record["input"]["inputBodyJson"]
    assert body["inferenceConfig"] == {"temperature": 0.25, "maxTokens": 64, "topK": 3, "seed": 7,
                                       "stopSequences": ["END", "STOP", base64.b64encode(b"\x80").decode()]}
    assert record["input"]["inputTokenCount"] == 12 and "outputTokenCount" not in record["output"]
    assert record["output"]["outputBodyJson"]["output"]["message"]["content"] == [{"text": "Pong."}]
    assert (record["stopReason"], record["sessionId"]) == ("stop", "s-1")


def test_bytes_in_flattened_messages_tool_definitions_and_log_bodies():
    record = record_of(span_request({
        "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.prompt.0.role": b"user", "gen_ai.prompt.0.content": b"Ping?",
        "gen_ai.tool.definitions": b'[{"name": "lookup"}]'}))
    assert record["input"]["inputBodyJson"]["messages"] == [{"role": "user", "content": [{"text": "Ping?"}]}]
    assert record["input"]["inputBodyJson"]["toolConfig"] == {"tools": [{"name": "lookup"}]}
    record = record_of(span_request({
        "openinference.span.kind": "LLM", "llm.model_name": b"claude",
        "llm.input_messages.0.message.role": b"user", "llm.input_messages.0.message.content": b"\xc3\xa9t\xc3\xa9"}))
    assert record["input"]["inputBodyJson"]["messages"] == [{"role": "user", "content": [{"text": "été"}]}]

    join = JoinBuffer()
    map_logs(log_request(("gen_ai.tool.message", {"id": b"call-1", "content": b"42"}),
                         ("gen_ai.choice", {"index": 0, "finish_reason": b"stop", "message": b'{"content": "Done."}'})),
             join=join)
    record = record_of(span_request({k: v for k, v in CHAT.items() if k != "gen_ai.input.messages"}), join)
    tool = record["input"]["inputBodyJson"]["messages"][-1]
    assert tool == {"role": "tool", "content": [{"toolResult": {"toolUseId": "call-1", "content": [{"text": "42"}]}}]}
    assert record["output"]["outputBodyJson"]["output"]["message"]["content"] == [{"text": "Done."}]
    assert record["stopReason"] == "stop"


# --------------------------------------------------------------------------- choice indexes


@pytest.mark.parametrize("method", [["Converse"], {"name": "Converse"}, b"\xff", 7])
def test_a_bedrock_rpc_method_that_is_not_text_is_passed_over(method):
    bedrock = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "aws.bedrock",
               "gen_ai.request.model": "amazon.nova-lite-v1:0", "rpc.method": method}
    assert record_of(span_request(bedrock))["operation"] == "Converse"  # from the chat operation


def test_a_choice_index_is_kept_only_as_a_whole_number():
    cases = [(2, 2), (-1, -1), (2**63 - 1, 2**63 - 1), (3.0, 3), ("4", 4), (1.5, None), ("x", None), ("-1", None),
             ("9" * 30, None), (True, None), (math.nan, None), (math.inf, None), ([1], None), ({"i": 1}, None),
             (None, None)]
    kept = [content_from_event("gen_ai.choice", {"index": index, "message": {"content": "x"}}).output[0].get("index")
            for index, _ in cases]
    assert list(zip(kept, [type(k) for k in kept])) == [(k, type(k)) for _, k in cases]


def test_choices_with_indexes_of_mixed_kinds_are_ordered_not_a_crash():
    # Log records first (as SDKs send them), then the span: the join orders the choices by index.
    join = JoinBuffer()
    choices = [("gen_ai.choice", {"index": "2", "message": {"content": "third"}}),
               ("gen_ai.choice", {"index": 0, "message": {"content": "first"}}),
               ("gen_ai.choice", {"index": 1.0, "message": {"content": "second"}}),
               ("gen_ai.choice", {"index": [7], "message": {"content": "no index"}})]
    map_logs(log_request(*choices), join=join)
    body = record_of(span_request(CHAT), join)["output"]["outputBodyJson"]
    answers = [body["output"]["message"]["content"][0]["text"]] + [
        c["message"]["content"][0]["text"] for c in body["additionalChoices"]]
    assert answers == ["first", "no index", "second", "third"]

    # The same as span events (OTel 1.28-1.36 without a logs pipeline).
    events = (("gen_ai.choice", {"index": "1", "message": '{"content": "b"}'}),
              ("gen_ai.choice", {"index": 0, "message": '{"content": "a"}'}))
    body = record_of(span_request(CHAT, events=events))["output"]["outputBodyJson"]
    assert body["output"]["message"]["content"] == [{"text": "a"}]
    assert body["additionalChoices"][0]["message"]["content"] == [{"text": "b"}]


# --------------------------------------------------------------------------- flattened positions


@pytest.mark.parametrize("position", ["9" * 5000, "9" * 30, "1" + "0" * 9])
def test_absurd_flattened_positions_are_dropped(position):
    attrs = {"llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "kept",
             f"llm.input_messages.{position}.message.role": "user",
             f"llm.input_messages.{position}.message.content": "dropped",
             f"llm.input_messages.0.message.contents.{position}.message_content.text": "dropped too",
             "gen_ai.prompt.0.content": "kept", f"gen_ai.prompt.{position}.content": "dropped",
             "llm.tools.0.tool.json_schema": '{"name": "t"}', f"llm.tools.{position}.tool.json_schema": "{}"}
    assert vocab.openinference_messages(attrs, "llm.input_messages") == [
        {"role": "user", "content": [{"text": "kept"}]}]
    assert vocab.openllmetry_messages(attrs, "gen_ai.prompt") == [{"role": "user", "content": [{"text": "kept"}]}]
    assert vocab.tool_definitions(attrs) == [{"name": "t"}]
    record = record_of(span_request({"openinference.span.kind": "LLM", "llm.model_name": "m", **attrs}))
    assert record["input"]["inputBodyJson"]["messages"] == [{"role": "user", "content": [{"text": "kept"}]}]


def test_flattened_paths_longer_than_any_vocabularys_are_dropped():
    deep = ".0" * 600
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "m", "llm.input_messages.0.message.role": "user",
             "llm.input_messages.0.message.contents.0.message_content.text": "kept",
             f"llm.input_messages.1.message{deep}": "dropped", f"gen_ai.completion.0.content{deep}": "dropped",
             "llm.tools.0.tool.json_schema": "{}", f"llm.tools.1{deep}": "dropped"}
    record = record_of(span_request(attrs))
    assert record["input"]["inputBodyJson"]["messages"] == [{"role": "user", "content": [{"text": "kept"}]}]
    assert vocab.unflatten({f"p.0{deep}": "x", "p.0.a": "y"}, "p") == [{"a": "y"}]


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("value", [1e30, "1" * 30, "1e30", str(2**64 - 1), -5, -1.5, "-3"])
def test_token_counts_that_are_no_64_bit_count_are_dropped(value):
    record = record_of(span_request({**CHAT, "gen_ai.usage.input_tokens": value, "gen_ai.usage.output_tokens": 3}))
    assert "inputTokenCount" not in record["input"] and "totalTokenCount" not in record["output"]
    assert record["output"]["outputTokenCount"] == 3


def test_a_total_past_64_bits_is_not_made_up():
    biggest = 2**63 - 1
    tokens = vocab.usage({"gen_ai.usage.input_tokens": biggest, "gen_ai.usage.output_tokens": biggest})
    assert (tokens["input"], tokens["output"], tokens["total"]) == (biggest, biggest, None)
    assert vocab.usage({"gen_ai.usage.input_tokens": 2, "gen_ai.usage.output_tokens": 3})["total"] == 5


@pytest.mark.parametrize("value", [math.inf, -0.5, "Infinity", 1e306])
def test_times_that_are_negative_or_not_finite_in_milliseconds_are_dropped(value):
    # An end before the start (a negative duration) gives no latency, as a negative TTFT gives none.
    record = record_of(span_request({**CHAT, "gen_ai.response.time_to_first_chunk": value, "gen_ai.usage.cost": value},
                                    end=START - 1))
    assert (record["timeToFirstTokenMs"], record["latencyMs"]) == (None, None)
    assert record["timestamp"] == "2026-03-02T14:00:00.123Z"
    cost = vocab.reported_cost({"gen_ai.usage.cost": value})
    assert cost is None or (math.isfinite(cost) and cost == float(value))
    assert vocab.ttft_seconds({"gen_ai.server.time_to_first_token": 0.25}) == 0.25


def test_sampling_settings_are_typed_as_converse_types_them():
    cases = [("gen_ai.request.temperature", "temperature", "hot", None),
             ("gen_ai.request.temperature", "temperature", math.nan, None),
             ("gen_ai.request.temperature", "temperature", 1, 1),
             ("gen_ai.request.temperature", "temperature", "0.5", 0.5),
             ("gen_ai.request.max_tokens", "maxTokens", 1e30, None),
             ("gen_ai.request.max_tokens", "maxTokens", "100", 100),
             ("gen_ai.request.stop_sequences", "stopSequences", "END", ["END"]),
             ("gen_ai.request.stop_sequences", "stopSequences", '["A", 1]', ["A", "1"])]
    found = [vocab.inference_config({attr: value}).get(name) for attr, name, value, _ in cases]
    assert found == [expected for *_, expected in cases]


def test_invocation_parameters_past_64_bits_are_dropped():
    params = '{"max_tokens": 123456789012345678901234567890, "temperature": 1e308, "n": 18446744073709551615}'
    record = record_of(span_request({**CHAT, "llm.invocation_parameters": params}))
    assert record["input"]["inputBodyJson"]["inferenceConfig"] == {"temperature": 1e308}


# --------------------------------------------------------------------------- nesting


def test_json_nested_past_what_orjson_writes_or_python_recurses_is_cut_not_a_crash():
    for levels in (300, 1020):
        content = content_from_attributes({"gen_ai.input.messages": f'[{{"role": "user", "content": {deep_list(levels)}}}]'})
        text = content.input[0]["content"][0]["text"]
        if levels == 300:  # lists in lists past 128 levels become one text block, whole while orjson writes it
            assert text.strip("[]") == '"x"' and text.count("[") == levels - vocab._MAX_DEPTH - 1
        else:
            assert text == "[" * 128 + '"(nested deeper than 128 levels: not kept)"' + "]" * 128
        assert content.weight() > 0  # the join buffer's size estimate writes it too
        reasons = vocab.finish_reasons({"gen_ai.response.finish_reasons": f"[{deep_list(levels)}]"})
        assert len(reasons) == 1 and "nested deeper than" in reasons[0]
    safe = vocab.json_safe({"a": orjson.loads(deep_list(1000)), "b": b"\x00", "c": 10**30, 1: (1, 2)})
    written = orjson.loads(orjson.dumps(safe))
    assert (written["b"], written["c"], written["1"]) == ("\x00", str(10**30), [1, 2])
    cut = written["a"]
    for _ in range(vocab._MAX_DEPTH - 1):
        cut = cut[0]
    assert cut == "(nested deeper than 128 levels: not kept)"


def test_deep_metadata_tools_and_settings_map_to_a_record():
    deep_object = '{"a":' * 300 + "1" + "}" * 300
    record = map_traces(span_request({
        **CHAT, "metadata": f'{{"tenant": {deep_object}, "team": "core"}}', "gen_ai.tool.definitions": deep_list(300),
        "llm.invocation_parameters": f'{{"stop": {deep_list(300)}}}'})).records[0][2]
    assert record["requestMetadata"]["team"] == "core"
    assert "nested deeper than" in record["requestMetadata"]["tenant"]
    assert "nested deeper than" in record["input"]["inputBodyJson"]["inferenceConfig"]["stopSequences"][0]
    written = orjson.loads(orjson.dumps(vocab.json_safe(record)))  # what the receiver stores
    assert written["input"]["inputBodyJson"]["messages"] == [{"role": "user", "content": [{"text": "Ping?"}]}]


# --------------------------------------------------------------------------- what the join buffer keeps


def test_service_and_provider_names_of_megabytes_are_cut_to_what_the_buffer_keeps():
    # The join buffer remembers every stored span's service and provider for minutes: whole, a
    # megabyte name per request would add up to gigabytes.
    join = JoinBuffer()
    service, provider = "s" * 1_000_000, "P" * 1_000_000
    record = record_of(span_request({**CHAT, "gen_ai.provider.name": provider}, service=service), join)
    assert (record["app"], record["provider"]) == ("s" * 512, "p" * 512)
    late = map_logs(log_request(("gen_ai.choice", {"index": 0, "message": {"content": "late"}})), join=join)
    assert len(late.records) == 1
    event = late.records[0][2]
    assert (event["app"], event["provider"], event["spanId"]) == (record["app"], record["provider"], SPAN.hex())


def test_the_services_remembered_as_sending_content_are_bounded_forgetting_the_longest_silent():
    join = JoinBuffer(max_services=3)
    content = Content(input=[{"role": "user", "content": [{"text": "hi"}]}])
    for i, app in enumerate(["a", "b", "c", "a", "d"]):
        join.add(bytes([i + 1]) * 24, content, log_group="g", log_stream="s", app=app, provider=None, ts_nano=START)
    assert [join.sends_content(app) for app in "abcd"] == [True, False, True, True]
