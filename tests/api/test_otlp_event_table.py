"""The OTLP receiver's event batches: the same rows as the store's own builder makes from the same
records, and repeats across requests committed together stored once."""

from __future__ import annotations

import copy

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from dashcam.api.otlp import event_table, write_tables
from dashcam.sources.otlp import SOURCE_NAME, content_record, map_traces
from dashcam.sources.otlp_content import Content
from dashcam.store.batch import EventBatchBuilder
from dashcam.store.duckdb import DuckDBStore

START = 1_772_460_000_123_000_000
SPANS = [
    {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
     "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 3,
     "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
     "gen_ai.output.messages": '[{"role": "assistant", "finish_reason": "stop", "parts": [{"type": "text", "content": "yo"}]}]'},
    {"openinference.span.kind": "LLM", "llm.provider": "aws", "llm.model_name": "anthropic.claude-3-haiku-20240307-v1:0",
     "llm.token_count.prompt": 200, "llm.token_count.completion": 50, "session.id": "s-1",
     "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "question",
     "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": "answer"},
    {"gen_ai.system": "anthropic", "llm.request.type": "chat", "gen_ai.request.model": "claude",
     "error.type": "anthropic.RateLimitError", "traceloop.association.properties.user_id": "u-9"},
]


def request_of(spans: list[dict], start: int = START) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name", value=AnyValue(string_value="chat-app"))
    scope = resource_spans.scope_spans.add()
    for i, attrs in enumerate(spans):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = bytes([i + 1]) * 16, bytes([i + 1]) * 8, "call"
        span.start_time_unix_nano = start + i * 1_234_567_891
        span.end_time_unix_nano = span.start_time_unix_nano + 800_000_000
        for key, value in attrs.items():
            any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
            span.attributes.append(KeyValue(key=key, value=any_value))
    return request


def builder_table(records) -> pa.Table:
    builder = EventBatchBuilder()
    for group, stream, record in records:
        builder.add_record(group, stream, record, source=SOURCE_NAME, provider=record.get("provider") or "unknown")
    return builder.build()


def test_event_table_rows_are_what_the_stores_builder_makes_of_the_same_records():
    records = map_traces(request_of(SPANS)).records
    records.append(("/dashcam/otlp/chat-app", "otlp", content_record(
        bytes(24), Content(output=[{"role": "assistant", "content": [{"text": "late"}]}], answered=True),
        app="chat-app", provider=None, timestamp="2026-03-02T14:00:07.5+00:00")))
    ours = event_table(copy.deepcopy(records)).drop(["ingestion_time"])
    theirs = builder_table(copy.deepcopy(records)).drop(["ingestion_time"])
    assert ours.num_rows == len(records)
    assert ours.equals(theirs)


def test_an_event_in_two_requests_committed_together_is_stored_once(tmp_path):
    first = event_table(map_traces(request_of(SPANS)).records)
    again = event_table(map_traces(request_of(SPANS[:1])).records)
    other = event_table(map_traces(request_of(SPANS, start=START + 10**12)).records)
    store = DuckDBStore(tmp_path / "events.duckdb")
    try:
        result = write_tables(store, [first, again, other])
        assert (result.written, result.duplicates) == (len(SPANS) * 2, 1)
        assert store.execute("SELECT count(*), count(DISTINCT event_id) FROM events")[0] == (6, 6)
    finally:
        store.close()
