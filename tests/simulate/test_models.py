"""Simulated models: tokenization, deterministic answers, catalog lookup."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from dashcam.simulate.models import (DEFAULT_MODELS, Catalog, ModelApiError, Prompt, ToolSpec, complete,
                                     count_tokens, embed)

HAIKU = next(m for m in DEFAULT_MODELS if m.model_id == "anthropic.claude-3-5-haiku-20241022-v1:0")


def _prompt(text: str = "Summarise the incident report.", max_tokens: int = 4096, **kwargs) -> Prompt:
    return Prompt(("You are concise.",), (("user", text),), max_tokens, **kwargs)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=200))
def test_count_tokens_follows_the_documented_rule(tokens_by_rule, text):
    assert count_tokens(text) == tokens_by_rule(text)


def test_the_docstring_example():
    assert count_tokens("Hello, world!") == 6


def test_the_same_request_and_seed_give_the_same_answer_and_another_seed_does_not():
    first = complete(HAIKU, _prompt(), seed=3)
    assert complete(HAIKU, _prompt(), seed=3) == first
    assert complete(HAIKU, _prompt(), seed=4).text != first.text
    assert complete(HAIKU, _prompt("Another question entirely."), seed=3).text != first.text


def test_token_counts_follow_the_text(tokens_by_rule):
    answer = complete(HAIKU, _prompt(), seed=1)
    assert answer.output_tokens == tokens_by_rule(answer.text)
    assert answer.input_tokens == tokens_by_rule("You are concise.") + tokens_by_rule("Summarise the incident report.")
    assert "".join(answer.pieces) == answer.text
    assert sum(tokens_by_rule(p) for p in answer.pieces) == answer.output_tokens


@pytest.mark.parametrize("limit", [1, 5, 17])
def test_max_tokens_cuts_the_answer_exactly(tokens_by_rule, limit):
    answer = complete(HAIKU, _prompt(max_tokens=limit), seed=1)
    assert answer.stop_reason == "max_tokens"
    assert answer.output_tokens == limit == tokens_by_rule(answer.text)


def test_a_stop_sequence_in_the_answer_ends_it_before_the_sequence():
    natural = complete(HAIKU, _prompt(), seed=2)
    stop = natural.text.split()[3]  # a word the answer is known to contain
    answer = complete(HAIKU, _prompt(stop_sequences=(stop,)), seed=2)
    assert answer.stop_reason == "stop_sequence" and answer.stop_sequence == stop
    assert stop not in answer.text and natural.text.startswith(answer.text)


def test_a_forced_tool_call_names_the_tool_and_fills_required_arguments(tokens_by_rule):
    tool = ToolSpec("get_order_status", {"type": "object", "properties": {"orderId": {"type": "string"}},
                                         "required": ["orderId"]})
    answer = complete(HAIKU, _prompt("Where is order ORD-40917?", tools=(tool,), force_tool=True), seed=1)
    assert answer.stop_reason == "tool_use"
    assert answer.tool_call.name == "get_order_status"
    assert answer.tool_call.arguments == {"orderId": "ORD-40917"}
    assert answer.output_tokens == tokens_by_rule('{"orderId":"ORD-40917"}')


def test_a_cached_prefix_is_billed_as_cache_write_then_cache_read():
    prompt = Prompt(("A long system prompt that is cached.",), (("user", "hi"),), 100,
                    cached_prefix="A long system prompt that is cached.")
    write, read = complete(HAIKU, prompt, 1), complete(HAIKU, prompt, 1, cache_hit=True)
    cached = count_tokens("A long system prompt that is cached.")
    assert (write.cache_write_tokens, write.cache_read_tokens) == (cached, 0)
    assert (read.cache_write_tokens, read.cache_read_tokens) == (0, cached)
    assert write.input_tokens == read.input_tokens == count_tokens("hi")


def test_embeddings_are_deterministic_unit_vectors():
    titan = next(m for m in DEFAULT_MODELS if m.family == "titan-embed")
    vector = embed(titan, "refund policy", seed=1, dimensions=256)
    assert len(vector) == 256
    assert sum(v * v for v in vector) == pytest.approx(1.0, abs=1e-5)
    assert embed(titan, "refund policy", seed=1, dimensions=256) == vector
    assert embed(titan, "refund policy", seed=2, dimensions=256) != vector


@pytest.mark.parametrize("model_id", [
    "anthropic.claude-3-5-haiku-20241022-v1:0",
    "us.anthropic.claude-sonnet-4-20250514-v1:0",
    "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0",
])
def test_bedrock_ids_and_arns_resolve(model_id):
    spec = Catalog().resolve_bedrock(model_id)
    assert model_id.endswith(spec.model_id)


@pytest.mark.parametrize("model_id, code", [
    ("no such model!", "ValidationException"),
    ("arn:aws:bedrock:broken", "ValidationException"),
    ("anthropic.claude-sonnet-4-20250514-v1:0", "ValidationException"),  # needs an inference profile
    ("anthropic.claude-imaginary-v9:0", "ResourceNotFoundException"),
    ("arn:aws:bedrock:us-east-1::foundation-model/amazon.imaginary-v1:0", "ResourceNotFoundException"),
    ("gpt-4o-mini", "ValidationException"),  # served on the OpenAI endpoint only; not a Bedrock id
    ("openai.gpt-4o-mini", "ResourceNotFoundException"),
])
def test_unknown_or_unusable_bedrock_ids_fail_as_bedrock_does(model_id, code):
    with pytest.raises(ModelApiError) as caught:
        Catalog().resolve_bedrock(model_id)
    assert caught.value.code == code


def test_a_catalog_refuses_duplicate_ids():
    with pytest.raises(ValueError):
        Catalog([HAIKU, HAIKU])
