"""Reading the GenAI vocabularies from odd but legal attributes.

Flattened messages (``llm.input_messages.{i}.message.*``, ``gen_ai.prompt.{i}.*``) whose names or
values the quick reading cannot take must be regrouped instead: a field sent without a value, a
position that is not a plain index, a digit that ``int()`` refuses, or a position far beyond the
messages. Each of these used to stop the mapping (an endless loop, an error, or a million empty
messages). Token counts that are not finite are dropped, as NaN always was.
"""

from __future__ import annotations

import threading

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from dashcam.sources import otlp_vocabularies as vocab
from dashcam.sources.otlp import map_traces

START = 1_772_460_000_123_000_000
NO_VALUE = object()  # an attribute sent with an empty AnyValue


def value_of(value) -> AnyValue:
    if value is NO_VALUE:
        return AnyValue()
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    return AnyValue(string_value=value)


def one_span(attrs: dict) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name", value=AnyValue(string_value="chat-app"))
    span = resource_spans.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes(range(1, 17)), bytes(range(1, 9)), "llm"
    span.start_time_unix_nano, span.end_time_unix_nano = START, START + 1_000_000_000
    span.attributes.extend(KeyValue(key=k, value=value_of(v)) for k, v in attrs.items())
    return request


def record_of(attrs: dict) -> dict:
    """The one record of a span with ``attrs``, mapped in a thread so that a return of the endless
    loop fails this test instead of hanging the run (the bound is no speed requirement)."""
    done: list = []
    worker = threading.Thread(target=lambda: done.append(map_traces(one_span(attrs))), daemon=True)
    worker.start()
    worker.join(20)
    assert done, "map_traces did not return"
    (_, _, record), = done[0].records
    return record


OPENINFERENCE = {"openinference.span.kind": "LLM", "llm.model_name": "m"}
OPENLLMETRY = {"gen_ai.system": "openai", "llm.request.type": "chat", "gen_ai.request.model": "m"}


def inputs(record: dict) -> list:
    return record["input"]["inputBodyJson"]["messages"]


@pytest.mark.parametrize("prefix, vocabulary", [
    ("llm.input_messages.{}.message.", OPENINFERENCE), ("gen_ai.prompt.{}.", OPENLLMETRY)])
def test_a_flattened_field_without_a_value_is_regrouped(prefix, vocabulary):
    record = record_of({**vocabulary, prefix.format(0) + "role": NO_VALUE, prefix.format(0) + "content": "hi"})
    assert inputs(record) == [{"role": "user", "content": [{"text": "hi"}]}]


@pytest.mark.parametrize("position", ["a", "01", "\u0661", "", "0.x", "12345678901"])
def test_a_position_that_is_not_a_plain_index_is_regrouped(position):
    """Positions a writer of ``prefix.{i}`` never makes; the plain message before them is kept."""
    record = record_of({**OPENINFERENCE, "llm.input_messages.0.message.role": "user",
                        "llm.input_messages.0.message.content": "hi",
                        f"llm.input_messages.{position}.message.content": "odd"})
    assert inputs(record)[0] == {"role": "user", "content": [{"text": "hi"}]}


def test_a_digit_int_refuses_is_passed_over():
    # "²" is a digit to str.isdigit() but not to int(): regrouping used to raise on it.
    record = record_of({**OPENINFERENCE, "llm.input_messages.0.message.role": "user",
                        "llm.input_messages.0.message.content": "hi",
                        "llm.input_messages.\u00b2.message.name": "x"})
    assert inputs(record) == [{"role": "user", "content": [{"text": "hi"}]}]


def test_a_small_gap_between_positions_stays_an_empty_message():
    record = record_of({**OPENINFERENCE, "llm.input_messages.0.message.content": "first",
                        "llm.input_messages.2.message.content": "third"})
    assert [m["content"] for m in inputs(record)] == [[{"text": "first"}], [], [{"text": "third"}]]


def test_a_position_far_beyond_the_messages_does_not_make_empty_ones():
    far = 1_000_000
    record = record_of({**OPENINFERENCE, "llm.input_messages.0.message.content": "first",
                        f"llm.input_messages.{far}.message.content": "last"})
    assert [m["content"] for m in inputs(record)] == [[{"text": "first"}], [{"text": "last"}]]


def test_flat_reading_agrees_with_regrouping_for_plain_messages():
    attrs = {f"llm.input_messages.{i}.message.{field}": f"{field}-{i}" for i in range(12)
             for field in ("role", "content")}
    flat = vocab._flat_messages(attrs, "llm.input_messages", (".message.role", ".message.content"))
    regrouped = [item["message"] for item in vocab.unflatten(attrs, "llm.input_messages")]
    assert flat == regrouped


@pytest.mark.parametrize("count", [float("inf"), float("-inf")])
def test_a_token_count_that_is_not_finite_is_dropped_like_nan(count):
    tokens = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.usage.output_tokens": 3}
    record = record_of({**tokens, "gen_ai.usage.input_tokens": count})
    like_nan = record_of({**tokens, "gen_ai.usage.input_tokens": float("nan")})
    assert "inputTokenCount" not in record["input"]
    assert (record["input"], record["output"]) == (like_nan["input"], like_nan["output"])
