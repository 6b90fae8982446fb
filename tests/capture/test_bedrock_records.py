"""What captured Bedrock attempts say, per operation, from the wire shapes botocore hands over."""

from __future__ import annotations

import json

import orjson
import pytest

from dashcam.capture.attempt import Attempt, build_record
from dashcam.capture.bedrock_records import (
    aggregate_converse_stream,
    describe_converse,
    describe_converse_stream,
    describe_invoke_model,
    describe_invoke_model_stream,
)
from dashcam.capture.settings import resolve
from dashcam.records import normalize

TEXT = "Retries with backoff absorb short bursts of throttling."


def attempt(operation: str, describe, **fields) -> Attempt:
    made = Attempt("aws.bedrock", operation, describe, 1772445600.0, 10.0, {})
    made.ended = 10.2
    for name, value in fields.items():
        setattr(made, name, value)
    return made


def converse_stream_events(text: str, tool_input: dict) -> list[dict]:
    """ConverseStream events as botocore yields them: text in pieces, then a tool use whose input
    arrives as JSON text in pieces."""
    pieces = [text[i:i + 7] for i in range(0, len(text), 7)]
    tool_json = json.dumps(tool_input)
    return [
        {"messageStart": {"role": "assistant"}},
        *({"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}} for p in pieces),
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "t1", "name": "lookup"}}, "contentBlockIndex": 1}},
        *({"contentBlockDelta": {"delta": {"toolUse": {"input": tool_json[i:i + 5]}}, "contentBlockIndex": 1}}
          for i in range(0, len(tool_json), 5)),
        {"contentBlockStop": {"contentBlockIndex": 1}},
        {"messageStop": {"stopReason": "tool_use"}},
        {"metadata": {"usage": {"inputTokens": 12, "outputTokens": 34, "totalTokens": 46,
                                "cacheReadInputTokens": 5}, "metrics": {"latencyMs": 321}}},
    ]


def test_converse_stream_folds_into_one_converse_response():
    tool_input = {"city": "Paris", "days": [1, 2]}
    events = converse_stream_events(TEXT, tool_input)
    body = aggregate_converse_stream(events)
    assert body["output"]["message"] == {"role": "assistant", "content": [
        {"text": TEXT}, {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": tool_input}}]}
    assert (body["stopReason"], body["metrics"]) == ("tool_use", {"latencyMs": 321})

    facts = describe_converse_stream(attempt("ConverseStream", describe_converse_stream, chunks=events,
                                             request=orjson.dumps({"messages": []})))
    usage = events[-1]["metadata"]["usage"]
    assert (facts.input_tokens, facts.output_tokens, facts.cache_read, facts.stop_reason) == (
        usage["inputTokens"], usage["outputTokens"], usage["cacheReadInputTokens"], "tool_use")
    assert facts.input_body == {"messages": []}


def test_converse_response_and_its_off_mode_summary_agree():
    response = {"output": {"message": {"role": "assistant", "content": [{"text": TEXT}]}}, "stopReason": "end_turn",
                "usage": {"inputTokens": 3, "outputTokens": 9, "totalTokens": 12, "cacheWriteInputTokens": 2},
                "metrics": {"latencyMs": 40}}
    full = describe_converse(attempt("Converse", describe_converse, response=orjson.dumps(response)))
    summary = describe_converse(attempt("Converse", describe_converse, response={
        "stopReason": response["stopReason"], "usage": response["usage"]}))
    assert full.output_body == response and summary.output_body is None
    for field in ("input_tokens", "output_tokens", "cache_write", "stop_reason"):
        assert getattr(full, field) == getattr(summary, field) is not None


ANTHROPIC = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
             "content": [{"type": "text", "text": TEXT}], "stop_reason": "max_tokens",
             "usage": {"input_tokens": 11, "output_tokens": 22, "cache_read_input_tokens": 3,
                       "cache_creation_input_tokens": 4}}
LLAMA = {"generation": TEXT, "prompt_token_count": 8, "generation_token_count": 16, "stop_reason": "stop"}
TITAN = {"inputTextTokenCount": 6, "results": [{"tokenCount": 13, "outputText": TEXT, "completionReason": "FINISH"}]}
NOVA = {"output": {"message": {"content": [{"text": TEXT}]}}, "stopReason": "end_turn",
        "usage": {"inputTokens": 7, "outputTokens": 14, "cacheReadInputTokenCount": 0}}
EMBED = {"embedding": [0.1, 0.2], "inputTextTokenCount": 5}


@pytest.mark.parametrize("body, tokens", [
    (ANTHROPIC, (11, 22, 3, 4)), (LLAMA, (8, 16, None, None)), (TITAN, (6, 13, None, None)),
    (NOVA, (7, 14, 0, None)), (EMBED, (5, None, None, None)),
])
def test_invoke_model_tokens_from_the_provider_body(body, tokens):
    made = attempt("InvokeModel", describe_invoke_model, request=(b'{"prompt": "x"}', None),
                   response=(json.dumps(body).encode(), "application/json"), headers={})
    facts = describe_invoke_model(made)
    assert (facts.input_tokens, facts.output_tokens, facts.cache_read, facts.cache_write) == tokens
    assert facts.output_body == body and facts.input_body == {"prompt": "x"}
    # The stop reason agrees with the one dashcam derives at ingest from the logged body.
    record = build_record(made, resolve())
    derived = normalize({k: v for k, v in record.items() if k != "stopReason"}, source="api")["stopReason"]
    assert record.get("stopReason") == derived


def test_invoke_model_headers_win_over_the_body():
    headers = {"x-amzn-bedrock-input-token-count": "100", "x-amzn-bedrock-output-token-count": "200"}
    facts = describe_invoke_model(attempt("InvokeModel", describe_invoke_model, request=None,
                                          response=(json.dumps(ANTHROPIC).encode(), None), headers=headers))
    assert (facts.input_tokens, facts.output_tokens, facts.cache_read) == (100, 200, 3)


def anthropic_stream_chunks(text: str) -> list[bytes]:
    """InvokeModelWithResponseStream chunk payloads for an Anthropic model, as raw JSON bytes."""
    pieces = [text[i:i + 9] for i in range(0, len(text), 9)]
    chunks = [{"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 21, "output_tokens": 1}}}]
    chunks += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
               for p in pieces]
    chunks += [{"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 30}},
               {"type": "message_stop", "amazon-bedrock-invocationMetrics": {
                   "inputTokenCount": 21, "outputTokenCount": 30, "invocationLatency": 500, "firstByteLatency": 90}}]
    return [json.dumps(c).encode() for c in chunks]


@pytest.mark.parametrize("with_metrics", [True, False])
def test_invoke_model_stream_chunks(with_metrics):
    chunks = anthropic_stream_chunks(TEXT)
    if not with_metrics:
        last = json.loads(chunks[-1])
        del last["amazon-bedrock-invocationMetrics"]
        chunks[-1] = json.dumps(last).encode()
    made = attempt("InvokeModelWithResponseStream", describe_invoke_model_stream, chunks=chunks,
                   request=(b"{}", "application/json"))
    facts = describe_invoke_model_stream(made)
    assert (facts.input_tokens, facts.output_tokens, facts.stop_reason) == (21, 30, "end_turn")
    assert "".join(c["delta"].get("text", "") for c in facts.output_body[1:-1]) == TEXT
    record = build_record(made, resolve())
    derived = normalize({k: v for k, v in record.items() if k != "stopReason"}, source="api")["stopReason"]
    assert record["stopReason"] == derived


def test_an_odd_body_is_kept_as_text_not_an_error():
    facts = describe_invoke_model(attempt("InvokeModel", describe_invoke_model, request=(b"not json", "text/plain"),
                                          response=(b"\xff\xfe", "application/octet-stream")))
    assert facts.input_body == "not json" and facts.input_content_type == "text/plain"
    assert isinstance(facts.output_body, str) and facts.output_tokens is None
